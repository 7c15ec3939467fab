"""The OpenBao cluster on the identity hosts: TLS, install (Ansible), init, unseal, join.

The ``openbao`` role installs and starts the servers; initialising and unsealing go over the API
from here, so the unseal shares never pass through Ansible. The shares and the initial root
token are written once to ``state/secrets/openbao/init.json`` (mode 0600) with a warning; the root
token is revoked as soon as the administrator identities exist (see :mod:`security.identity`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govcloud.errors import OperationError
from govcloud.paths import state_dir
from govcloud.toolchain import pki
from infra.inventory import InvHost
from security.openbao.client import Bao, BaoError, BaoSealed, BaoUnavailable, Endpoint

SHARES = 5
THRESHOLD = 3
PORT = 8200
WARNING = (
    "WARNING: these are the OpenBao unseal shares and (until it is revoked) the initial root "
    "token. Whoever holds THRESHOLD shares can unseal the cluster. Move the shares to their "
    "holders (one each, offline) and delete this file."
)


@dataclass(frozen=True)
class Paths:
    """Where identity keeps its local files (``state/`` is never committed)."""

    root: Path

    @classmethod
    def default(cls) -> Paths:
        return cls(state_dir())

    @property
    def tls(self) -> Path:
        return self.root / "identity" / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls / "ca.crt"

    @property
    def host_keys(self) -> Path:
        return self.root / "identity" / "hostkeys"

    @property
    def host_certs(self) -> Path:
        return self.root / "identity" / "hostcerts"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def init_file(self) -> Path:
        return self.secrets / "openbao" / "init.json"

    @property
    def credentials_file(self) -> Path:
        return self.secrets / "identity" / "credentials.json"

    @property
    def tokens(self) -> Path:
        return self.secrets / "identity" / "tokens"

    @property
    def users(self) -> Path:
        return self.secrets / "identity" / "keys"

    @property
    def automation_file(self) -> Path:
        """The automation identity's AppRole role id and secret id (0600)."""
        return self.secrets / "identity" / "automation.json"

    @property
    def automation_keys(self) -> Path:
        """The automation's ephemeral SSH key and its certificate (0700, files 0600)."""
        return self.secrets / "identity" / "automation"


def private_dirs(directory: Path) -> None:
    """Make ``directory`` and its parents up to ``secrets/`` exist with mode 0700."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for d in (directory, *directory.parents):
        os.chmod(d, 0o700)
        if d.name == "secrets":
            break


def retire_identity_state(paths: Paths) -> Path | None:
    """Move the secrets of an identity system whose hosts are gone (OpenBao's init file with
    its shares, the identity credentials, tokens and keys) to ``secrets/retired/<UTC time>/``,
    so the next bootstrap initialises the new cluster instead of refusing. The hosts' service
    certificates (``pki/``: security.pki.hostcerts) go with them: their intermediate was that
    cluster's, and the next one cannot revoke or list them, so the next hall play issues new
    ones. The offline root stays (it signs the next intermediate). Nothing is deleted.
    Returns where they went, or None when there was nothing to move."""
    host_certs = paths.root / "pki"
    found = [
        d for d in (paths.init_file.parent, paths.credentials_file.parent, host_certs) if d.exists()
    ]
    if not found:
        return None
    to = paths.secrets / "retired" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    private_dirs(to)
    for d in found:
        d.rename(to / d.name)
    return to


def write_secret(path: Path, data: dict[str, Any]) -> None:
    """Write JSON mode 0600 (directories 0700), atomically."""
    private_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def read_secret(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise OperationError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def identity_hosts(hosts: list[InvHost]) -> list[InvHost]:
    found = [h for h in hosts if h.role == "identity"]
    if not found:
        raise OperationError("the plan has no identity hosts (role: identity) for OpenBao")
    return found


def ensure_tls(hosts: list[InvHost], paths: Paths) -> Path:
    """Our own CA and one server certificate per OpenBao node (also a client certificate, for
    raft's join). Returns the directory the role copies from."""
    paths.tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, ca = pki.ensure_ca(paths.tls, "govcloud OpenBao CA")
    for h in identity_hosts(hosts):
        pki.ensure_cert(
            paths.tls,
            key,
            ca,
            pki.CertRequest(
                name=h.name,
                common_name=h.name,
                dns_names=(h.name, "localhost"),
                ip_addresses=(h.address, "127.0.0.1"),
                server=True,
                client=True,
            ),
        )
    return paths.tls


def endpoints(hosts: list[InvHost], paths: Paths, timeout: float = 5.0) -> list[Endpoint]:
    return [
        Endpoint(f"https://{h.address}:{PORT}", paths.ca_cert, timeout)
        for h in identity_hosts(hosts)
    ]


def connect(
    hosts: list[InvHost], paths: Paths, token: str | None = None, *, timeout: float = 5.0
) -> Bao:
    """A client on a node that serves: the active node if one answers, else any unsealed one
    (standbys forward to the active node). Fails with the state of every node."""
    states: list[str] = []
    fallback: Bao | None = None
    for ep in endpoints(hosts, paths, timeout):
        bao = Bao(ep, token)
        try:
            health = bao.read_health()
        except BaoError as exc:
            states.append(f"{ep.url}: {exc}")
            continue
        if not health.get("initialized"):
            states.append(f"{ep.url}: not initialised")
        elif health.get("sealed"):
            states.append(f"{ep.url}: sealed")
        elif not health.get("standby"):
            return bao
        else:
            fallback = fallback or bao
            states.append(f"{ep.url}: standby")
    if fallback is not None:
        return fallback
    raise BaoUnavailable("no OpenBao node serves: " + "; ".join(states))


def _wait(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return
        except BaoError:
            pass
        time.sleep(0.5)
    raise OperationError(f"timed out after {timeout:.0f} s waiting for {what}")


def bootstrap(
    hosts: list[InvHost], paths: Paths, say: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    """Initialise (once), unseal every node and wait until all have joined the raft cluster.

    Returns a summary: which node was initialised, the raft members, and whether the init
    file still holds a root token."""
    eps = endpoints(hosts, paths)
    first = Bao(eps[0])
    _wait(f"OpenBao on {eps[0].url}", lambda: bool(first.read_health()), 60)
    health = first.read_health()
    initialised_now = False
    if not health.get("initialized"):
        existing = read_secret(paths.init_file)
        if existing:
            raise OperationError(
                f"{eps[0].url} is not initialised but {paths.init_file} exists: refusing to "
                "initialise again over another cluster's shares (move the file away first)"
            )
        say(f"initialising {eps[0].url} ({SHARES} shares, threshold {THRESHOLD})")
        # initialising writes the keyring through raft: slow on a loaded host, so a long timeout
        slow = Bao(Endpoint(eps[0].url, eps[0].ca_cert, timeout=180))
        result = slow.initialize_cluster(SHARES, THRESHOLD)
        write_secret(
            paths.init_file,
            {
                "warning": WARNING.replace("THRESHOLD", str(THRESHOLD)),
                "shares": SHARES,
                "threshold": THRESHOLD,
                "unseal_keys_b64": result["keys_base64"],
                "root_token": result["root_token"],
                "root_token_revoked": False,
                "initialised_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        initialised_now = True
    init = read_secret(paths.init_file)
    if not init:
        raise OperationError(
            f"OpenBao is initialised but {paths.init_file} is missing: the unseal shares are "
            "with their holders; unseal with `bao operator unseal`"
        )
    keys: list[str] = init["unseal_keys_b64"][: init["threshold"]]
    for index, ep in enumerate(eps):
        bao = Bao(ep)
        _wait(f"OpenBao on {ep.url}", lambda b=bao: bool(b.read_health()), 60)  # type: ignore[misc]
        if index > 0:
            # a node that has not joined yet: unsealing it makes retry_join join the leader
            _wait(
                f"{ep.url} to see the cluster",
                lambda b=bao: bool(b.read_seal_status().get("type")),  # type: ignore[misc]
                30,
            )
        for attempt in range(20):
            status = bao.read_seal_status()
            if not status.get("sealed"):
                break
            if index > 0 and not status.get("initialized"):
                time.sleep(0.5)  # still joining: retry_join fetches the leader's config
            say(f"unsealing {ep.url}")
            try:
                for key in keys:
                    status = bao.submit_unseal_key(key)
                    if not status.get("sealed"):
                        break
            except (BaoSealed, BaoError):
                if attempt == 19:
                    raise
                time.sleep(1)
        _wait(
            f"{ep.url} unsealed",
            lambda b=bao: not b.read_seal_status().get("sealed"),  # type: ignore[misc]
            120,
        )
    members: list[dict[str, Any]] = []
    token = init.get("root_token") if not init.get("root_token_revoked") else None
    if token:

        def joined() -> bool:
            nonlocal members
            members = connect(hosts, paths, token).read_raft_configuration()
            voters = [m for m in members if m.get("voter")]
            return len(voters) >= len(eps)

        # autopilot promotes a new node to voter once it has been healthy for a while
        _wait("every node to join the raft cluster as a voter", joined, 180)
    return {
        "initialised_now": initialised_now,
        "nodes": [ep.url for ep in eps],
        "raft": [
            {"node": m.get("node_id"), "leader": m.get("leader"), "voter": m.get("voter")}
            for m in members
        ],
        "root_token_revoked": bool(init.get("root_token_revoked")),
    }


def status(hosts: list[InvHost], paths: Paths) -> list[dict[str, Any]]:
    """Each node's health as OpenBao reports it (no token needed)."""
    eps = endpoints(hosts, paths, timeout=3)
    if not paths.ca_cert.is_file():  # the deployment's TLS is not in this state directory
        error = f"no CA certificate at {paths.ca_cert} to check the nodes' TLS with"
        return [{"url": ep.url, "state": "unknown", "error": error} for ep in eps]
    rows = []
    for ep in eps:
        try:
            h = Bao(ep).read_health()
            state = (
                "uninitialised"
                if not h.get("initialized")
                else "sealed"
                if h.get("sealed")
                else "standby"
                if h.get("standby")
                else "active"
            )
            rows.append({"url": ep.url, "state": state, "version": h.get("version")})
        except BaoError as exc:
            rows.append({"url": ep.url, "state": "down", "error": str(exc)})
    return rows
