"""Where the lab keeps things, and its state file: the record of what each lab created.

``down`` trusts this record together with the marks the objects carry (a bridge's alias, a
container config's owner comment), so a lab interrupted before it saved its state is still
removed completely, and nothing without the mark is ever touched.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from govcloud.errors import OperationError
from govcloud.paths import cache_dir, state_dir
from infra.lab.render import bridge_ifname, container_name, nft_table
from infra.lab.topology import Topology

STATE_VERSION = 1


@dataclass(frozen=True)
class LabPaths:
    """``root`` holds the containers and the state files (``$GOVCLOUD_LAB_ROOT``, default
    ``/var/lib/govcloud``); ``cache`` holds the image build cache and the lab's SSH key
    (``$GOVCLOUD_CACHE/lab``)."""

    root: Path
    cache: Path

    @classmethod
    def default(cls) -> LabPaths:
        root = Path(os.environ.get("GOVCLOUD_LAB_ROOT") or "/var/lib/govcloud")
        return cls(root=root, cache=cache_dir() / "lab")

    @property
    def lxcpath(self) -> Path:
        return self.root / "lxc"

    @property
    def state_dir(self) -> Path:
        return self.root / "lab"

    def state_file(self, lab: str) -> Path:
        return self.state_dir / f"{lab}.json"

    @property
    def ssh_key(self) -> Path:
        return self.cache / "id_ed25519"


def this_project() -> str:
    """What a lab records as the project that brought it up: this project's state directory."""
    return str(state_dir().resolve())


@dataclass
class BridgeRecord:
    ifname: str
    cidr: str
    zone: str
    host_address: str | None = None


@dataclass
class HostRecord:
    container: str
    role: str
    interfaces: list[dict[str, str]]  # {"bridge", "address", "ifname"}
    forwarding: bool = False
    gateway: str | None = None
    ruleset: bool = False


@dataclass
class LabState:
    name: str
    lxcpath: str
    image: str = ""
    nft_table: str = ""
    nft_source: str = ""  # the machine table as the lab rendered it
    nft_listing: str = ""  # the machine table's stateless listing right after the lab loaded it
    # the state directory of the project that last brought the lab up: the secrets its hosts
    # were given (OpenBao's shares, SSH files) are there, and `down` retires them there
    project: str = ""
    bridges: dict[str, BridgeRecord] = field(default_factory=dict)
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    version: int = STATE_VERSION

    def record(self, topo: Topology) -> None:
        """Add every object of ``topo`` (before creating it: an interrupted run stays known)."""
        for b in topo.bridges:
            self.bridges[b.name] = BridgeRecord(
                bridge_ifname(topo.name, b.name), b.cidr, b.zone, b.host_address
            )
        for h in topo.hosts:
            self.hosts[h.name] = HostRecord(
                container=container_name(topo.name, h.name),
                role=h.role,
                interfaces=[
                    {
                        "bridge": i.bridge,
                        "address": i.address,
                        "ifname": f"eth{n}",
                    }
                    for n, i in enumerate(h.interfaces)
                ],
                forwarding=h.forwarding,
                gateway=h.gateway,
                ruleset=h.ruleset is not None,
            )
        self.nft_table = nft_table(topo.name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data: dict[str, Any] = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r} is not {STATE_VERSION}")
        bridges = {k: BridgeRecord(**v) for k, v in data.pop("bridges", {}).items()}
        hosts = {k: HostRecord(**v) for k, v in data.pop("hosts", {}).items()}
        return cls(bridges=bridges, hosts=hosts, **data)


def load_state(paths: LabPaths, lab: str) -> LabState | None:
    path = paths.state_file(lab)
    if not path.is_file():
        return None
    try:
        return LabState.from_json(path.read_text())
    except PermissionError as exc:
        raise OperationError(f"cannot read the lab's state file {path}: run as root") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise OperationError(
            f"the lab's state file {path} is unreadable ({exc}); "
            f"`govcloud lab down` still removes every object carrying the lab's mark"
        ) from exc


def save_state(paths: LabPaths, state: LabState) -> None:
    """Write atomically (a crash leaves the old or the new file, never half of one)."""
    path = paths.state_file(state.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{state.name}.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        fh.write(state.to_json())
    os.replace(tmp, path)


def remove_state(paths: LabPaths, lab: str) -> None:
    paths.state_file(lab).unlink(missing_ok=True)
