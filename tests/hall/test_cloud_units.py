"""The pure parts of the hall on the cloud: the tenant's edge port and reached host (spec checks,
the objects, the quota and the flows derived from them), the image's cached base layer, the
backups' inputs, the load run's count of serving replicas, the autoscaler's scale-down window."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.deploy import objects
from clusters.deploy.spec import load_app, parse_app
from clusters.hallsite import hall_site
from clusters.images import rootfs
from clusters.images.definition import load_definition
from clusters.tenants import kube
from clusters.tenants.plan import TenantNetwork, plan_tenants
from govcloud.errors import InputError, SpecError
from govcloud.spec import load_spec, parse
from govcloud.spec.generate import lab
from govcloud.spec.load import LAB_SPEC
from infra.plan import make_plan
from loadtests.timeline import Timeline

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HALL = ROOT / "clusters" / "apps" / "hall"


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    try:
        parse(raw)
    except SpecError as exc:
        return {p.path: p.message for p in exc.problems}
    return {}


def test_the_lab_puts_the_hall_on_the_cloud_with_its_database_on_dsjj_s_own_host() -> None:
    site = hall_site(load_spec(LAB_SPEC))
    assert site is not None
    assert (site.department, site.port, site.node_port, site.database_host) == (
        "dsjj",
        8080,
        30080,
        "dsjj-vm-1",
    )


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda d: d["tenant"]["reaches"].__setitem__(0, {"host": "mzt-vm-1", "ports": [5432]}),
            "tenant.reaches[0].host",
            "own IaaS hosts",
        ),
        (
            lambda d: d["tenant"]["edge"].append({"app": "other", "port": 80, "node_port": 30080}),
            "tenant.edge[1].node_port",
            "already taken",
        ),
    ],
    ids=["another-departments-host", "node-port-twice"],
)
def test_bad_edge_ports_and_reached_hosts_are_refused_naming_the_field(
    change: Any, path: str, words: str
) -> None:
    raw = lab()
    i, dsjj = next((i, d) for i, d in enumerate(raw["departments"]) if d["code"] == "dsjj")
    change(dsjj)
    problems = _problems(raw)
    assert words in problems[f"departments[{i}].{path}"], problems


def test_an_edge_port_without_a_cluster_is_refused() -> None:
    raw = lab()
    raw["datacenter"]["hosts"] = [
        h for h in raw["datacenter"]["hosts"] if h["role"] not in ("control-plane", "registry")
    ]
    i = next(i for i, d in enumerate(raw["departments"]) if d["code"] == "dsjj")
    assert "Kubernetes cluster" in _problems(raw)[f"departments[{i}].tenant"]


def test_node_port_out_of_range_is_refused_at_parse() -> None:
    raw = lab()
    dsjj = next(d for d in raw["departments"] if d["code"] == "dsjj")
    dsjj["tenant"]["edge"][0]["node_port"] = 8080
    with pytest.raises(InputError) as err:
        parse(raw)
    assert "node_port" in str(err.value)


def test_the_tenant_objects_open_the_edge_and_the_database_and_nothing_more() -> None:
    spec = load_spec(LAB_SPEC)
    plan = make_plan(spec)
    net = TenantNetwork.of(plan)
    tenant = next(t for t in plan_tenants(spec, net=net).tenants if t.code == "dsjj")
    objs = [kube.to_dict(o) for o in tenant.objects]
    by = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    svc = by[("Service", "dsjj-prod", "hall-edge")]["spec"]
    assert svc["type"] == "NodePort" and svc["externalTrafficPolicy"] == "Local"
    assert svc["ports"] == [{"name": "edge", "nodePort": 30080, "port": 8080, "targetPort": 8080}]
    edge = by[("NetworkPolicy", "dsjj-prod", "hall-from-edge")]["spec"]
    assert edge["ingress"][0]["from"] == [
        {"ipBlock": {"cidr": plan.zones["internet-access"].prefixes[0]}}
    ]
    db = next(h.address for h in plan.hosts if h.name == "dsjj-vm-1")
    for ns in ("dsjj-prod", "dsjj-test"):
        egress = by[("NetworkPolicy", ns, "reach-dsjj-vm-1")]["spec"]["egress"][0]
        assert egress == {
            "ports": [{"port": 5432, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": f"{db}/32"}}],
        }
    # the NodePort lives in prod only, counted by its quota; other tenants get none
    quotas = {
        o["metadata"]["namespace"]: o["spec"]["hard"] for o in objs if o["kind"] == "ResourceQuota"
    }
    assert quotas["dsjj-prod"]["services.nodeports"] == "1"
    assert quotas["dsjj-test"]["services.nodeports"] == "0"
    assert ("Service", "dsjj-test", "hall-edge") not in by


def test_the_network_plan_carries_the_tenant_s_paths_as_flows() -> None:
    plan = make_plan(load_spec(LAB_SPEC))
    rules = {r.name: r for r in plan.policy.rules}
    edge, db = rules["edge-to-dsjj-hall"], rules["dsjj-pods-to-dsjj-vm-1"]
    nodes = {f"{h.address}/32" for h in plan.hosts if h.role == "compute"}
    assert (edge.origin, edge.ports, set(edge.dst_prefixes)) == ("tenant", (30080,), nodes)
    assert edge.src == "internet-access"
    assert (db.ports, set(db.src_prefixes)) == ((5432,), nodes)


def test_the_hall_image_definition_has_a_base_and_leaves_out_the_dev_server() -> None:
    d, spec = load_definition(HALL / "image.yaml")
    assert d.base is not None and "python3-asyncpg" in d.base.packages
    assert "/app/hall/app.py" in spec.files
    assert not any(p.endswith(("devserver.py", ".yaml", ".pyc")) for p in spec.files)
    assert spec.user == "65532:65532" and spec.workdir == "/app"
    app = load_app(HALL / "app.yaml")
    assert app.image.endswith(f"{d.name}:{d.tag}")


def test_a_bad_base_package_is_refused_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "image.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "dsjj/x",
                "tag": "1",
                "files": [{"src": "f", "dest": "/f"}],
                "entrypoint": ["/f"],
                "base": {"packages": ["python3; rm -rf /"]},
            }
        )
    )
    from clusters.images.definition import build_image

    with pytest.raises(InputError) as err:
        build_image(tmp_path / "image.yaml")
    assert "base.packages" in str(err.value)


def test_a_packed_tree_is_reproducible_and_keeps_modes_links_but_no_devices(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "root"
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(tree / "usr" / "bin" / "tool", 0o755)
    os.link(tree / "usr" / "bin" / "tool", tree / "usr" / "bin" / "alias")
    (tree / "bin").symlink_to("usr/bin")
    os.mkfifo(tree / "fifo")
    first = rootfs._pack(tree, tmp_path / "a.tar.gz")
    os.utime(tree / "usr" / "bin" / "tool", (1, 1))  # times do not count
    assert rootfs._pack(tree, tmp_path / "b.tar.gz") == first
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "fifo" not in members
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["usr/bin/alias"].isreg() and members["usr/bin/tool"].islnk()
    assert members["usr/bin/alias"].mode & 0o777 == 0o755
    assert all(m.mtime == 0 for m in members.values())


def test_the_autoscaler_gets_the_scale_down_window() -> None:
    spec = load_spec(LAB_SPEC)
    app = load_app(HALL / "app.yaml")
    hpa = next(
        m for m in objects.build(app, plan_tenants(spec)) if m["kind"] == "HorizontalPodAutoscaler"
    )
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}
    raw = yaml.safe_load((HALL / "app.yaml").read_text())
    raw["autoscale"].pop("scale_down_seconds")
    hpa = next(
        m
        for m in objects.build(parse_app(raw), plan_tenants(spec))
        if m["kind"] == "HorizontalPodAutoscaler"
    )
    assert "behavior" not in hpa["spec"]


def test_the_hall_serves_https_probed_over_tls_and_rolls_when_its_secrets_change() -> None:
    from clusters.deploy.rollout import SECRETS_DIGEST, _with_secrets_digest

    app = load_app(HALL / "app.yaml")
    dep = next(
        m
        for m in objects.build(app, plan_tenants(load_spec(LAB_SPEC)))
        if m["kind"] == "Deployment"
    )
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    env = {e["name"] for e in container["env"]}
    assert {"HALL_TLS_CERT", "HALL_TLS_KEY"} <= env
    values = {"HALL_TLS_CERT": "cert one", "HALL_TLS_KEY": "key one"}
    first = _with_secrets_digest(dep, values)
    digest = first["spec"]["template"]["metadata"]["annotations"][SECRETS_DIGEST]
    assert "cert one" not in str(first)  # the digest, never the values
    same = _with_secrets_digest(dep, dict(values))
    assert same["spec"]["template"]["metadata"]["annotations"][SECRETS_DIGEST] == digest
    renewed = _with_secrets_digest(dep, {**values, "HALL_TLS_CERT": "cert two"})
    assert renewed["spec"]["template"]["metadata"]["annotations"][SECRETS_DIGEST] != digest


def test_backups_need_a_database_host_and_a_storage_host() -> None:
    from clusters.backups import places, restore

    spec = load_spec(LAB_SPEC)
    hosts = make_plan(spec).hosts
    where = places(spec, hosts)
    assert (where.database.name, where.storage.name) == ("dsjj-vm-1", "backup-1")
    with pytest.raises(InputError, match="storage host"):
        places(spec, [h for h in hosts if h.role != "storage"])
    with pytest.raises(InputError, match="expected hall-"):
        restore(spec, hosts, "../../etc/passwd")


def test_the_timeline_counts_the_replicas_that_served_across_workers() -> None:
    a, b = Timeline(), Timeline()
    for who in ("hall-1", "hall-1", "hall-2"):
        a.on_request("[province] GET /", 5.0, None, now=0.0, served_by=who)
    b.on_request("[city] GET /", 5.0, None, now=0.0, served_by=None)
    b.merge_served(a.drain_served())
    assert b.served == {"hall-1": 2, "hall-2": 1}
    assert a.drain_served() == {}


def test_the_compliance_suite_lets_a_reached_host_listen_on_its_declared_ports(
    tmp_path: Path,
) -> None:
    from security.compliance.run import declared_ports, targets

    spec = load_spec(LAB_SPEC)
    hosts = make_plan(spec).hosts
    doc = targets(hosts, tmp_path / "ssh_config", declared_ports(spec))
    ports = {h["name"]: h["ports"] for h in doc["hosts"]}
    assert ports["dsjj-vm-1"] == [5432]
    assert ports["mzt-vm-1"] == [] and ports["hall-1"] == []
