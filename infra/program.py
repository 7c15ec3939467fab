"""The Pulumi program: from one spec, the network plan, the data center and its hosts, identity
and the bastion, the tenant cloud and the halls. ``infra/__main__.py`` only calls ``main``."""

from __future__ import annotations

from typing import Any

import pulumi

from clusters.hallsite import hall_site
from clusters.tenants.plan import TenantNetwork
from govcloud.spec import load_spec
from infra.components.cloud import (
    Bastion,
    Cluster,
    DataCenter,
    DataCenterArgs,
    HallApp,
    Halls,
    Identity,
    LogShipping,
    PlayArgs,
)
from infra.components.network import GovNetwork, GovNetworkArgs
from infra.components.tenants import TenantCloud, TenantCloudArgs
from infra.plan import make_plan
from infra.settings import Settings


def build(settings: Settings) -> dict[str, Any]:
    """Every component of the cloud; returns them by name (the tests inspect them)."""
    plan = make_plan(load_spec(settings.spec))
    network = GovNetwork("network", GovNetworkArgs(plan))
    dc = DataCenter("datacenter", DataCenterArgs(plan, settings, network))
    identity = Identity("identity", PlayArgs(plan, settings, [dc.site]))
    after_identity: list[pulumi.Resource] = [dc.site, identity.deployment]
    bastion = Bastion("bastion", PlayArgs(plan, settings, after_identity))
    halls = Halls("halls", PlayArgs(plan, settings, after_identity))
    logs = LogShipping("logs", PlayArgs(plan, settings, after_identity))
    components: dict[str, Any] = {
        "network": network,
        "datacenter": dc,
        "identity": identity,
        "bastion": bastion,
        "halls": halls,
        "logs": logs,
    }
    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig is not None else None
    tenants_after: list[pulumi.Resource] = []
    if settings.target == "lab" and any(h.role == "control-plane" for h in plan.hosts):
        cluster = Cluster("cluster", PlayArgs(plan, settings, [dc.site]))
        components["cluster"] = cluster
        pulumi.export("api_server", cluster.server)
        if kubeconfig is None:  # the tenants join the lab's own cluster
            from clusters.cloud.pki import cluster_dir

            kubeconfig = str(cluster_dir() / "admin.kubeconfig")
            tenants_after = [cluster.deployment]
    if kubeconfig is not None:
        components["tenants"] = TenantCloud(
            "tenants",
            TenantCloudArgs(plan.spec, kubeconfig, TenantNetwork.of(plan)),
            pulumi.ResourceOptions(depends_on=tenants_after),
        )
    if "cluster" in components and "tenants" in components and hall_site(plan.spec):
        after_tenants = [*after_identity, halls.play, components["tenants"]]
        components["hall_app"] = HallApp(
            "hall-app",
            PlayArgs(plan, settings, [r for r in after_tenants if r is not None]),
        )
    pulumi.export("spec", plan.spec.name)
    pulumi.export("bastion", bastion.address)
    pulumi.export("openbao", identity.address)
    pulumi.export("hall_urls", halls.urls)
    pulumi.export("hosts", dc.hosts)
    pulumi.export("kubeconfig", kubeconfig or "")
    return components


def main() -> None:
    build(Settings.from_stack())
