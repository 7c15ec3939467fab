"""The lab against the real machine: real bridges, real LXC containers, real packets.

One small lab (the sample topology under its own name and addresses) comes up once for the
session and is torn down at the end; the last test checks that ``down`` leaves nothing behind.
Needs root and LXC (``make deps`` installs it); the first run builds the cached image.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from govcloud.errors import OperationError
from govcloud.paths import state_dir
from infra.lab import lxc as lx
from infra.lab.lab import Lab, down, status, up
from infra.lab.sample import sample_topology
from infra.lab.state import LabPaths, load_state
from infra.lab.topology import Bridge, Topology

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "gctest"
NET, FIRST = "10.254", 11
MGMT, PUB, APP = (f"{NET}.{FIRST + i}" for i in range(3))
BASTION, WEB, APP1 = f"{MGMT}.10", f"{PUB}.10", f"{APP}.10"


def _usable() -> str | None:
    if not lx.is_root():
        return "the lab needs root"
    if shutil.which("lxc-create") is None:
        return "LXC is not installed (make deps)"
    return None


@pytest.fixture(scope="session")
def topo() -> Topology:
    return sample_topology(NAME, NET, FIRST)


@pytest.fixture(scope="session")
def lab(topo: Topology) -> Iterator[Lab]:
    reason = _usable()
    if reason:
        pytest.skip(reason)
    down(NAME)  # a lab left by an earlier, killed run
    report = up(topo)
    assert report.changed
    yield Lab(NAME)
    down(NAME)


def _tcp(lab: Lab, src: str, ip: str, port: int = 22) -> bool:
    return lab.exec(src, ["nc", "-z", "-w2", ip, str(port)], check=False).returncode == 0


def _ping(lab: Lab, src: str, ip: str) -> bool:
    argv = ["ping", "-n", "-q", "-c", "1", "-W", "2", ip]
    return lab.exec(src, argv, check=False, timeout=10).returncode == 0


@pytest.mark.timeout(900)
def test_every_host_running_and_reachable(lab: Lab, topo: Topology) -> None:
    st = status(NAME)
    assert [h.name for h in st.hosts] == [h.name for h in topo.hosts]
    assert all(h.state == "RUNNING" for h in st.hosts), st.as_dict()
    assert all(h.reachable for h in st.hosts), st.as_dict()
    assert st.healthy
    for h in topo.hosts:  # systemd is up and the host has its planned name
        assert lab.exec(h.name, ["hostname"]).stdout.strip() == h.name
        booted = lab.exec(h.name, ["systemctl", "is-system-running"], check=False).stdout.strip()
        assert booted in ("running", "degraded")


def test_second_up_changes_nothing(lab: Lab, topo: Topology) -> None:
    report = up(topo)
    assert not report.changed, [c for c in report.changes if c.action != "unchanged"]
    assert report.seconds < 30


def test_ping_across_the_router(lab: Lab) -> None:
    assert _ping(lab, "bastion", WEB)
    assert _ping(lab, "web", APP1)
    route = lab.exec("web", ["ip", "route", "get", APP1]).stdout
    assert f"via {PUB}.1" in route


def test_router_forwards_and_hosts_do_not(lab: Lab) -> None:
    fwd = ["sysctl", "-n", "net.ipv4.ip_forward"]
    assert lab.exec("r1", fwd).stdout.strip() == "1"
    assert lab.exec("web", fwd).stdout.strip() == "0"


def test_ssh_only_from_the_bastion(lab: Lab) -> None:
    assert _tcp(lab, "bastion", APP1)
    assert _tcp(lab, "bastion", WEB)
    assert not _tcp(lab, "web", APP1)
    assert not _tcp(lab, "app1", WEB)


def test_flushing_the_router_ruleset_opens_the_denied_flow(lab: Lab, topo: Topology) -> None:
    assert not _tcp(lab, "web", APP1)
    lab.exec("r1", ["nft", "flush", "ruleset"])
    try:
        assert _tcp(lab, "web", APP1), "with no ruleset the router forwards everything"
        # `up` notices a ruleset changed behind its back and loads it again
        report = up(topo)
        reloaded = [c for c in report.changes if c.kind == "ruleset"]
        assert [(c.name, c.action) for c in reloaded] == [("r1", "loaded")]
    finally:
        lab.load_ruleset("r1", topo.host("r1").ruleset or "")
    assert not _tcp(lab, "web", APP1)
    assert _tcp(lab, "bastion", APP1)


def test_a_bad_ruleset_is_refused_and_the_old_one_stays(lab: Lab) -> None:
    with pytest.raises(OperationError, match="nft -c"):
        lab.load_ruleset("r1", "table inet broken { chain x { nonsense } }\n")
    assert not _tcp(lab, "web", APP1)
    assert (
        lab.load_ruleset(
            "r1", sample_topology(NAME, NET, FIRST).host("r1").ruleset or "", if_changed=True
        )
        == "unchanged"
    )


def test_the_lab_key_logs_in_as_root_from_the_machine(lab: Lab) -> None:
    key = LabPaths.default().ssh_key
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    proc = subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            f"root@{BASTION}",
            "hostname",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "bastion"


def test_host_keys_differ_per_host(lab: Lab) -> None:
    keys = {
        h: lab.exec(h, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.split()[1]
        for h in ("bastion", "web")
    }
    assert keys["bastion"] != keys["web"]


def test_hall_profile_runs_postgresql(lab: Lab) -> None:
    active = ["systemctl", "is-active", "postgresql"]
    assert lab.exec("app1", active, check=False).stdout.strip() == "active"
    assert lab.exec("web", active, check=False).stdout.strip() != "active"


def test_up_leaves_a_service_the_configuration_enabled(lab: Lab, topo: Topology) -> None:
    """PostgreSQL enabled on a base host by its configuration (as the hall_db role does on a
    department's own host) stays enabled, and lab up does not restart the host for it."""
    enabled = ["systemctl", "is-enabled", "postgresql"]
    assert lab.exec("web", ["systemctl", "enable", "postgresql"]).returncode == 0
    try:
        report = up(topo)
        actions = {(c.kind, c.name): c.action for c in report.changes}
        assert actions[("host", "web")] == "unchanged"
        assert lab.exec("web", enabled, check=False).stdout.strip() == "enabled"
    finally:
        lab.exec("web", ["systemctl", "disable", "postgresql"], check=False)


def test_machine_does_not_route_between_lab_segments(lab: Lab) -> None:
    table = lx.run(["nft", "list", "table", "inet", "govcloud_lab_" + NAME]).stdout
    assert f'"{NAME}-pub"' in table and "drop" in table


def test_up_repairs_a_half_built_lab(lab: Lab, topo: Topology) -> None:
    lab.lxc.stop(lab.container("web"), kill=True)
    lab.lxc.destroy(lab.container("app1"))
    report = up(topo)
    actions = {(c.kind, c.name): c.action for c in report.changes}
    assert actions[("host", "web")] == "started"
    assert actions[("host", "app1")] == "created"
    assert actions[("host", "r1")] == "unchanged"
    assert status(NAME).healthy
    assert _tcp(lab, "bastion", APP1) and not _tcp(lab, "web", APP1)


def test_a_deleted_bridge_is_recreated_and_its_hosts_reattached(lab: Lab, topo: Topology) -> None:
    lx.delete_link(f"{NAME}-pub")
    assert not _ping(lab, "bastion", WEB)
    report = up(topo)
    actions = {(c.kind, c.name): c.action for c in report.changes}
    assert actions[("bridge", f"{NAME}-pub")] == "created"
    assert actions[("host", "web")] == "changed"
    assert actions[("host", "r1")] == "changed"
    assert actions[("host", "bastion")] == "unchanged"
    assert _ping(lab, "bastion", WEB)
    assert not _tcp(lab, "web", APP1)  # the router came back with its ruleset


def test_changed_host_is_reconfigured(lab: Lab, topo: Topology) -> None:
    moved = dataclasses.replace(
        topo.host("web"),
        interfaces=(dataclasses.replace(topo.host("web").interfaces[0], address=f"{PUB}.11/24"),),
    )
    changed = dataclasses.replace(
        topo, hosts=tuple(moved if h.name == "web" else h for h in topo.hosts)
    )
    try:
        report = up(changed)
        actions = {(c.kind, c.name): c.action for c in report.changes}
        assert actions[("host", "web")] == "changed"
        assert _ping(lab, "bastion", f"{PUB}.11")
    finally:
        up(topo)
    assert _ping(lab, "bastion", WEB)


def test_bridge_taken_by_something_else_is_refused(lab: Lab) -> None:
    other = Topology(
        "gcother",
        (Bridge("seg", "10.254.99.0/24", "x"),),
        (),
    )
    lx.run(["ip", "link", "add", "name", "gcother-seg", "type", "bridge"])
    try:
        with pytest.raises(OperationError, match="taken by an existing bridge"):
            up(other)
    finally:
        lx.delete_link("gcother-seg")
    assert "gcother-seg" not in lx.links()


def test_address_clash_with_a_machine_interface_is_refused(lab: Lab) -> None:
    lx.run(["ip", "link", "add", "name", "gcclash0", "type", "bridge"])
    try:
        lx.run(["ip", "addr", "add", "10.254.98.1/24", "dev", "gcclash0"])
        other = Topology("gcother", (Bridge("seg", "10.254.98.0/24", "x"),), ())
        with pytest.raises(OperationError, match=r"overlaps 10\.254\.98\.1/24"):
            up(other)
    finally:
        lx.delete_link("gcclash0")
    assert not any(n.startswith("gcother") for n in lx.links())


def test_cli_status_json(lab: Lab) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from govcloud.cli import main; main()",
            "lab",
            "status",
            "--name",
            NAME,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ok"] and len(data["hosts"]) == 4


def test_up_for_another_state_directory_says_so_and_records_it(
    lab: Lab, topo: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = load_state(LabPaths.default(), NAME)
    assert ours is not None and ours.project == str(state_dir().resolve())
    monkeypatch.setenv("GOVCLOUD_STATE", str(tmp_path))
    report = up(topo)
    adopted = [c for c in report.changes if c.action == "adopted"]
    assert [(c.kind, c.name, c.detail) for c in adopted] == [
        ("lab", NAME, f"brought up before for {ours.project}")
    ]
    after = load_state(LabPaths.default(), NAME)
    assert after is not None and after.project == str(tmp_path.resolve())
    monkeypatch.delenv("GOVCLOUD_STATE")
    assert [c.action for c in up(topo).changes if c.kind == "lab"] == ["adopted"]
    assert not up(topo).changed  # and then it is ours again, with nothing to do


def test_identity_hosts_all_new_retire_the_secrets_of_the_cluster_that_is_gone(
    lab: Lab, topo: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from security.openbao.cluster import Paths, write_secret

    monkeypatch.setenv("GOVCLOUD_STATE", str(tmp_path))
    paths = Paths.default()
    write_secret(paths.init_file, {"shares": 5})
    hosts = tuple(dataclasses.replace(h, role="identity") if h.name == "app1" else h
                  for h in topo.hosts)  # fmt: skip
    with_identity = dataclasses.replace(topo, hosts=hosts)
    up(with_identity)
    assert paths.init_file.is_file()  # the node is the one the shares open: kept
    lab.lxc.stop(lab.container("app1"), kill=True)
    lab.lxc.destroy(lab.container("app1"))  # removed behind the lab's back
    report = up(with_identity)
    assert ("identity state", "retired") in [(c.kind, c.action) for c in report.changes]
    assert not paths.init_file.exists()
    assert list(paths.secrets.glob("retired/*/openbao/init.json"))
    monkeypatch.delenv("GOVCLOUD_STATE")
    up(topo)
    assert not up(topo).changed


def test_down_leaves_nothing_behind(lab: Lab) -> None:
    # Last test of the module: the fixture's own teardown is then a no-op.
    report = down(NAME)
    assert {c.kind for c in report.removed} >= {"host", "bridge", "nftables"}
    lxcpath = LabPaths.default().lxcpath
    assert not [c for c in lab.lxc.names() if c.startswith(f"{NAME}-")]
    assert not [p for p in lxcpath.iterdir() if p.name.startswith(f"{NAME}-")]
    assert not [n for n in lx.links() if n.startswith(f"{NAME}-")]
    tables = lx.run(["nft", "list", "tables"]).stdout
    assert f"govcloud_lab_{NAME}" not in tables
    assert not LabPaths.default().state_file(NAME).exists()
    assert not status(NAME).exists
    again = down(NAME)
    assert again.removed == []
