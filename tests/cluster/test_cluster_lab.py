"""The lab's cluster by real pods and packets: nodes Ready, department apps deployed with the
department's own credentials and spread over both nodes, rollback, a failing readiness probe,
pod-to-pod, Service and DNS, NetworkPolicy between tenants, admission refusals, a bad image,
and a node lost and regained."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from tests.cloudlab import LAB_SPEC, Cloud, govcloud

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def hello(cloud: Cloud) -> dict[str, Any]:
    """gat's hello app (v1 and v2 images) and rst's, deployed and complete."""
    v1 = cloud.push("gat", "hello", "1.0", page="gat hello v1")
    v2 = cloud.push("gat", "hello", "2.0", page="gat hello v2")
    rst = cloud.push("rst", "hello", "1.0", page="rst hello")
    apps = {
        "v1": cloud.app_spec("gat", "hello", v1),
        "v2": cloud.app_spec("gat", "hello", v2),
        "rst": cloud.app_spec("rst", "hello", rst),
    }
    for key, code in (("v1", "gat"), ("rst", "rst")):
        r = cloud.deploy(apps[key], code, "--timeout", "120")
        out = json.loads(r.stdout)
        assert r.returncode == 0, (out, r.stderr)
        assert out["rollout"]["state"] == "complete"
    return {"apps": apps, "images": {"v1": v1, "v2": v2, "rst": rst}}


def _pods(cloud: Cloud, app: Any, code: str) -> list[dict[str, Any]]:
    """The app's running pods, not those on their way out."""
    return [
        p
        for p in cloud.status(app, code)["pods"]
        if p["phase"] == "Running" and not p["terminating"]
    ]


def test_nodes_are_ready_and_the_cluster_status_says_so(cloud: Cloud) -> None:
    """A second apply changing nothing (and pushing no image again) is checked by the stack
    test (tests/pulumi), whose converge finds every procedure as planned."""
    assert cloud.first.nodes == {"compute-1": "Ready", "compute-2": "Ready"}
    r = govcloud("cluster", "status", str(LAB_SPEC), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["dns"]["ready"] == 2


def test_deployed_pods_run_on_both_nodes(cloud: Cloud, hello: dict[str, Any]) -> None:
    pods = _pods(cloud, hello["apps"]["v1"], "gat")
    assert len(pods) == 2 and all(p["ready"] for p in pods)
    assert {p["node"] for p in pods} == {"compute-1", "compute-2"}


def test_pod_to_pod_across_nodes_service_and_dns(cloud: Cloud, hello: dict[str, Any]) -> None:
    a, b = sorted(_pods(cloud, hello["apps"]["v1"], "gat"), key=lambda p: p["node"])
    assert a["node"] != b["node"]
    assert cloud.fetch("gat-prod", a["name"], b["ip"]) == "gat hello v1"  # across nodes
    svc = cloud.kubectl("-n", "gat-prod", "get", "service", "hello", "-o",
                        "jsonpath={.spec.clusterIP}").stdout  # fmt: skip
    name = "hello.gat-prod.svc.cluster.local"
    assert cloud.resolve("gat-prod", a["name"], name) == [svc]  # cluster DNS
    assert cloud.fetch("gat-prod", a["name"], name) == "gat hello v1"  # through the Service


def test_network_policy_fences_tenants_by_real_packets(cloud: Cloud, hello: dict[str, Any]) -> None:
    gat = _pods(cloud, hello["apps"]["v1"], "gat")[0]
    rst = _pods(cloud, hello["apps"]["rst"], "rst")[0]
    rst_svc = cloud.kubectl("-n", "rst-prod", "get", "service", "hello", "-o",
                            "jsonpath={.spec.clusterIP}").stdout  # fmt: skip

    def reach(host: str) -> bool:
        return cloud.fetch("gat-prod", gat["name"], host) is not None

    assert not reach(rst["ip"])  # another department's pod
    assert not reach(rst_svc)  # and its Service
    assert reach("hello.gat-prod.svc.cluster.local")  # its own tenant, by name


POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {{type: RuntimeDefault}}
  containers:
  - name: web
    image: {image}
    resources: {{requests: {{cpu: {cpu}, memory: 32Mi}}, limits: {{cpu: {cpu}, memory: 32Mi}}}}
    securityContext:
      allowPrivilegeEscalation: false
      privileged: {privileged}
      capabilities: {{drop: [ALL]}}
      readOnlyRootFilesystem: true
"""


def pod(name: str, namespace: str, image: str, cpu: str = "50m", privileged: bool = False) -> str:
    """A pod that meets Pod Security 'restricted' unless ``privileged``."""
    flag = "true" if privileged else "false"
    return POD.format(name=name, namespace=namespace, image=image, cpu=cpu, privileged=flag)


def test_a_granted_shared_service_is_reachable_and_an_ungranted_one_is_not(
    cloud: Cloud, hello: dict[str, Any]
) -> None:
    """gat is granted the exchange (数据共享交换平台) by the spec, rst is not."""
    image = cloud.push("platform", "exchange", "1.0", page="exchange")
    manifest = cloud.image_dir / "shared-exchange.yaml"
    manifest.write_text(pod("exchange", "shared-exchange", image))
    r = cloud.kubectl("apply", "-f", str(manifest))
    assert r.returncode == 0, r.stderr
    r = cloud.kubectl("-n", "shared-exchange", "wait", "--for=condition=Ready", "pod/exchange",
                      "--timeout=90s")  # fmt: skip
    assert r.returncode == 0, r.stderr
    ip = cloud.kubectl("-n", "shared-exchange", "get", "pod", "exchange", "-o",
                       "jsonpath={.status.podIP}").stdout  # fmt: skip
    gat = _pods(cloud, hello["apps"]["v1"], "gat")[0]
    rst = _pods(cloud, hello["apps"]["rst"], "rst")[0]
    try:
        assert cloud.fetch("gat-prod", gat["name"], ip) == "exchange"
        assert cloud.fetch("rst-prod", rst["name"], ip) is None
        # the grant taken out of the spec and the tenants applied: the same packets stop; the
        # spec as it was applied again: they pass again
        raw = yaml.safe_load(LAB_SPEC.read_text(encoding="utf-8"))
        dept = next(d for d in raw["departments"] if d["code"] == "gat")
        dept["grants"] = [g for g in dept["grants"] if g != "exchange"]
        dept.pop("licence_reads", None)  # reading licences needs the exchange
        narrowed = cloud.image_dir / "lab-without-gat-exchange.yaml"
        narrowed.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        for spec, expected in ((narrowed, None), (LAB_SPEC, "exchange")):
            r = govcloud("tenants", "apply", str(spec), "--kubeconfig", str(cloud.admin))
            assert r.returncode == 0, r.stdout + r.stderr
            deadline = time.monotonic() + 30
            while cloud.fetch("gat-prod", gat["name"], ip) != expected:
                assert time.monotonic() < deadline, f"after applying {spec.name}"
                time.sleep(1)
    finally:
        cloud.kubectl("-n", "shared-exchange", "delete", "pod", "exchange", "--wait=false")


def test_rollback_returns_to_the_previous_revision(cloud: Cloud, hello: dict[str, Any]) -> None:
    r = cloud.deploy(hello["apps"]["v2"], "gat", "--timeout", "120")
    assert r.returncode == 0, r.stdout + r.stderr
    pod = _pods(cloud, hello["apps"]["v2"], "gat")[0]
    deadline = time.monotonic() + 20  # every node's proxy follows the new endpoints
    while cloud.fetch("gat-prod", pod["name"], "hello.gat-prod.svc.cluster.local") != (
        "gat hello v2"
    ):
        assert time.monotonic() < deadline, "the Service still serves the old revision"
        time.sleep(1)
    r = govcloud("app", "rollback", str(hello["apps"]["v2"]), "--kubeconfig",
                 str(cloud.department("gat")), "--timeout", "120", "--json")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    st = cloud.status(hello["apps"]["v2"], "gat")
    assert st["image"] == hello["images"]["v1"]
    running = [p for p in _pods(cloud, hello["apps"]["v2"], "gat") if p["ready"]]
    assert len(running) == 2
    assert {cloud.fetch("gat-prod", running[0]["name"], p["ip"]) for p in running} == {
        "gat hello v1"
    }


def test_a_failing_readiness_probe_stops_the_rollout_and_keeps_the_replicas(
    cloud: Cloud, hello: dict[str, Any]
) -> None:
    bad = cloud.app_spec(
        "gat", "hello", hello["images"]["v2"],
        health={"path": "/not-there", "port": "http", "initial_delay_seconds": 1,
                "period_seconds": 2},
    )  # fmt: skip
    r = cloud.deploy(bad, "gat", "--timeout", "20")
    out = json.loads(r.stdout)
    assert r.returncode == 1
    assert out["rollout"]["state"] != "complete"
    st = cloud.status(bad, "gat")
    live = [p for p in st["pods"] if not p["terminating"]]
    ready = [p for p in live if p["ready"]]
    assert len(ready) == 2  # the running replicas stay up (maxUnavailable 0)
    assert {p["ip"] for p in ready} == {p["ip"] for p in _pods(cloud, bad, "gat") if p["ready"]}
    waiting = [p for p in live if not p["ready"]]
    assert waiting and any("readiness probe" in p["reason"] for p in waiting), waiting
    # put it right for the next tests
    r = cloud.deploy(hello["apps"]["v1"], "gat", "--timeout", "120")
    assert r.returncode == 0, r.stdout


def test_an_image_not_in_the_registry_is_refused_and_nothing_changes(
    cloud: Cloud, hello: dict[str, Any]
) -> None:
    before = cloud.status(hello["apps"]["v1"], "gat")
    missing = hello["images"]["v1"].rsplit(":", 1)[0] + ":9.9.9"
    r = cloud.deploy(cloud.app_spec("gat", "hello", missing), "gat")
    assert r.returncode == 2
    assert missing in r.stdout + r.stderr and "Traceback" not in r.stderr
    after = cloud.status(hello["apps"]["v1"], "gat")
    assert after["revision"] == before["revision"]

    def serving(st: dict[str, Any]) -> list[str]:  # pods of an earlier test may still be going
        return sorted(p["name"] for p in st["pods"] if not p["terminating"])

    assert serving(after) == serving(before)


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("privileged", "privileged"),
        ("other-department-image", "registry"),
        ("over-quota", "exceeded quota"),
    ],
)
def test_admission_refuses_real_pods(
    cloud: Cloud, hello: dict[str, Any], case: str, expect: str
) -> None:
    image, cpu, privileged = hello["images"]["v1"], "50m", False
    if case == "privileged":
        privileged = True
    elif case == "other-department-image":
        image = hello["images"]["rst"]
    else:
        cpu = "64"
    manifest = cloud.image_dir / f"pod-{case}.yaml"
    manifest.write_text(pod(f"t-{case}", "gat-prod", image, cpu, privileged))
    r = cloud.kubectl("apply", "-f", str(manifest), kubeconfig=cloud.department("gat"))
    assert r.returncode != 0
    assert expect in r.stderr.lower(), r.stderr


def test_a_stopped_node_loses_its_pods_to_the_other_and_rejoins(
    cloud: Cloud, hello: dict[str, Any]
) -> None:
    from clusters.cloud.apply import node_states
    from infra.lab.lab import Lab

    lab = Lab("lab")
    bound = 120.0  # node-monitor grace 20 s + the cluster's 30 s eviction + scheduling + start
    t0 = time.monotonic()
    lab.lxc.stop(lab.container("compute-2"), kill=True)
    try:
        while time.monotonic() - t0 < bound:
            pods = _pods(cloud, hello["apps"]["v1"], "gat")
            if len([p for p in pods if p["ready"] and p["node"] == "compute-1"]) == 2:
                break
            time.sleep(2)
        moved = time.monotonic() - t0
        assert moved < bound, f"pods not recreated on compute-1 within {bound:.0f} s"
    finally:
        lab.lxc.start(lab.container("compute-2"))
    deadline = time.monotonic() + 120
    while node_states(cloud.admin, cloud.target.plan)["compute-2"] != "Ready":
        assert time.monotonic() < deadline, "compute-2 did not rejoin"
        time.sleep(2)
    print(f"pods recreated on the other node in {moved:.0f} s")


def test_a_stopped_kubelet_is_drift_for_refresh_and_apply_repairs_it(cloud: Cloud) -> None:
    """What `pulumi refresh` calls (the provider's read) sees the node NotReady and marks the
    inputs; what `up` calls (the procedure) starts the kubelet again."""
    from clusters.cloud.apply import apply, node_states
    from infra.lab.lab import Lab
    from infra.providers.base import DRIFT
    from infra.providers.cluster import ClusterDeploymentProvider

    lab = Lab("lab")
    props = {"spec": str(LAB_SPEC), "inputs": "digest", "user": None, "identity_file": None}
    provider = ClusterDeploymentProvider()
    assert provider.read_("cluster", props)["inputs"] == "digest"  # all well: no drift
    lab.exec("compute-1", ["systemctl", "stop", "kubelet"])
    try:
        deadline = time.monotonic() + 90  # the node-monitor grace period is 20 s
        while node_states(cloud.admin, cloud.target.plan)["compute-1"] == "Ready":
            assert time.monotonic() < deadline, "compute-1 stayed Ready without its kubelet"
            time.sleep(2)
        read = provider.read_("cluster", props)
        assert read["nodes"]["compute-1"] == "NotReady"
        assert read["inputs"] == "digest" + DRIFT
    finally:
        result = apply(cloud.target)
    assert result.ok, result.nodes
    assert lab.exec("compute-1", ["systemctl", "is-active", "kubelet"]).stdout.strip() == "active"
