"""`govcloud app deploy / status / rollback` on the real API server with the department's own
credentials: the hall goes into dsjj's namespace, the cluster's inability to schedule is
reported as such, rollback restores the earlier template; another department is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.tenants.kube import KINDS
from tests.tenants.conftest import Applied, TenantCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HALL = ROOT / "clusters" / "apps" / "hall" / "app.yaml"
# the lab spec (quick to load) has the same dsjj and gat tenants, smaller: the cluster holds
# the Guizhou-scale ones, so what the lab spec admits the cluster admits too
LAB = ROOT / "examples" / "lab.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govcloud", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def hall_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return HALL


@pytest.fixture(scope="module")
def hall_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw: dict[str, Any] = yaml.safe_load(HALL.read_text())
    raw["image"] = raw["image"] + "-next"  # another template than the spec's own
    path = tmp_path_factory.mktemp("app") / "hall-v2.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_deploy_status_and_rollback_as_the_department(
    guizhou_applied: Applied, tenant_cluster: TenantCluster,     hall_v1: Path, hall_v2: Path,
) -> None:  # fmt: skip
    kc = str(tenant_cluster.department("dsjj"))
    common = ["--spec", str(LAB), "--kubeconfig", kc, "--timeout", "30", "--json"]
    r = run("app", "deploy", str(hall_v1), *common)
    out = json.loads(r.stdout)
    # applied, then reported plainly: no node will ever run these pods here
    assert r.returncode == 1, r.stderr
    assert out["applied"] == [
        "Service dsjj-prod/hall",
        "Deployment dsjj-prod/hall",
        "HorizontalPodAutoscaler dsjj-prod/hall",
    ]
    assert out["rollout"]["state"] == "cannot-schedule"
    assert "cannot schedule 2 pod(s) of revision 1" in out["rollout"]["message"]
    assert "Traceback" not in r.stderr

    r = run("app", "deploy", str(hall_v2), *common)
    assert json.loads(r.stdout)["rollout"]["revision"] == "2", r.stdout

    st = json.loads(run("app", "status", str(hall_v2), "--kubeconfig", kc, "--json").stdout)
    v1 = yaml.safe_load(hall_v1.read_text())["image"].rsplit(":", 1)[1]
    assert st["image"].endswith(f":{v1}-next")
    assert [(v["revision"], v["image"].rsplit(":", 1)[1]) for v in st["revisions"]] == [
        ("1", v1),
        ("2", f"{v1}-next"),
    ]
    assert all(p["node"] is None for p in st["pods"])

    r = run("app", "rollback", str(hall_v2), "--kubeconfig", kc, "--timeout", "30", "--json")
    back = json.loads(r.stdout)
    assert back["rollout"]["revision"] == "3", r.stdout
    dep = tenant_cluster.admin().get(KINDS[("apps/v1", "Deployment")], "hall", "dsjj-prod")
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{v1}")


def test_another_department_cannot_deploy_into_dsjj(
    guizhou_applied: Applied, tenant_cluster: TenantCluster, hall_v1: Path
) -> None:
    kc = str(tenant_cluster.department("gat"))
    r = run("app", "deploy", str(hall_v1), "--spec", str(LAB), "--kubeconfig", kc)
    assert r.returncode == 1
    assert "the API server refused" in r.stderr and 'User "gat-developer"' in r.stderr
    assert "Traceback" not in r.stderr


def test_a_bad_spec_sends_nothing(
    guizhou_applied: Applied, tenant_cluster: TenantCluster,     tmp_path: Path,
) -> None:  # fmt: skip
    raw: dict[str, Any] = yaml.safe_load(HALL.read_text())
    raw["name"] = "never"
    raw["replicas"] = 1000  # over quota
    bad = tmp_path / "never.yaml"
    bad.write_text(yaml.safe_dump(raw))
    kc = str(tenant_cluster.department("dsjj"))
    r = run("app", "deploy", str(bad), "--spec", str(LAB), "--kubeconfig", kc)
    assert r.returncode == 2
    assert "replicas" in r.stderr or "resources.cpu" in r.stderr
    admin = tenant_cluster.admin()
    for kind in (("apps/v1", "Deployment"), ("v1", "Service")):
        assert admin.get(KINDS[kind], "never", "dsjj-prod") is None
