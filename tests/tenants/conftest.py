"""One real API server for the tenant tests (its own state directory and free loopback ports,
so it never meets another session's), the Guizhou-scale spec applied to it once, and
department credentials."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clusters.tenants import apply as tenant_apply
from clusters.tenants.credentials import department_kubeconfig
from clusters.tenants.kube import Kube
from clusters.tenants.plan import TenantPlan, plan_tenants
from govcloud.spec import Spec, parse
from govcloud.spec.generate import dump, generate
from govcloud.toolchain import k8s
from govcloud.toolchain.k8s import ClusterConfig
from govcloud.toolchain.tools import locate
from tests.toolchain.conftest import _alive, free_ports, govcloud


@dataclass(frozen=True)
class TenantCluster:
    cfg: ClusterConfig
    kubeconfig: Path

    def admin(self) -> Kube:
        return Kube.from_kubeconfig(self.kubeconfig, pool=32)

    def department(self, code: str, role: str = "developer") -> Path:
        return department_kubeconfig(self.cfg, code, role)

    def as_department(self, code: str, role: str = "developer") -> Kube:
        return Kube.from_kubeconfig(self.department(code, role))


@contextmanager
def running_cluster(state: Path) -> Iterator[TenantCluster]:
    """A control plane of its own (``govcloud k8s up`` in ``state`` on free loopback ports),
    stopped on exit, checking that no process is left behind."""
    for name in (*k8s.COMPONENTS, "kubectl"):
        try:
            locate(name)
        except Exception as exc:  # the toolchain says what is missing and how to get it
            pytest.fail(str(exc), pytrace=False)
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
        yield TenantCluster(ClusterConfig.load(state), Path(info["kubeconfig"]))
    finally:
        d = govcloud("k8s", "down", "--state-dir", str(state), "--json")
        assert d.returncode == 0, d.stderr
        left = [p for p in pids if _alive(p)]
        assert not left, f"processes left after down: {left}"


@pytest.fixture(scope="session")
def tenant_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantCluster]:
    with running_cluster(tmp_path_factory.mktemp("tenants-k8s")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def guizhou_spec() -> Spec:
    return parse(generate("guizhou"))


@pytest.fixture(scope="session")
def guizhou_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "guizhou.yaml"
    path.write_text(dump(generate("guizhou")), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def guizhou_plan(guizhou_spec: Spec) -> TenantPlan:
    return plan_tenants(guizhou_spec)


@dataclass(frozen=True)
class Applied:
    plan: TenantPlan
    first: tenant_apply.Outcome
    second: tenant_apply.Outcome
    live_after_first: dict[Any, dict[str, Any]]


@pytest.fixture(scope="session")
def guizhou_applied(tenant_cluster: TenantCluster, guizhou_plan: TenantPlan) -> Applied:
    """All 59 tenants applied twice (the second apply must change nothing)."""
    k = tenant_cluster.admin()
    first = tenant_apply.apply(guizhou_plan, k)
    live = tenant_apply.live_objects(k)
    second = tenant_apply.apply(guizhou_plan, k)
    _wait_quotas(k, [ns for t in guizhou_plan.tenants for ns in t.namespaces])
    return Applied(guizhou_plan, first, second, live)


def _wait_quotas(k: Kube, namespaces: list[str], timeout: float = 60) -> None:
    """Until the quota controller has computed every tenant quota's usage (before that the
    quota admission refuses pods with 'status unknown')."""
    from clusters.tenants.kube import KINDS

    deadline = time.monotonic() + timeout
    want = set(namespaces)
    while time.monotonic() < deadline:
        quotas = k.list(KINDS[("v1", "ResourceQuota")])
        done = {q["metadata"]["namespace"] for q in quotas if (q.get("status") or {}).get("hard")}
        if want <= done:
            return
        time.sleep(1)
    raise AssertionError(f"quota status not computed for {sorted(want - done)[:5]}...")
