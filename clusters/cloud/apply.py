"""`govcloud cluster apply`: the cluster on the plan's hosts, from certificates to DNS.

1. the plan's cluster (control plane, nodes, registry) and its certificates on the controller;
2. ``cluster.yml`` through the bastion: the registry, the control plane, then every node;
3. the platform's images (pod sandbox, CoreDNS) built from local files and pushed;
4. the add-ons (the policy agent's permissions, CoreDNS), then wait for every node to be Ready
   and DNS to answer.
Each step is idempotent: a second run changes nothing and pushes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters.cloud import addons, metrics, pki
from clusters.cloud.plan import ClusterPlan, make_cluster_plan
from clusters.images.oci import build, static_binary_image
from clusters.images.registry import Registry
from govcloud.errors import InputError, OperationError
from govcloud.spec.model import Spec
from govcloud.toolchain.tools import bin_dir
from infra.hosts.apply import Target
from infra.hosts.apply import prepare as prepare_hosts
from infra.hosts.runner import RunResult, run_playbook
from security.access.ssh_config import Credentials

PLAYBOOK = "cluster.yml"
NODE_TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "kube-router",
    "metrics-server",
    "cni/bridge",
    "cni/host-local",
    "cni/loopback",
    "cni/portmap",
    "registry",
    "coredns",
    "pause",
)
PAUSE_TAG = "1"  # the project's own pause program; a new build gets a new tag
READY_TIMEOUT = 180.0


@dataclass
class ClusterTarget:
    hosts: Target
    plan: ClusterPlan
    kubeconfig: Path
    inventory: dict[str, Any]


@dataclass
class ApplyResult:
    run: RunResult
    images: dict[str, int] = field(default_factory=dict)  # image → blobs sent (0: up to date)
    nodes: dict[str, str] = field(default_factory=dict)  # node → Ready / NotReady / missing
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.run.ok and bool(self.nodes) and all(v == "Ready" for v in self.nodes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run": self.run.as_dict(),
            "images": self.images,
            "nodes": self.nodes,
            "seconds": round(self.seconds, 1),
        }


def cluster_plan(spec: Spec, hosts: Target) -> ClusterPlan:
    cp = make_cluster_plan(spec, hosts.plan.hosts)
    if cp is None:
        raise InputError(
            "the spec plans no cluster: add a host with role control-plane (and one with role "
            "registry) under datacenter.hosts"
        )
    return cp


def missing_tools() -> list[str]:
    b = bin_dir()
    return [t for t in NODE_TOOLS if not (b / t).is_file()]


def pause_image(cp: ClusterPlan) -> str:
    return addons.platform_image(cp, "pause", PAUSE_TAG)


def coredns_image(cp: ClusterPlan) -> str:
    from govcloud.toolchain.versions import load_versions

    return addons.platform_image(cp, "coredns", load_versions()["COREDNS_VERSION"])


def cluster_inventory(hosts: Target, cp: ClusterPlan, pki_dir: Path) -> dict[str, Any]:
    """The hosts' runtime inventory plus what the cluster's roles take, per group."""
    import copy

    inv = copy.deepcopy(hosts.inventory)
    groups = inv["all"]["children"]
    plan = cp.as_dict()
    b, p = str(bin_dir()), str(pki_dir)
    wanted = {
        "control_plane": {
            "kube_control_bin_dir": b,
            "kube_control_pki_dir": p,
            "kube_control_cluster": plan,
        },
        "compute": {
            "kube_node_bin_dir": b,
            "kube_node_pki_dir": p,
            "kube_node_cluster": plan,
            "kube_node_pause_image": pause_image(cp),
        },
        "registry": {"registry_bin_dir": b, "registry_pki_dir": p, "registry_cluster": plan},
    }
    for group, values in wanted.items():
        if group in groups:
            groups[group].setdefault("vars", {}).update(values)
    return inv


def prepare(spec: Spec, creds: Credentials) -> ClusterTarget:
    missing = missing_tools()
    if missing:
        raise OperationError(
            f"the cluster's tools are not built: {', '.join(missing)} (run: make tools)"
        )
    hosts = prepare_hosts(spec, creds)
    cp = cluster_plan(spec, hosts)
    pki_dir = pki.ensure(cp)
    kubeconfig = pki.admin_kubeconfig(cp, pki_dir)
    return ClusterTarget(hosts, cp, kubeconfig, cluster_inventory(hosts, cp, pki_dir))


def registry_client(cp: ClusterPlan) -> Registry:
    return Registry(
        f"https://{cp.registry_address}:{cp.registry_port}", cp.registry, pki.pki_dir() / "ca.crt"
    )


def push_platform_images(cp: ClusterPlan) -> dict[str, int]:
    """The pod sandbox, CoreDNS and metrics-server, each one static binary in an image of its
    own."""
    reg = registry_client(cp)
    sent: dict[str, int] = {}
    b = bin_dir()
    for ref, spec in (
        (pause_image(cp), static_binary_image(b / "pause", "pause")),
        (coredns_image(cp), static_binary_image(b / "coredns", "coredns", ports=(53,))),
        (metrics.image(cp), metrics.image_spec(b)),
    ):
        repo, tag = ref[len(cp.registry) + 1 :].rsplit(":", 1)
        sent[ref] = reg.push(repo, tag, build(spec))
    return sent


def apply_addons(kubeconfig: Path, cp: ClusterPlan) -> None:
    from clusters.tenants.kube import Kube

    kube = Kube.from_kubeconfig(kubeconfig)
    for obj in [*addons.policy_agent_rbac(), *addons.dns_objects(cp, coredns_image(cp))]:
        kube.apply(obj)
    metrics.apply_objects(kube, metrics.objects_from_pki(cp, pki.pki_dir()))


def node_states(kubeconfig: Path, cp: ClusterPlan) -> dict[str, str]:
    """Each planned node's Ready condition as the API server sees it."""
    from clusters.tenants.kube import KINDS, Kube

    kube = Kube.from_kubeconfig(kubeconfig)
    seen = {n["metadata"]["name"]: n for n in kube.list(KINDS[("v1", "Node")])}
    out: dict[str, str] = {}
    for node in cp.nodes:
        obj = seen.get(node.name)
        if obj is None:
            out[node.name] = "missing"
            continue
        ready = next(
            (c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None
        )
        out[node.name] = "Ready" if ready and ready["status"] == "True" else "NotReady"
    return out


def dns_ready(kubeconfig: Path) -> tuple[int, int]:
    """(ready, wanted) replicas of the cluster DNS."""
    from clusters.tenants.kube import KINDS, Kube

    kube = Kube.from_kubeconfig(kubeconfig)
    dep = kube.get(KINDS[("apps/v1", "Deployment")], "coredns", addons.DNS_NAMESPACE)
    if dep is None:
        return 0, 0
    return int(dep.get("status", {}).get("readyReplicas") or 0), int(dep["spec"]["replicas"])


def wait_ready(
    ct: ClusterTarget, timeout: float = READY_TIMEOUT, say: Callable[[str], None] | None = None
) -> dict[str, str]:
    say = say or (lambda _m: None)
    deadline = time.monotonic() + timeout
    while True:
        nodes = node_states(ct.kubeconfig, ct.plan)
        ready, wanted = dns_ready(ct.kubeconfig)
        done = all(v == "Ready" for v in nodes.values()) and wanted and ready >= wanted
        if done or time.monotonic() > deadline:
            return nodes
        waiting = [n for n, v in nodes.items() if v != "Ready"]
        say(f"waiting for {', '.join(waiting) or f'DNS ({ready}/{wanted} ready)'}")
        time.sleep(2)


def wait_metrics(
    kubeconfig: Path, say: Callable[[str], None], timeout: float = READY_TIMEOUT
) -> None:
    """The resource metrics API served (autoscalers read it), or an error saying where to look."""
    from clusters.tenants.kube import Kube

    kube = Kube.from_kubeconfig(kubeconfig)
    deadline = time.monotonic() + timeout
    while not metrics.available(metrics.get_apiservice(kube)):
        if time.monotonic() > deadline:
            raise OperationError(
                f"the metrics API ({metrics.APISERVICE_NAME}) is not available after "
                f"{timeout:.0f} s (kubectl get apiservice {metrics.APISERVICE_NAME} -o yaml; "
                "kubectl -n kube-system logs deployment/metrics-server)"
            )
        say("waiting for the metrics API")
        time.sleep(2)


def apply(ct: ClusterTarget, progress: Callable[[str], None] | None = None) -> ApplyResult:
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    run = run_playbook(PLAYBOOK, ct.inventory, ct.hosts.connection, progress=say)
    result = ApplyResult(run)
    if not run.ok:
        result.seconds = time.monotonic() - t0
        return result
    say("pushing the platform's images")
    result.images = push_platform_images(ct.plan)
    say("applying the add-ons")
    apply_addons(ct.kubeconfig, ct.plan)
    result.nodes = wait_ready(ct, say=say)
    ready, wanted = dns_ready(ct.kubeconfig)
    if wanted and ready < wanted:
        raise OperationError(
            f"the cluster DNS has {ready} of {wanted} replicas ready after "
            f"{READY_TIMEOUT:.0f} s (kubectl -n kube-system describe deployment coredns)"
        )
    if result.ok:
        wait_metrics(ct.kubeconfig, say)
    result.seconds = time.monotonic() - t0
    return result
