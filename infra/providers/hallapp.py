"""The online hall on the cloud as one Pulumi resource: its image pushed, its secrets in the
department's OpenBao mount, ``app deploy`` by the department's operator (``clusters.hallapp``).

It runs again when its inputs' digest changes (the app's files, its spec, the tenant). ``read``
(`pulumi refresh`) asks the API server about the hall's Deployment: missing, or fewer ready
replicas than it wants, marks the inputs, and the next `up` deploys again.
"""

from __future__ import annotations

from typing import Any

from infra.providers.base import GovProvider, SpecProcedure, marked_inputs


class HallAppProvider(GovProvider):
    kind = "hall app"
    ignore = ("__provider", "result", "ready", "spec")

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from infra.providers.child import in_child

        return "hall", {"result": in_child("infra.providers.hallapp:deploy_hall", props)}

    def read_(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        from infra.providers.child import in_child

        ready: bool = in_child("infra.providers.hallapp:hall_ready", props)
        return {**props, "ready": ready, "inputs": marked_inputs(props, drifted=not ready)}


def deploy_hall(props: dict[str, Any]) -> dict[str, Any]:
    """The procedure itself (run by ``in_child``, away from the provider's gRPC threads)."""
    from clusters.hallapp import publish_hall
    from govcloud.spec import load_spec
    from infra.plan import make_plan

    spec = load_spec(props["spec"])
    return publish_hall(spec, make_plan(spec).hosts).as_dict()


def hall_ready(props: dict[str, Any]) -> bool:
    """Does the hall's Deployment have every replica it wants ready? False when it cannot be
    asked (the cluster gone)."""
    from clusters.cloud.pki import cluster_dir
    from clusters.hallsite import HALL_APP, hall_site
    from clusters.tenants.kube import KINDS, Kube
    from govcloud.errors import GovcloudError
    from govcloud.naming import tenant_namespace
    from govcloud.spec import load_spec
    from infra.providers.cluster import cluster_nodes

    spec = load_spec(props["spec"])
    site = hall_site(spec)
    if site is None or not cluster_nodes(props):
        return False
    try:
        kube = Kube.from_kubeconfig(cluster_dir() / "admin.kubeconfig")
        dep = kube.get(
            KINDS[("apps/v1", "Deployment")], HALL_APP, tenant_namespace(site.department, "prod")
        )
    except GovcloudError:
        return False
    status = (dep or {}).get("status") or {}
    wanted = ((dep or {}).get("spec") or {}).get("replicas") or 0
    return bool(dep) and wanted > 0 and status.get("readyReplicas", 0) >= wanted


class HallApp(SpecProcedure):
    """The online hall, deployed onto the cloud from the spec and its app files."""

    provider = HallAppProvider
