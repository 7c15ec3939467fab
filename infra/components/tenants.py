"""TenantCloud: one Kubernetes tenant per department on the cloud's API server.

Each department's objects are one resource, so a changed quota previews as exactly that
department's change; the platform's shared objects (namespaces of shared services, admission
policies) are one more.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from clusters.tenants.plan import TenantNetwork
from govcloud.spec.model import Spec
from infra.providers.kubernetes import KubernetesObjects


@dataclass(frozen=True)
class TenantCloudArgs:
    spec: Spec
    kubeconfig: str
    net: TenantNetwork | None = None  # addresses of edge ports and reached hosts (the plan's)


class TenantCloud(pulumi.ComponentResource):
    namespaces: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: TenantCloudArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:TenantCloud", name, None, opts)
        from clusters.tenants.plan import TenantPlan, plan_tenants

        plan = plan_tenants(args.spec, net=args.net)
        platform = KubernetesObjects(
            "tenancy-platform",
            kubeconfig=args.kubeconfig,
            manifests=TenantPlan.manifests_of(plan.platform),
            summary={"objects": len(plan.platform)},
            kind="tenancy",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.tenants = {}
        for t in plan.tenants:
            manifests = TenantPlan.manifests_of(t.objects)
            levels = {
                m["metadata"]["name"]: m["metadata"]
                .get("labels", {})
                .get("pod-security.kubernetes.io/enforce", "")
                for m in manifests
                if m.get("kind") == "Namespace"
            }
            self.tenants[t.code] = KubernetesObjects(
                f"tenant-{t.code}",
                kubeconfig=args.kubeconfig,
                manifests=manifests,
                summary={"namespaces": t.namespaces, "pod_security": levels},
                kind="tenant",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[platform]),
            )
        self.namespaces = pulumi.Output.from_input(
            [ns for t in plan.tenants for ns in t.namespaces]
        )
        self.register_outputs({"namespaces": self.namespaces})
