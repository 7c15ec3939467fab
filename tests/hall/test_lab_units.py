"""The pure parts of putting the hall on the lab: the image carries the hall's packages, the
runtime inventory gives hall.yml its inputs, the role documents every variable, and the lab
target's load source is a probe at a hall LAN."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from govcloud.errors import InputError
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC
from infra.hosts.apply import HALL_SEED_PLAN, hall_secrets_dir, runtime_inventory
from infra.lab import template
from infra.plan import make_plan
from loadtests.labsource import DEFAULT_SOURCE, source_hosts, source_pid
from security.pki.hostcerts import cert_dir, edge_dir
from security.pki.root import RootPaths

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_lab_image_carries_the_halls_packages_with_its_daemons_off() -> None:
    wanted = [
        line.strip()
        for line in (ROOT / "clusters/apps/hall/debian-packages.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert set(wanted) <= set(template.PACKAGES)
    # installed everywhere, running only where the hall play (or the hall profile) starts them
    assert {"nginx.service", "postgresql.service"} <= set(template.DISABLED)


def test_the_runtime_inventory_gives_the_hall_play_its_inputs(tmp_path: Path) -> None:
    plan = make_plan(load_spec(LAB_SPEC))
    inv = runtime_inventory(plan, tmp_path)
    nodes = [h.address for h in plan.hosts if h.role == "compute"]
    edge = inv["all"]["children"]["hall"]
    assert sorted(edge["hosts"]) == ["hall-1", "hall-2"]
    # the edge forwards to the hall's node port on every node over TLS, verifying the pods'
    # certificate for the service's name; each edge with its own certificate
    assert edge["vars"] == {
        "hall_upstreams": [f"{a}:30080" for a in nodes],
        "hall_upstream_tls_name": "hall.dsjj.govcloud.local",
        "hall_tls_src_dir": str(edge_dir()),
        "hall_tls_ca_file": str(RootPaths.default().cert),
    }
    for host in ("hall-1", "hall-2"):
        assert edge["hosts"][host]["hall_tls_name"] == f"{host}.zwfw.guizhou.gov.cn"
    # the database is on the department's own host, open to the nodes the pods leave by
    db = inv["all"]["children"]["hall_db"]
    assert db["hosts"] == {"dsjj-vm-1": {}}
    assert "dsjj-vm-1" in inv["all"]["children"]["vm"]["hosts"]
    assert db["vars"] == {
        "hall_db_seed_plan_file": str(tmp_path / HALL_SEED_PLAN),
        "hall_db_secrets_dir": str(hall_secrets_dir()),
        "hall_db_clients": [f"{a}/32" for a in nodes],
        "hall_db_backup_clients": ["10.255.4.11/32"],
        # TLS only, with its own certificate from the PKI (security.pki.hostcerts)
        "hall_db_tls_src_dir": str(cert_dir("database")),
        "hall_db_tls_name": "dsjj-vm-1.govcloud.local",
        "hall_db_tls_ca_file": str(RootPaths.default().cert),
    }
    # the storage host backs it up on the spec's schedule
    backup = inv["all"]["children"]["hall_backup"]
    assert backup["hosts"] == {"backup-1": {}}
    assert backup["vars"] == {
        "hall_backup_db_host": "10.255.10.10",
        "hall_backup_secrets_dir": str(hall_secrets_dir()),
        "hall_backup_every_hours": 24,
        "hall_backup_keep": 14,
        "hall_backup_ca_file": str(RootPaths.default().cert),
    }
    assert hall_secrets_dir().parts[-2:] == ("secrets", "hall")


@pytest.mark.parametrize(
    ("role", "prefix", "required"),
    [
        ("hall", "hall_", {"hall_upstream_tls_name"}),
        (
            "hall_db",
            "hall_db_",
            {"hall_db_seed_plan_file", "hall_db_secrets_dir", "hall_db_tls_name"},
        ),
        (
            "hall_backup",
            "hall_backup_",
            {"hall_backup_db_host", "hall_backup_secrets_dir", "hall_backup_ca_file"},
        ),
    ],
)
def test_the_hall_roles_document_every_variable_with_their_prefix(
    role: str, prefix: str, required: set[str]
) -> None:
    path = ROOT / "playbooks" / "roles" / role
    defaults = yaml.safe_load((path / "defaults/main.yml").read_text())
    specs = yaml.safe_load((path / "meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert all(name.startswith(prefix) for name in [*defaults, *options])
    assert set(defaults) <= set(options)
    # the controller paths come from the runtime inventory: required, no default
    assert set(options) - set(defaults) == required
    assert all(options[n]["required"] for n in required)
    tasks = (path / "tasks/main.yml").read_text()
    for module in ("template", "copy"):
        blocks = tasks.split(f"ansible.builtin.{module}:")[1:]
        assert all("validate:" in b.split("- name:")[0] for b in blocks), module


def test_the_load_sources_are_the_probes_at_the_hall_lans() -> None:
    spec = load_spec(LAB_SPEC)
    hosts = source_hosts(spec)
    assert DEFAULT_SOURCE in hosts
    assert set(hosts) == {
        f"probe-{lv}" for lv in ("province", "city", "county", "township", "village")
    }
    with pytest.raises(InputError, match=r"probe-gat.*is not a probe at a hall LAN"):
        source_pid(spec, "probe-gat")
