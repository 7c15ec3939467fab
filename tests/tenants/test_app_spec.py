"""App specs are checked against the tenant before anything is sent; each problem names its
field. The hall's reference spec is valid."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.deploy import objects
from clusters.deploy.spec import parse_app, validate
from clusters.tenants.plan import TenantPlan, plan_tenants
from govcloud.errors import InputError
from govcloud.spec import Spec, load_spec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HALL = ROOT / "clusters" / "apps" / "hall" / "app.yaml"
LAB = ROOT / "examples" / "lab.yaml"


@pytest.fixture(scope="module")
def lab() -> tuple[Spec, TenantPlan]:
    s = load_spec(LAB)
    return s, plan_tenants(s)


@pytest.fixture
def hall() -> dict[str, Any]:
    return yaml.safe_load(HALL.read_text())


def _problems(raw: dict[str, Any], lab: tuple[Spec, TenantPlan]) -> dict[str, str]:
    try:
        app = parse_app(raw)
    except InputError as exc:
        return {p.path: p.message for p in exc.problems}
    return {p.path: p.message for p in validate(app, *lab)}


def test_the_hall_reference_spec_is_valid(
    hall: dict[str, Any], lab: tuple[Spec, TenantPlan]
) -> None:
    assert _problems(hall, lab) == {}
    app = parse_app(hall)
    kinds = [m["kind"] for m in objects.build(app, lab[1])]
    # citizens come in through the edge's node port (the tenant's), not an Ingress
    assert kinds == ["Service", "Deployment", "HorizontalPodAutoscaler"]


def test_unknown_tenant(hall: dict[str, Any], lab: tuple[Spec, TenantPlan]) -> None:
    hall["department"] = "nosuch"
    assert "no tenant 'nosuch'" in _problems(hall, lab)["department"]


def test_missing_image(hall: dict[str, Any], lab: tuple[Spec, TenantPlan]) -> None:
    del hall["image"]
    assert _problems(hall, lab) == {"image": "required field is missing"}


@pytest.mark.parametrize(
    ("image", "says"),
    [
        ("registry.govcloud.local/dsjj/hall", "no tag or digest"),
        ("registry.govcloud.local/dsjj/hall:latest", "'latest' is not a version"),
        ("registry.govcloud.local/gat/hall:1.0", "not from a registry tenant dsjj may use"),
    ],
)
def test_bad_images(
    hall: dict[str, Any], lab: tuple[Spec, TenantPlan], image: str, says: str
) -> None:
    hall["image"] = image
    assert says in _problems(hall, lab)["image"]


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_bad_port(hall: dict[str, Any], lab: tuple[Spec, TenantPlan], port: int) -> None:
    hall["ports"][0]["port"] = port
    assert "is not a port (1-65535)" in _problems(hall, lab)["ports[0].port"]


def test_health_check_on_an_undeclared_port(
    hall: dict[str, Any], lab: tuple[Spec, TenantPlan]
) -> None:
    hall["health"]["port"] = "admin"
    assert "not one of the app's port names" in _problems(hall, lab)["health.port"]


def test_secret_path_of_another_department(
    hall: dict[str, Any], lab: tuple[Spec, TenantPlan]
) -> None:
    hall["secrets"][1]["path"] = "kv-gat/hall/tokens"
    msg = _problems(hall, lab)["secrets[1].path"]
    assert "outside department dsjj's secrets (kv-dsjj/...)" in msg
    assert "belongs to department gat" in msg


def test_over_quota(hall: dict[str, Any], lab: tuple[Spec, TenantPlan]) -> None:
    over = copy.deepcopy(hall)
    over["autoscale"]["max"] = 10  # dsjj-prod has 3 CPU: 11 × a 500m limit is more
    msg = _problems(over, lab)["autoscale.max"]
    assert "over quota" in msg and "dsjj-prod's CPU quota (3 CPU)" in msg
    del hall["autoscale"]
    hall["replicas"] = 2
    hall["resources"].pop("cpu_limit")  # the limit is the request
    hall["resources"]["cpu"] = "2"
    assert "over quota" in _problems(hall, lab)["resources.cpu"]
    hall["resources"]["cpu"] = "4"
    assert "more than dsjj-prod's whole CPU quota" in _problems(hall, lab)["resources.cpu"]


def test_environment_and_level_must_be_the_tenant_s(
    hall: dict[str, Any], lab: tuple[Spec, TenantPlan]
) -> None:
    hall["environment"] = "staging"
    hall["level"] = "village"
    p = _problems(hall, lab)
    assert "has no 'staging' environment" in p["environment"]
    assert "serves province, not village" in p["level"]


def test_unknown_fields_and_bad_quantities_are_named(
    hall: dict[str, Any], lab: tuple[Spec, TenantPlan]
) -> None:
    hall["replica"] = 3
    hall["resources"]["memory"] = "lots"
    p = _problems(hall, lab)
    assert "unknown field" in p["replica"]
    hall.pop("replica")
    assert "expected memory like" in _problems(hall, lab)["resources.memory"]


def test_pod_template_meets_restricted(hall: dict[str, Any], lab: tuple[Spec, TenantPlan]) -> None:
    dep = next(m for m in objects.build(parse_app(hall), lab[1]) if m["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert secret_env["HALL_DSN"] == {"name": "hall-openbao", "key": "HALL_DSN"}
    assert "replicas" not in dep["spec"]  # the autoscaler owns the count


def test_cli_refuses_a_bad_spec_before_connecting(hall: dict[str, Any], tmp_path: Path) -> None:
    hall["secrets"][0]["path"] = "kv-rst/db"
    hall["ports"][0]["port"] = 99999
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(hall))
    r = subprocess.run(
        [sys.executable, "-m", "govcloud", "app", "deploy", str(bad), "--spec", str(LAB),
         "--kubeconfig", str(tmp_path / "unreachable.kubeconfig")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "ports[0].port" in r.stderr and "secrets[0].path" in r.stderr
    assert "kubeconfig" not in r.stderr  # refused before any connection was attempted
    assert "Traceback" not in r.stderr
