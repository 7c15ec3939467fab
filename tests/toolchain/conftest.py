"""A real local control plane, started once per test session (``govcloud k8s up``) and stopped
at its end (``govcloud k8s down``), checking that no process is left behind."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from govcloud.errors import OperationError
from govcloud.toolchain import k8s
from govcloud.toolchain.tools import locate


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """``n`` consecutive free loopback ports, below the kernel's ephemeral range (32768 and
    up), where outgoing connections would take them before the servers bind."""
    first = random.randrange(20000, 30000)
    for start in [*range(first, 32000, 7), *range(20000, first, 7)]:
        if all(_free(p) for p in range(start, start + n)):
            return list(range(start, start + n))
    raise RuntimeError("no free loopback ports")


def govcloud(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govcloud", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Cluster:
    state_dir: Path
    kubeconfig: Path
    up: dict[str, object]

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(locate("kubectl")), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _require(*names: str) -> None:
    for name in names:
        try:
            locate(name)
        except OperationError as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _require(*k8s.COMPONENTS, "kubectl")
    state = tmp_path_factory.mktemp("k8s")
    etcd, _peer, api, cm = free_ports(4)
    r = govcloud(
        "k8s", "up", "--state-dir", str(state), "--api-port", str(api),
        "--etcd-port", str(etcd), "--controller-manager-port", str(cm), "--json",
    )  # fmt: skip
    if r.returncode != 0:
        govcloud("k8s", "down", "--state-dir", str(state))
        pytest.fail(f"govcloud k8s up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    info = json.loads(r.stdout)
    pids = [c["pid"] for c in info["components"].values()]
    try:
        yield Cluster(state, Path(info["kubeconfig"]), info)
    finally:
        d = govcloud("k8s", "down", "--state-dir", str(state), "--json")
        assert d.returncode == 0, d.stderr
        left = [p for p in pids if Path(f"/proc/{p}").exists() and _alive(p)]
        assert not left, f"processes left after down: {left}"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
