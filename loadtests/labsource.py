"""Where ``--target lab`` sends its load from: inside the lab, on the citizens' planned path.

The machine running govcloud sits on the lab's management segment, and the policy gives the
management zone no flow to the halls: only the hall LANs (zone ``sites``) reach the
internet-access zone on 80/443 (flow ``halls-to-online-hall``). Opening a flow for the operators
would test a path no citizen takes and widen the halls' exposure, so the lab target does not:
the whole run (readiness checks, staff tokens, the backlog, locust and its workers) enters the
network namespace of a probe at a hall LAN, by default the province hall's (``probe-province``).
Its packets cross the level routers' and the hall hosts' own rulesets, as a citizen's would;
the processes stay the machine's (its Python and locust, its CPU, not the container's limits).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Iterator

from govcloud.errors import InputError, OperationError, Problem
from govcloud.spec.model import Spec

DEFAULT_SOURCE = "probe-province"
CLONE_NEWNET = 0x40000000


def source_hosts(spec: Spec) -> list[str]:
    """The lab hosts a load test may run from: the probes at the halls of each level."""
    from infra.lab.from_plan import plan_topology

    return sorted(
        h.name
        for h in plan_topology(spec).hosts
        if h.role == "probe" and any(i.bridge.startswith("site-") for i in h.interfaces)
    )


def source_pid(spec: Spec, source: str) -> int:
    """The init process of the source's container (whose network namespace the run joins)."""
    hosts = source_hosts(spec)
    if source not in hosts:
        raise InputError(
            [
                Problem(
                    "--source",
                    f'"{source}" is not a probe at a hall LAN of lab {spec.name}; '
                    f"use one of {', '.join(hosts) or '(none: the lab has no probes)'}",
                )
            ]
        )
    return host_pid(spec, source, "the load source")


def host_pid(spec: Spec, host: str, what: str = "host") -> int:
    """The init process of a running lab host's container."""
    from infra.lab.lab import Lab

    lab = Lab(spec.name)
    info = lab.lxc.info(lab.container(host))
    if info.state != "RUNNING" or not info.pid:
        raise OperationError(
            f"{what} {host} (container {lab.container(host)}) is {info.state}: "
            f"`govcloud lab up` starts the lab"
        )
    return info.pid


def _setns(fd: int, what: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OperationError(f"cannot enter the network namespace of {what}: {os.strerror(err)}")


@contextlib.contextmanager
def network_namespace(pid: int, what: str) -> Iterator[None]:
    """Run the body (and every process it starts) in the network namespace of ``pid``.

    Only the calling thread moves (setns(2)); it must be the main thread, which starts the load
    test's subprocesses. The machine's own namespace is restored on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        raise OperationError("a lab load test must run on the main thread")
    try:
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
    except OSError as exc:
        raise OperationError(f"cannot open this process's network namespace: {exc}") from None
    try:
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        except OSError as exc:
            raise OperationError(f"cannot open the network namespace of {what}: {exc}") from None
        try:
            _setns(target, what)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own, "this machine")
    finally:
        os.close(own)


@contextlib.contextmanager
def load_source(
    spec: Spec, source: str | None = None, echo: Callable[[str], None] = lambda _t: None
) -> Iterator[str]:
    """Enter the network namespace of the lab's load source for the body; yields its name."""
    name = source or DEFAULT_SOURCE
    pid = source_pid(spec, name)
    echo(f"load source: {name} (its hall LAN, the planned path to the halls)")
    with network_namespace(pid, name):
        yield name


def lab_admin_token() -> str | None:
    """The halls' admin token hall.yml generated on this controller, if it did."""
    from infra.hosts.apply import hall_secrets_dir

    path = hall_secrets_dir() / "admin-token"
    try:
        token = path.read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError):
        return None
    return token or None
