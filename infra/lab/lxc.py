"""A thin wrapper over the ``lxc-*`` commands and ``ip``, with timeouts and clean errors.

Every call runs a real command. A failure raises :class:`OperationError` naming the command and
the last lines of its error output, never a traceback. All containers live under one dedicated
lxcpath, so the lab never sees (or touches) containers it did not create.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from govcloud.errors import OperationError

DEFAULT_TIMEOUT = 60.0
ATTACH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` non-empty lines of ``text``."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; raise OperationError when it fails (if ``check``)."""
    shown = " ".join(argv)
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise OperationError(f"{argv[0]}: command not found (running: {shown})") from exc
    except subprocess.TimeoutExpired as exc:
        raise OperationError(f"timed out after {timeout:g} s: {shown}") from exc
    if check and proc.returncode != 0:
        detail = tail(proc.stderr) or tail(proc.stdout) or "(no output)"
        raise OperationError(f"command failed (exit {proc.returncode}): {shown}\n{detail}")
    return proc


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    state: str  # RUNNING, STOPPED, ... or MISSING
    pid: int | None = None
    ips: tuple[str, ...] = ()


class Lxc:
    """The lxc-* commands bound to one lxcpath."""

    def __init__(self, lxcpath: Path) -> None:
        self.lxcpath = lxcpath

    def _p(self) -> list[str]:
        return ["-P", str(self.lxcpath)]

    def config_path(self, name: str) -> Path:
        return self.lxcpath / name / "config"

    def exists(self, name: str) -> bool:
        return self.config_path(name).is_file()

    def names(self) -> list[str]:
        """Every container in this lxcpath (a directory holding a config file)."""
        if not self.lxcpath.is_dir():
            return []
        return sorted(p.parent.name for p in self.lxcpath.glob("*/config"))

    def info(self, name: str) -> ContainerInfo:
        if not self.exists(name):
            return ContainerInfo(name, "MISSING")
        proc = run(["lxc-info", *self._p(), "-n", name, "-H"], check=False, timeout=20)
        if proc.returncode != 0:
            return ContainerInfo(name, "UNKNOWN")
        state, pid, ips = "UNKNOWN", None, []
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "State":
                state = value
            elif key == "PID" and value.isdigit():
                pid = int(value)
            elif key == "IP":
                ips.append(value)
        return ContainerInfo(name, state, pid, tuple(ips))

    def state(self, name: str) -> str:
        return self.info(name).state

    def create(
        self,
        name: str,
        template: str,
        template_args: Sequence[str],
        *,
        config: Path,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        self.lxcpath.mkdir(parents=True, exist_ok=True)
        return run(
            [
                "lxc-create",
                *self._p(),
                "-n",
                name,
                "-f",
                str(config),
                "-t",
                template,
                "--",
                *template_args,
            ],
            timeout=timeout,
            env=env,
        )

    def snapshot_clone(self, source: str, name: str) -> None:
        """An overlayfs snapshot of ``source`` (which must stay stopped): milliseconds."""
        run(
            ["lxc-copy", *self._p(), "-n", source, "-N", name, "-s", "-B", "overlayfs", "-K"],
            timeout=120,
        )

    def start(self, name: str) -> None:
        log = self.lxcpath / name / "start.log"
        console = self.lxcpath / name / "console.log"
        console.unlink(missing_ok=True)
        argv = ["lxc-start", *self._p(), "-n", name, "-d", "-o", str(log), "-l", "WARN"]
        proc = run([*argv, "-L", str(console)], check=False, timeout=60)
        if proc.returncode != 0:
            saved = log.read_text(errors="replace") if log.is_file() else ""
            detail = tail(proc.stderr) or tail(saved)
            raise OperationError(f"container {name} failed to start:\n{detail}")

    def stop(self, name: str, *, kill: bool = False, timeout: float = 30) -> None:
        argv = ["lxc-stop", *self._p(), "-n", name]
        argv += ["-k"] if kill else ["-t", str(int(timeout))]
        proc = run(argv, check=False, timeout=timeout + 30)
        if proc.returncode != 0 and self.state(name) not in ("STOPPED", "MISSING"):
            raise OperationError(f"could not stop container {name}:\n{tail(proc.stderr)}")

    def wait(self, name: str, state: str, timeout: float = 30) -> None:
        run(
            ["lxc-wait", *self._p(), "-n", name, "-s", state, "-t", str(int(timeout))],
            timeout=timeout + 10,
        )

    def destroy(self, name: str) -> None:
        if not self.exists(name):
            # A directory without a config is the rest of an interrupted create/copy.
            leftover = self.lxcpath / name
            if leftover.is_dir():
                shutil.rmtree(leftover)
            return
        if self.state(name) not in ("STOPPED", "MISSING"):
            self.stop(name, kill=True)
        proc = run(["lxc-destroy", *self._p(), "-n", name], check=False, timeout=120)
        if proc.returncode != 0 and self.exists(name):
            raise OperationError(f"could not destroy container {name}:\n{tail(proc.stderr)}")
        leftover = self.lxcpath / name
        if leftover.is_dir():
            shutil.rmtree(leftover)

    def attach(
        self,
        name: str,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float = 30,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the running container (clean environment, root)."""
        return run(
            [
                "lxc-attach",
                *self._p(),
                "-n",
                name,
                "--clear-env",
                "-v",
                f"PATH={ATTACH_PATH}",
                "-v",
                "LANG=C.UTF-8",
                "--",
                *argv,
            ],
            input=input,
            timeout=timeout,
            check=check,
        )


# --- the machine's own links (bridges) -------------------------------------------------------


@dataclass(frozen=True)
class Link:
    name: str
    kind: str  # "bridge", "veth", "" for a plain device
    alias: str
    addresses: tuple[str, ...]  # "10.0.0.1/24"
    up: bool


def links() -> dict[str, Link]:
    """Every network interface of the machine, with its IPv4 addresses."""
    out = run(["ip", "-d", "-j", "addr", "show"], timeout=20).stdout
    result: dict[str, Link] = {}
    for item in json.loads(out or "[]"):
        addrs = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in item.get("addr_info", [])
            if a.get("family") == "inet"
        )
        kind = (item.get("linkinfo") or {}).get("info_kind", "")
        result[item["ifname"]] = Link(
            name=item["ifname"],
            kind=kind,
            alias=item.get("ifalias", "") or "",
            addresses=addrs,
            up="UP" in item.get("flags", []),
        )
    return result


def add_bridge(name: str, alias: str) -> None:
    run(["ip", "link", "add", "name", name, "type", "bridge", "stp_state", "0"])
    run(["ip", "link", "set", "dev", name, "alias", alias])
    run(["ip", "link", "set", "dev", name, "up"])


def set_bridge_up(name: str) -> None:
    run(["ip", "link", "set", "dev", name, "up"])


def delete_link(name: str) -> None:
    proc = run(["ip", "link", "del", "dev", name], check=False)
    if proc.returncode != 0 and name in links():
        raise OperationError(f"could not delete interface {name}:\n{tail(proc.stderr)}")


def add_address(dev: str, address: str) -> None:
    run(["ip", "addr", "add", address, "dev", dev])


def del_address(dev: str, address: str) -> None:
    run(["ip", "addr", "del", address, "dev", dev], check=False)


def route_via(dst: str, dev: str) -> str | None:
    """The next hop of the machine's route to ``dst`` through ``dev``, None if it has none."""
    proc = run(["ip", "-o", "route", "show", "exact", dst, "dev", dev], check=False)
    words = proc.stdout.split()
    return words[words.index("via") + 1] if "via" in words else None


def replace_route(dst: str, via: str, dev: str) -> None:
    run(["ip", "route", "replace", dst, "via", via, "dev", dev])


@contextlib.contextmanager
def locked(path: Path, what: str, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (two lab runs never build or change the same thing at
    once); says so when it has to wait for another run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say:
                say(f"waiting for another govcloud run holding {what}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_root() -> bool:
    return os.geteuid() == 0
