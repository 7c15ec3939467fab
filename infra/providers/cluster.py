"""The cloud's Kubernetes cluster as one Pulumi resource: ``govcloud cluster apply``'s
procedure (certificates, registry, control plane, nodes, the platform's images, DNS).

Idempotent; it runs again when its inputs' digest changes. ``read`` (`pulumi refresh`) asks
the API server for every planned node: one missing or NotReady (a stopped kubelet, a host
recreated) or an API server that does not answer marks the inputs, and the next `up` applies
again, which restarts what stopped and re-joins what is new.
"""

from __future__ import annotations

from typing import Any

from infra.providers.base import GovProvider, SpecProcedure, admin_credentials, marked_inputs


class ClusterDeploymentProvider(GovProvider):
    kind = "cluster deployment"
    ignore = ("__provider", "result", "nodes", "spec")

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from infra.providers.child import in_child

        return "cluster", {"result": in_child("infra.providers.cluster:deploy_cluster", props)}

    def read_(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        from infra.providers.child import in_child

        nodes: dict[str, str] = in_child("infra.providers.cluster:cluster_nodes", props)
        unwell = not nodes or any(s != "Ready" for s in nodes.values())
        return {**props, "nodes": nodes, "inputs": marked_inputs(props, drifted=unwell)}


def deploy_cluster(props: dict[str, Any]) -> dict[str, Any]:
    """The procedure itself (run by ``in_child``, away from the provider's gRPC threads)."""
    from clusters.cloud.apply import apply, prepare
    from govcloud.errors import OperationError
    from govcloud.spec import load_spec

    target = prepare(load_spec(props["spec"]), admin_credentials(props))
    result = apply(target)
    if not result.run.ok:
        failed = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.run.failures[:3])
        raise OperationError(f"cluster.yml failed ({result.run.status}): {failed}")
    if not result.ok:
        raise OperationError(f"nodes not Ready: {result.nodes}")
    return {
        "nodes": result.nodes,
        "kubeconfig": str(target.kubeconfig),
        "changed": result.run.changed,  # tasks cluster.yml changed (0: found as planned)
        "blobs_sent": sum(result.images.values()),  # 0: every platform image was there
    }


def cluster_nodes(props: dict[str, Any]) -> dict[str, str]:
    """The API server's word on each planned node; {} when it cannot be asked."""
    from clusters.cloud.apply import node_states
    from clusters.cloud.pki import cluster_dir
    from clusters.cloud.plan import make_cluster_plan
    from govcloud.errors import GovcloudError
    from govcloud.spec import load_spec
    from infra.plan import make_plan

    spec = load_spec(props["spec"])
    cp = make_cluster_plan(spec, make_plan(spec).hosts)
    kubeconfig = cluster_dir() / "admin.kubeconfig"
    if cp is None or not kubeconfig.is_file() or not _answers(cp.api_address, cp.api_port):
        return {}
    try:
        return node_states(kubeconfig, cp)
    except GovcloudError:
        return {}


def _answers(address: str, port: int, timeout: float = 3.0) -> bool:
    """Does a TLS server answer at ``address:port`` within seconds? (A lab removed behind the
    stack's back would otherwise cost the client's connection retries.)"""
    import socket
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            return tls.version() is not None
    except OSError:
        return False


class ClusterDeployment(SpecProcedure):
    """The cluster, deployed from the spec onto the plan's hosts."""

    provider = ClusterDeploymentProvider
