"""The lab's pure parts: names, topology checks, rendered files, the state file."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from govcloud.errors import InputError
from infra.lab import render
from infra.lab.sample import sample_topology
from infra.lab.state import LabPaths, LabState, load_state, save_state
from infra.lab.topology import Bridge, Interface, LabHost, Route, Topology

pytestmark = pytest.mark.unit
LOADER = (
    Path(__file__).resolve().parents[2] / "playbooks/roles/firewall/files/govcloud-load-ruleset"
)


def test_bridge_names_fit_linux_limit_and_carry_the_lab_name() -> None:
    assert render.bridge_ifname("sample", "mgmt") == "sample-mgmt"
    assert render.bridge_ifname("lab", "lab-mgmt") == "lab-mgmt"  # already prefixed: verbatim
    long = render.bridge_ifname("govlab", "dept-public-security")
    assert len(long) <= render.IFNAMSIZ
    assert long.startswith("govlab-")
    # stable, and distinct for distinct long names sharing a prefix
    assert long == render.bridge_ifname("govlab", "dept-public-security")
    assert long != render.bridge_ifname("govlab", "dept-public-securitx")


def test_container_and_table_names() -> None:
    assert render.container_name("sample", "r1") == "sample-r1"
    assert render.nft_table("lab-2") == "govcloud_lab_lab_2"


def test_sample_topology_is_consistent() -> None:
    render.check_topology(sample_topology())
    render.check_topology(sample_topology("t2", "10.254", 7))


def _problems(topo: Topology) -> str:
    with pytest.raises(InputError) as err:
        render.check_topology(topo)
    return err.value.render()


def test_check_topology_reports_every_problem() -> None:
    topo = sample_topology()
    bad_host = LabHost(
        "x",
        "compute",
        (Interface("nope", "10.9.9.9/24"), Interface("pub", "10.255.2.1/24")),
        gateway="10.1.1.1",
        routes=(Route("10.7.0.0/16", "10.8.8.8"),),
        template="gpu",
    )
    text = _problems(
        dataclasses.replace(
            topo,
            name="Bad_Name",
            bridges=(*topo.bridges, Bridge("mgmt2", "10.255.1.128/25", "x")),
            hosts=(*topo.hosts, bad_host),
        )
    )
    for needle in (
        "lab name",
        "overlaps bridge mgmt",
        "bridge 'nope' is not in the topology",
        "address 10.255.2.1 is also used by host r1",
        "10.1.1.1 is on none of the host's segments",
        "next hop 10.8.8.8",
        "template 'gpu'",
    ):
        assert needle in text, needle


def test_check_topology_wants_addresses_with_their_segment_prefix() -> None:
    topo = sample_topology()
    web = dataclasses.replace(topo.host("web"), interfaces=(Interface("pub", "10.255.2.10/16"),))
    hosts = tuple(web if h.name == "web" else h for h in topo.hosts)
    assert "is not an address of the segment" in _problems(dataclasses.replace(topo, hosts=hosts))


def test_clashes_with_machine_interfaces_ignore_our_own_bridges() -> None:
    topo = sample_topology()
    existing = {"eth0": ("10.255.2.7/16",), "sample-mgmt": ("10.255.1.254/24",), "lo": ()}
    found = render.clashes(topo, existing, ours={"sample-mgmt"})
    assert len(found) == 3  # all three /24 fall inside eth0's /16
    assert all("eth0" in f for f in found)
    assert render.clashes(topo, {"eth0": ("192.0.2.2/24",)}, set()) == []


def test_lxc_config_block() -> None:
    topo = sample_topology()
    block = render.lxc_config_block(topo, topo.host("r1"))
    assert "# govcloud-lab:sample host=r1 role=router" in block
    assert "lxc.net.2.link = sample-app" in block
    assert "lxc.net.0.ipv4.address = 10.255.1.1/24" in block
    assert "ipv4.gateway" not in block
    assert "lxc.sysctl.net.ipv4.ip_forward = 1" in block
    web = render.lxc_config_block(topo, topo.host("web"))
    assert "lxc.net.0.ipv4.gateway = 10.255.2.1" in web
    assert "lxc.sysctl.net.ipv4.ip_forward = 0" in web
    macs = {render.mac_address("sample", h.name, 0) for h in topo.hosts}
    assert len(macs) == len(topo.hosts)
    assert all(m.startswith("02:") for m in macs)


def test_merge_config_replaces_the_managed_block_and_stray_keys() -> None:
    topo = sample_topology()
    base = (
        "lxc.include = /usr/share/lxc/config/debian.common.conf\n"
        "lxc.net.0.type = empty\n"
        "lxc.uts.name = govcloud-bookworm-x\n"
        "lxc.rootfs.path = overlay:/a:/b\n"
    )
    block = render.lxc_config_block(topo, topo.host("web"))
    merged = render.merge_config(base, block)
    assert "lxc.net.0.type = empty" not in merged
    assert "lxc.rootfs.path = overlay:/a:/b" in merged
    assert merged.count("lxc.uts.name") == 1
    # idempotent: merging the same block again changes nothing
    assert render.merge_config(merged, block) == merged
    other = render.lxc_config_block(topo, topo.host("bastion"))
    assert render.merge_config(merged, other) == render.merge_config(base, other)


def test_interfaces_file_is_manual_with_routes_on_the_right_interface() -> None:
    h = LabHost(
        "h",
        "compute",
        (Interface("a", "10.0.1.5/24"), Interface("b", "10.0.2.5/24")),
        gateway="10.0.1.1",
        routes=(Route("172.16.0.0/12", "10.0.2.1"),),
    )
    text = render.interfaces_file(h)
    assert "dhcp" not in text
    assert "iface eth0 inet manual" in text and "iface eth1 inet manual" in text
    assert text.index("post-up ip route replace 172.16.0.0/12 via 10.0.2.1 dev eth1") > text.index(
        "iface eth1"
    )


def test_host_table_keeps_bridged_traffic_and_drops_routed() -> None:
    text = render.host_nft_table(sample_topology())
    assert 'iifname "sample-pub" oifname "sample-pub" accept' in text
    assert "drop" in text
    assert "govcloud-lab:sample" in text


def test_host_table_parses() -> None:
    nft = subprocess.run(["which", "nft"], capture_output=True, text=True).stdout.strip()
    if not nft:
        pytest.skip("nft is not installed")
    proc = subprocess.run(
        [nft, "-c", "-f", "-"],
        input=render.host_nft_table(sample_topology()),
        text=True,
        capture_output=True,
    )
    if "Operation not permitted" in proc.stderr:
        pytest.skip("nft -c needs root")
    assert proc.returncode == 0, proc.stderr


def test_state_file_round_trip(tmp_path: Path) -> None:
    paths = LabPaths(root=tmp_path / "root", cache=tmp_path / "cache")
    assert load_state(paths, "sample") is None
    state = LabState("sample", str(paths.lxcpath), image="img")
    state.record(sample_topology())
    save_state(paths, state)
    back = load_state(paths, "sample")
    assert back == state
    assert list(back.hosts) == [h.name for h in sample_topology().hosts]  # topology order kept
    assert back.hosts["r1"].ruleset and back.hosts["r1"].forwarding
    assert back.bridges["mgmt"].ifname == "sample-mgmt"
    assert not list(paths.state_dir.glob(".*"))  # no temporary file left behind


def test_unreadable_state_file_is_a_clean_error(tmp_path: Path) -> None:
    from govcloud.errors import OperationError

    paths = LabPaths(root=tmp_path, cache=tmp_path)
    paths.state_dir.mkdir(parents=True)
    paths.state_file("x").write_text("{not json")
    with pytest.raises(OperationError, match="lab down"):
        load_state(paths, "x")


def test_loader_script_is_posix_sh() -> None:
    text = LOADER.read_text()
    assert text.startswith("#!/bin/sh")
    assert "nft -c -f" in text and "flush ruleset" in text
    proc = subprocess.run(["sh", "-n", str(LOADER)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_point_to_point_31_uses_both_addresses() -> None:
    topo = Topology(
        "p2p",
        (Bridge("up", "10.0.17.8/31", "sites"),),
        (
            LabHost("a", "router", (Interface("up", "10.0.17.8/31"),), forwarding=True),
            LabHost("b", "router", (Interface("up", "10.0.17.9/31"),), gateway="10.0.17.8"),
        ),
    )
    render.check_topology(topo)


def test_upper_dir_of_an_overlay_clone() -> None:
    from infra.lab.lab import _upper_dir

    cfg = "lxc.rootfs.path = overlay:/l/img/rootfs:/l/c1/overlay/delta\n"
    assert _upper_dir(cfg, Path("/l/c1")) == Path("/l/c1/overlay/delta")
    assert _upper_dir("", Path("/l/c1")) == Path("/l/c1/overlay/delta")


def test_status_probes_from_the_router_first() -> None:
    from infra.lab.lab import _peer

    state = LabState("sample", "/x")
    state.record(sample_topology())
    running = dict.fromkeys(state.hosts, "RUNNING")
    assert _peer(state, "web", running) == ("r1", "10.255.2.10")
    assert _peer(state, "r1", running) in {
        ("bastion", "10.255.1.1"),
        ("app1", "10.255.3.1"),
        ("web", "10.255.2.1"),
    }
    assert _peer(state, "web", {**running, "r1": "STOPPED"}) is None


def test_down_retires_identity_secrets_where_the_lab_was_brought_up(tmp_path: Path) -> None:
    from infra.lab.lab import retire_identity
    from security.openbao.cluster import Paths, write_secret

    owner, other = Paths(tmp_path / "owner"), Paths(tmp_path / "other")
    for p in (owner, other):
        write_secret(p.init_file, {"shares": 5})
    state = LabState("sample", "/x", project=str(owner.root))
    state.record(sample_topology())
    assert retire_identity(state) is None  # the sample lab has no OpenBao node
    state.hosts["app1"].role = "identity"
    change = retire_identity(state)
    assert change is not None and change.action == "retired"
    assert not owner.init_file.exists()
    assert list(owner.secrets.glob("retired/*/openbao/init.json"))
    assert other.init_file.is_file()  # another project's cluster is not touched
