"""The cluster's pure parts: its plan, the spec's checks of its ranges, its flows, the node
hosts' LXC settings, certificates and OCI images."""

from __future__ import annotations

import copy
import gzip
import io
import ipaddress
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from clusters.cloud.plan import make_cluster_plan
from clusters.images.oci import ImageSpec, build
from clusters.images.registry import split_reference
from govcloud.errors import InputError
from govcloud.spec.checks import check
from govcloud.spec.model import Spec
from infra.lab import render
from infra.lab.from_plan import lab_topology
from infra.plan import make_plan

pytestmark = pytest.mark.unit


def _spec(raw: dict[str, Any]) -> Spec:
    return Spec.model_validate(raw)


def test_the_lab_plans_a_cluster_with_a_pod_subnet_per_node(lab_raw: dict[str, Any]) -> None:
    plan = make_plan(_spec(lab_raw))
    cp = make_cluster_plan(plan.spec, plan.hosts)
    assert cp is not None
    assert cp.api_host == "k8s-cp" and cp.registry_host == "registry"
    assert [n.name for n in cp.nodes] == ["compute-1", "compute-2"]
    subnets = [ipaddress.IPv4Network(n.pod_cidr) for n in cp.nodes]
    assert all(s.subnet_of(ipaddress.IPv4Network(cp.pod_cidr)) for s in subnets)
    assert not subnets[0].overlaps(subnets[1])
    assert ipaddress.IPv4Address(cp.dns_ip) in ipaddress.IPv4Network(cp.service_cidr)
    assert cp.registry == "registry.govcloud.local"
    assert cp.server == f"https://{cp.api_address}:6443"


def test_adding_a_node_renumbers_none(lab_raw: dict[str, Any]) -> None:
    before = make_plan(_spec(lab_raw))
    raw = copy.deepcopy(lab_raw)
    raw["datacenter"]["hosts"].append({"name": "compute-3", "role": "compute", "rack": "R04"})
    after = make_plan(_spec(raw))
    old = make_cluster_plan(before.spec, before.hosts)
    new = make_cluster_plan(after.spec, after.hosts)
    assert old and new
    assert new.nodes[: len(old.nodes)] == old.nodes
    assert new.nodes[-1].name == "compute-3"


def test_no_control_plane_host_plans_no_cluster(lab_raw: dict[str, Any]) -> None:
    raw = copy.deepcopy(lab_raw)
    raw["datacenter"]["hosts"] = [
        h for h in raw["datacenter"]["hosts"] if h["role"] not in ("control-plane", "registry")
    ]
    plan = make_plan(_spec(raw))
    assert make_cluster_plan(plan.spec, plan.hosts) is None
    assert not any(r.name.startswith("k8s-") for r in plan.policy.rules)


def test_a_cluster_without_a_registry_is_refused(lab_raw: dict[str, Any]) -> None:
    raw = copy.deepcopy(lab_raw)
    raw["datacenter"]["hosts"] = [h for h in raw["datacenter"]["hosts"] if h["role"] != "registry"]
    problems = check(_spec(raw))
    assert any(p.path == "datacenter.hosts" and "registry" in p.message for p in problems)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pod_cidr", "10.244.0.0/16", "overlaps the extranet supernet"),
        ("service_cidr", "172.20.0.0/16", "overlaps the intranet supernet"),
        ("service_cidr", "100.64.0.0/20", "must not overlap cluster.pod_cidr"),
        ("pod_cidr", "100.64.0.0/25", "must fit in cluster.pod_cidr"),
        ("pod_cidr", "not-a-prefix", "expected an IPv4 prefix"),
    ],
)
def test_cluster_ranges_are_checked(
    lab_raw: dict[str, Any], field: str, value: str, message: str
) -> None:
    raw = copy.deepcopy(lab_raw)
    raw.setdefault("cluster", {})[field] = value
    problems = check(_spec(raw))
    assert any(message in p.message and p.path.startswith("cluster.") for p in problems), problems


def test_too_many_nodes_for_the_pod_range(lab_raw: dict[str, Any]) -> None:
    raw = copy.deepcopy(lab_raw)
    raw["cluster"] = {"pod_cidr": "100.64.0.0/24", "node_pod_prefix": 25}
    raw["datacenter"]["hosts"] += [
        {"name": f"compute-{i}", "role": "compute", "rack": "R01"} for i in range(3, 5)
    ]
    problems = check(_spec(raw))
    assert any("fewer than the 4 compute hosts" in p.message for p in problems), problems


def test_the_lab_spec_has_valid_cluster_ranges(lab_raw: dict[str, Any]) -> None:
    assert [p for p in check(_spec(lab_raw)) if p.path.startswith("cluster")] == []


def test_the_cluster_flows_are_planned(lab_raw: dict[str, Any]) -> None:
    plan = make_plan(_spec(lab_raw))
    rules = {r.name: r for r in plan.policy.rules}
    cp = make_cluster_plan(plan.spec, plan.hosts)
    assert cp is not None
    api = rules["k8s-nodes-to-apiserver"]
    assert api.ports == (6443,) and api.dst_prefixes == (f"{cp.api_address}/32",)
    assert set(api.src_prefixes) == {f"{n.address}/32" for n in cp.nodes}
    assert rules["k8s-apiserver-to-kubelets"].ports == (10250,)
    assert rules["k8s-operators-to-apiserver"].src == "management"
    assert rules["k8s-nodes-to-registry"].dst_prefixes == (f"{cp.registry_address}/32",)
    # the control plane's host ruleset lets the nodes and the operators in on 6443, nothing else
    cp_rules = plan.rulesets["role-control-plane"]
    assert "tcp dport { 6443 }" in cp_rules and "10250" not in cp_rules
    assert "tcp dport { 10250 }" in plan.rulesets["role-compute"]
    # the API server proxies the metrics API to metrics-server in the nodes' network namespace
    metrics = rules["k8s-apiserver-to-metrics-server"]
    assert metrics.ports == (4443,) and metrics.src_prefixes == (f"{cp.api_address}/32",)


def test_only_node_hosts_get_the_node_lxc_settings(lab_raw: dict[str, Any]) -> None:
    topo = lab_topology(make_plan(_spec(lab_raw)))
    by_name = {h.name: h for h in topo.hosts}
    node = render.lxc_config_block(topo, by_name["compute-1"])
    plain = render.lxc_config_block(topo, by_name["bastion"])
    for line in render.NODE_LXC_SETTINGS:
        assert line in node.splitlines()
        assert line not in plain.splitlines()
    assert "lxc.sysctl.net.ipv4.ip_forward = 1" in node
    assert "lxc.sysctl.net.ipv4.ip_forward = 0" in plain
    # the operators' machine reaches the data center's segments through the core router: one
    # route per segment, never the whole supernet (the machine's resolver may be in it)
    mgmt = next(b for b in topo.bridges if b.name == "management")
    routes = {r.dst: r.via for r in mgmt.host_routes}
    assert set(routes.values()) == {"10.255.0.1"}
    assert "10.255.3.0/24" in routes and "10.255.0.0/16" not in routes
    assert render.captured(topo, {"10.255.255.53": "DNS resolver"}) == []
    assert render.captured(topo, {"10.255.3.53": "DNS resolver"}) == [
        "segment dc-compute would capture 10.255.3.53, the machine's DNS resolver",
        "the machine's route 10.255.3.0/24 via 10.255.0.1 would capture 10.255.3.53, "
        "the machine's DNS resolver",
    ]


def test_certificates_name_each_identity(lab_raw: dict[str, Any], tmp_path: Path) -> None:
    from cryptography import x509

    from clusters.cloud import pki

    plan = make_plan(_spec(lab_raw))
    cp = make_cluster_plan(plan.spec, plan.hosts)
    assert cp is not None
    d = pki.ensure(cp, tmp_path / "pki")
    node = x509.load_pem_x509_certificate((d / "node-compute-1.crt").read_bytes())
    assert node.subject.rfc4514_string() == "CN=system:node:compute-1,O=system:nodes"
    api = x509.load_pem_x509_certificate((d / "apiserver.crt").read_bytes())
    san = api.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    assert {cp.api_address, cp.api_service_ip} <= ips
    assert (d / "encryption-config.yaml").stat().st_mode & 0o077 == 0
    # the front proxy (aggregated APIs) has a CA of its own, not the cluster's
    ca = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    fp_ca = x509.load_pem_x509_certificate((d / "front-proxy-ca.crt").read_bytes())
    client = x509.load_pem_x509_certificate((d / "front-proxy-client.crt").read_bytes())
    assert fp_ca.subject != ca.subject and client.issuer == fp_ca.subject
    assert client.subject.rfc4514_string() == "CN=front-proxy-client"
    assert (d / "front-proxy-client.key").stat().st_mode & 0o077 == 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in d.iterdir()}
    pki.ensure(cp, d)  # a second run issues nothing
    assert {p.name: p.stat().st_mtime_ns for p in d.iterdir()} == mtimes


def test_the_api_server_unit_carries_the_aggregation_flags() -> None:
    from clusters.cloud.metrics import apiserver_aggregation_flags

    unit = (
        Path(__file__).resolve().parents[2]
        / "playbooks/roles/kube_control/templates/kube-apiserver.service.j2"
    ).read_text()
    for flag in apiserver_aggregation_flags("{{ pki }}"):
        assert f"  {flag} \\\n" in unit, flag


def _layer_names(image_spec: ImageSpec) -> list[str]:
    image = build(image_spec)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(image.layers[0].data))) as tar:
        return tar.getnames()


def test_images_are_reproducible_and_name_their_layers() -> None:
    spec = ImageSpec(files={"/bin/app": (b"#!/bin/true\n", 0o755)}, entrypoint=("/bin/app",))
    one, two = build(spec), build(spec)
    assert one.digest == two.digest  # same inputs, same bytes: a rebuild pushes nothing
    manifest = json.loads(one.manifest.data)
    assert manifest["layers"][0]["digest"] == one.layers[0].digest
    assert manifest["config"]["digest"] == one.config.digest
    config = json.loads(one.config.data)
    assert config["config"]["User"] == "65532:65532"
    assert _layer_names(spec) == ["bin", "bin/app"]
    other = ImageSpec(files={"/bin/app": (b"#!/bin/false\n", 0o755)}, entrypoint=("/bin/app",))
    assert build(other).digest != one.digest


def test_bad_image_input_is_refused() -> None:
    with pytest.raises(InputError, match="absolute path"):
        build(ImageSpec(files={"../etc/passwd": (b"", 0o644)}, entrypoint=("/x",)))
    with pytest.raises(InputError, match="entrypoint"):
        build(ImageSpec(files={}, entrypoint=()))


def test_image_references_of_the_registry() -> None:
    reg = "registry.govcloud.local:5000"
    assert split_reference(f"{reg}/gat/hello:1.0", reg) == ("gat/hello", "1.0")
    assert split_reference(f"{reg}/gat/hello", reg) == ("gat/hello", "latest")
    assert split_reference("docker.io/library/nginx:1", reg) is None


def test_the_lab_topology_with_host_routes_survives_the_stack_state(
    lab_raw: dict[str, Any],
) -> None:
    """The fabric's topology goes through Pulumi's state as JSON and must come back whole."""
    from infra.providers.lab import topology_from_json, topology_to_json

    topo = lab_topology(make_plan(_spec(lab_raw)))
    assert any(b.host_routes for b in topo.bridges)
    assert topology_from_json(topology_to_json(topo)) == topo


def test_the_registry_is_asked_only_for_apps_going_to_its_own_cloud(
    lab_raw: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app for another API server (a local one) is not checked against the lab's registry;
    one for the cloud's own API server is, and a missing image is refused naming it."""
    from clusters.images import registry

    monkeypatch.setenv("GOVCLOUD_STATE", str(tmp_path))
    (tmp_path / "cluster" / "pki").mkdir(parents=True)
    (tmp_path / "cluster" / "pki" / "ca.crt").write_text("a CA\n")
    asked: list[tuple[str, str]] = []

    def manifest(self: registry.Registry, repo: str, tag: str) -> None:
        asked.append((repo, tag))
        return None  # the registry has no such image

    monkeypatch.setattr(registry.Registry, "manifest", manifest)
    spec = _spec(lab_raw)
    image = "registry.govcloud.local/gat/hello:9.9.9"
    registry.require_image(image, spec, "https://127.0.0.1:16443")
    assert asked == []
    plan = make_plan(spec)
    cp = make_cluster_plan(plan.spec, plan.hosts)
    assert cp is not None
    with pytest.raises(InputError, match=r"gat/hello:9\.9\.9 is not in the registry"):
        registry.require_image(image, spec, cp.server)
    assert asked == [("gat/hello", "9.9.9")]
