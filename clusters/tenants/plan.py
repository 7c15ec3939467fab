"""Tenant planning: from the spec, every Kubernetes object of every department's tenant.

Pure and fast: nothing here talks to a server. Objects are built with the ``kubernetes`` client's
models; :func:`TenantPlan.manifests` gives them as the dicts the API server takes.

Per department (a tenant), for each environment the spec lists (``prod``, ``test``):

- a **Namespace** ``<code>-<env>`` labelled with the department code, environment and levels,
  with Pod Security admission ``enforce: restricted`` (and warn/audit at the same level), and
  annotations recording the ingress classes, storage classes and image registries it may use;
- a **ResourceQuota** and a **LimitRange** from the department's sizing: the sizing is the
  department's share of the pools, split between its environments (:data:`PROD_SHARE` to
  prod when it has test too), so all quotas add up to the departments' sizings, which must fit
  the pools (checked here again, with the totals);
- **NetworkPolicies**: deny all ingress and egress, then allow DNS, traffic within the tenant,
  ingress from the ingress controller's namespace, egress to the shared services granted;
- **Roles** developer / operator / viewer bound to the department's identity groups (the groups
  OpenBao holds: :func:`govcloud.naming.department_group`).

Once for the cluster: the platform namespaces the policies point at (the ingress controller,
one per shared service) and the **ValidatingAdmissionPolicies** that enforce each tenant's
allowed registries, ingress classes and storage classes from its namespace's annotations.

A department that deploys on VMs still gets its tenant (RBAC, policies, quota): its sizing is its
share of the pools whichever way it deploys, and the pools are checked once for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes import client as k

from clusters.tenants import kube
from govcloud.errors import PlanError, Problem
from govcloud.naming import DEPARTMENT_ROLES, department_group, tenant_namespace
from govcloud.spec.model import Department, Environment, SharedService, Spec

DOMAIN = "govcloud.gov.cn"
L_MANAGED_BY = "app.kubernetes.io/managed-by"
L_PART_OF = f"{DOMAIN}/part-of"  # tenants | platform | apps
L_TENANT = f"{DOMAIN}/tenant"
L_ENV = f"{DOMAIN}/environment"
L_LEVEL = f"{DOMAIN}/level"  # the highest level the department serves
L_LEVEL_PREFIX = f"level.{DOMAIN}/"  # level.govcloud.gov.cn/county: "true", one per level served
L_DEPLOY = f"{DOMAIN}/deploy"
L_SHARED = f"{DOMAIN}/shared-service"
L_PLATFORM = f"{DOMAIN}/platform"
A_NAME = f"{DOMAIN}/department-name"
A_REGISTRIES = f"{DOMAIN}/allowed-registries"
A_INGRESS_CLASSES = f"{DOMAIN}/allowed-ingress-classes"
A_STORAGE_CLASSES = f"{DOMAIN}/allowed-storage-classes"
PSA = "pod-security.kubernetes.io"
NS_NAME_LABEL = "kubernetes.io/metadata.name"

#: the share of a department's sizing its prod namespace gets when it also has test
PROD_SHARE = 0.75
#: one pod allowed per this many millicores of quota (at least MIN_PODS)
MILLICORES_PER_POD = 50
MIN_PODS = 10

ROLE_NAMES = {r: f"govcloud-{r}" for r in DEPARTMENT_ROLES}


@dataclass(frozen=True)
class TenantOptions:
    """Platform choices the spec does not carry: what tenants may use, where the platform is."""

    registries: tuple[str, ...] = (
        "registry.govcloud.local/{code}/",
        "registry.govcloud.local/library/",
    )
    ingress_classes: tuple[str, ...] = ("govcloud-nginx",)
    storage_classes: tuple[str, ...] = ("govcloud-standard",)
    ingress_namespace: str = "govcloud-ingress"
    dns_namespace: str = "kube-system"
    dns_pod_label: tuple[str, str] = ("k8s-app", "kube-dns")

    def registries_for(self, code: str) -> list[str]:
        return [r.format(code=code) for r in self.registries]


def shared_namespace(service: SharedService | str) -> str:
    return f"shared-{SharedService(service).value}"


@dataclass(frozen=True)
class Quota:
    """What one namespace may use (integers: millicores, MiB, counts)."""

    cpu_m: int
    memory_mi: int
    storage_mi: int
    pods: int
    pvcs: int = 20
    services: int = 20
    node_ports: int = 0  # the tenant's edge ports (prod only), made by the platform

    @property
    def hard(self) -> dict[str, str]:
        cpu, mem = f"{self.cpu_m}m", f"{self.memory_mi}Mi"
        return {
            "requests.cpu": cpu,
            "limits.cpu": cpu,
            "requests.memory": mem,
            "limits.memory": mem,
            "requests.storage": f"{self.storage_mi}Mi",
            "persistentvolumeclaims": str(self.pvcs),
            "pods": str(self.pods),
            "services": str(self.services),
            "services.loadbalancers": "0",
            "services.nodeports": str(self.node_ports),
        }


def split_sizing(dept: Department) -> dict[str, Quota]:
    """The department's sizing split over its environments; the parts add up to the sizing
    (rounded down to whole millicores and MiB)."""
    envs = [e.value for e in dict.fromkeys(dept.tenant.environments)]
    total_cpu = math.floor(dept.tenant.cpu * 1000)
    total_mem = math.floor(dept.tenant.memory_gib * 1024)
    total_disk = math.floor(dept.tenant.storage_gib * 1024)
    shares = {Environment.PROD.value: PROD_SHARE} if len(envs) > 1 else {}
    out: dict[str, Quota] = {}
    left = {"cpu": total_cpu, "mem": total_mem, "disk": total_disk}
    for i, env in enumerate(envs):
        last = i == len(envs) - 1
        share = shares.get(env, (1 - sum(shares.values())) / max(1, len(envs) - len(shares)))
        cpu = left["cpu"] if last else math.floor(total_cpu * share)
        mem = left["mem"] if last else math.floor(total_mem * share)
        disk = left["disk"] if last else math.floor(total_disk * share)
        left = {"cpu": left["cpu"] - cpu, "mem": left["mem"] - mem, "disk": left["disk"] - disk}
        out[env] = Quota(cpu, mem, disk, pods=max(MIN_PODS, cpu // MILLICORES_PER_POD))
    return out


@dataclass
class Tenant:
    code: str
    name: str
    quotas: dict[str, Quota]
    objects: list[Any] = field(default_factory=list)

    @property
    def namespaces(self) -> list[str]:
        return [tenant_namespace(self.code, env) for env in self.quotas]


@dataclass
class TenantPlan:
    tenants: list[Tenant]
    platform: list[Any]
    totals: dict[str, float]
    capacity: dict[str, float]
    options: TenantOptions

    def tenant(self, code: str) -> Tenant | None:
        return next((t for t in self.tenants if t.code == code), None)

    def models(self) -> list[Any]:
        return [*self.platform, *(o for t in self.tenants for o in t.objects)]

    def manifests(self) -> list[dict[str, Any]]:
        return [kube.to_dict(o) for o in self.models()]

    @staticmethod
    def manifests_of(models: list[Any]) -> list[dict[str, Any]]:
        return [kube.to_dict(o) for o in models]

    def summary(self) -> dict[str, Any]:
        return {
            "tenants": len(self.tenants),
            "namespaces": sum(len(t.quotas) for t in self.tenants),
            "objects": len(self.platform) + sum(len(t.objects) for t in self.tenants),
            "quota_totals": self.totals,
            "pool_capacity": self.capacity,
        }


# --- object builders -----------------------------------------------------------------------


def _meta(
    name: str,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    part_of: str = "tenants",
) -> k.V1ObjectMeta:
    return k.V1ObjectMeta(
        name=name,
        namespace=namespace,
        labels={L_MANAGED_BY: kube.FIELD_MANAGER, L_PART_OF: part_of, **(labels or {})},
        annotations=annotations or None,
    )


def _namespace(dept: Department, env: str, opts: TenantOptions) -> k.V1Namespace:
    labels = {
        L_TENANT: dept.code,
        L_ENV: env,
        L_LEVEL: dept.levels[0].value,
        L_DEPLOY: dept.tenant.deploy.value,
        **{f"{L_LEVEL_PREFIX}{lv.value}": "true" for lv in dept.levels},
        **{f"{PSA}/{mode}": "restricted" for mode in ("enforce", "warn", "audit")},
        **{f"{PSA}/{mode}-version": "latest" for mode in ("enforce", "warn", "audit")},
    }
    annotations = {
        A_NAME: dept.name,
        A_REGISTRIES: ",".join(opts.registries_for(dept.code)),
        A_INGRESS_CLASSES: ",".join(opts.ingress_classes),
        A_STORAGE_CLASSES: ",".join(opts.storage_classes),
    }
    return k.V1Namespace(
        api_version="v1",
        kind="Namespace",
        metadata=_meta(tenant_namespace(dept.code, env), labels=labels, annotations=annotations),
    )


def _quota(code: str, ns: str, q: Quota) -> k.V1ResourceQuota:
    return k.V1ResourceQuota(
        api_version="v1",
        kind="ResourceQuota",
        metadata=_meta("tenant-quota", ns, {L_TENANT: code}),
        spec=k.V1ResourceQuotaSpec(hard=q.hard),
    )


#: what one container must at least ask for, whatever the tenant. No maximum per container:
#: the API server takes a LimitRange's max as the default limit of a container that states
#: none, and that would admit pods without limits; the namespace's quota bounds them instead.
CONTAINER_MIN = {"cpu": "10m", "memory": "16Mi"}
CONTAINER_RATIO = {"cpu": "4", "memory": "2"}  # limit at most this many times the request
CLAIM_MIN, CLAIM_MAX = "64Mi", "2Ti"


def _limit_range(code: str, ns: str) -> k.V1LimitRange:
    """Bounds per container and per claim, the same for every tenant (so a change of sizing
    changes the quota alone). No defaults (and no container max, which would act as one) on
    purpose: a pod that states no limits is refused by the quota (which requires limits.cpu and
    limits.memory) instead of being given limits nobody chose."""
    return k.V1LimitRange(
        api_version="v1",
        kind="LimitRange",
        metadata=_meta("tenant-limits", ns, {L_TENANT: code}),
        spec=k.V1LimitRangeSpec(
            limits=[
                k.V1LimitRangeItem(
                    type="Container",
                    min=dict(CONTAINER_MIN),
                    max_limit_request_ratio=dict(CONTAINER_RATIO),
                ),
                k.V1LimitRangeItem(
                    type="PersistentVolumeClaim",
                    max={"storage": CLAIM_MAX},
                    min={"storage": CLAIM_MIN},
                ),
            ]
        ),
    )


def _np(code: str, ns: str, name: str, spec: k.V1NetworkPolicySpec) -> k.V1NetworkPolicy:
    return k.V1NetworkPolicy(
        api_version="networking.k8s.io/v1",
        kind="NetworkPolicy",
        metadata=_meta(name, ns, {L_TENANT: code}),
        spec=spec,
    )


def _ns_selector(name: str) -> k.V1LabelSelector:
    return k.V1LabelSelector(match_labels={NS_NAME_LABEL: name})


def _ingress_from(*peers: k.V1NetworkPolicyPeer) -> k.V1NetworkPolicyIngressRule:
    # the model takes `from` (or `_from`) as input; its Python name `var_from` is not accepted
    fields: dict[str, Any] = {"from": list(peers)}
    return k.V1NetworkPolicyIngressRule(**fields)


def _network_policies(dept: Department, ns: str, opts: TenantOptions) -> list[k.V1NetworkPolicy]:
    code = dept.code
    every_pod = k.V1LabelSelector()
    same_tenant = k.V1NetworkPolicyPeer(
        namespace_selector=k.V1LabelSelector(match_labels={L_TENANT: code})
    )
    dns_key, dns_value = opts.dns_pod_label
    out = [
        _np(
            code,
            ns,
            "default-deny",
            k.V1NetworkPolicySpec(pod_selector=every_pod, policy_types=["Ingress", "Egress"]),
        ),
        _np(
            code,
            ns,
            "allow-dns",
            k.V1NetworkPolicySpec(
                pod_selector=every_pod,
                policy_types=["Egress"],
                egress=[
                    k.V1NetworkPolicyEgressRule(
                        to=[
                            k.V1NetworkPolicyPeer(
                                namespace_selector=_ns_selector(opts.dns_namespace),
                                pod_selector=k.V1LabelSelector(match_labels={dns_key: dns_value}),
                            )
                        ],
                        ports=[
                            k.V1NetworkPolicyPort(protocol="UDP", port=53),
                            k.V1NetworkPolicyPort(protocol="TCP", port=53),
                        ],
                    )
                ],
            ),
        ),
        _np(
            code,
            ns,
            "allow-same-tenant",
            k.V1NetworkPolicySpec(
                pod_selector=every_pod,
                policy_types=["Ingress", "Egress"],
                ingress=[_ingress_from(same_tenant)],
                egress=[k.V1NetworkPolicyEgressRule(to=[same_tenant])],
            ),
        ),
        _np(
            code,
            ns,
            "allow-ingress-controller",
            k.V1NetworkPolicySpec(
                pod_selector=every_pod,
                policy_types=["Ingress"],
                ingress=[
                    _ingress_from(
                        k.V1NetworkPolicyPeer(
                            namespace_selector=_ns_selector(opts.ingress_namespace)
                        )
                    )
                ],
            ),
        ),
    ]
    grants = sorted({g.value for g in dept.grants})
    if grants:
        out.append(
            _np(
                code,
                ns,
                "allow-shared-services",
                k.V1NetworkPolicySpec(
                    pod_selector=every_pod,
                    policy_types=["Egress"],
                    egress=[
                        k.V1NetworkPolicyEgressRule(
                            to=[
                                k.V1NetworkPolicyPeer(
                                    namespace_selector=k.V1LabelSelector(
                                        match_expressions=[
                                            k.V1LabelSelectorRequirement(
                                                key=L_SHARED, operator="In", values=grants
                                            )
                                        ]
                                    )
                                )
                            ]
                        )
                    ],
                ),
            )
        )
    return out


_READ = ["get", "list", "watch"]
_WRITE = ["create", "update", "patch", "delete"]
_APP_CORE = ["configmaps", "services", "persistentvolumeclaims", "serviceaccounts"]
_APP_APPS = ["deployments", "statefulsets", "replicasets", "daemonsets"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> k.V1PolicyRule:
    return k.V1PolicyRule(api_groups=groups, resources=resources, verbs=verbs)


def role_rules(role: str) -> list[k.V1PolicyRule]:
    """What each department role may do inside its own namespaces. Nobody in a department may
    change the quota, limits, network policies, roles or the namespace itself."""
    viewer = [
        _rule(
            [""],
            [
                "pods",
                "pods/log",
                "services",
                "endpoints",
                "configmaps",
                "persistentvolumeclaims",
                "events",
                "resourcequotas",
                "limitranges",
                "serviceaccounts",
            ],
            _READ,
        ),
        _rule(["apps"], [*_APP_APPS, "deployments/scale"], _READ),
        _rule(["batch"], ["jobs", "cronjobs"], _READ),
        _rule(["autoscaling"], ["horizontalpodautoscalers"], _READ),
        _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _READ),
        _rule(["events.k8s.io"], ["events"], _READ),
    ]
    if role == "viewer":
        return viewer
    developer = [
        *viewer,
        _rule([""], _APP_CORE, _WRITE),
        _rule([""], ["secrets"], [*_READ, *_WRITE]),
        _rule(["apps"], [*_APP_APPS, "deployments/scale"], _WRITE),
        _rule(["batch"], ["jobs", "cronjobs"], _WRITE),
        _rule(["autoscaling"], ["horizontalpodautoscalers"], _WRITE),
        _rule(["networking.k8s.io"], ["ingresses"], _WRITE),
        _rule([""], ["pods"], ["create", "delete"]),
    ]
    if role == "developer":
        return developer
    return [
        *developer,
        _rule([""], ["pods/exec", "pods/portforward", "pods/attach"], ["create", "get"]),
        _rule([""], ["pods/eviction"], ["create"]),
        _rule([""], ["pods"], ["update", "patch", "deletecollection"]),
    ]


def _rbac(code: str, ns: str) -> list[Any]:
    out: list[Any] = []
    for role in DEPARTMENT_ROLES:
        out.append(
            k.V1Role(
                api_version="rbac.authorization.k8s.io/v1",
                kind="Role",
                metadata=_meta(ROLE_NAMES[role], ns, {L_TENANT: code}),
                rules=role_rules(role),
            )
        )
        group = department_group(code, role)
        out.append(
            k.V1RoleBinding(
                api_version="rbac.authorization.k8s.io/v1",
                kind="RoleBinding",
                metadata=_meta(group, ns, {L_TENANT: code}),
                role_ref=k.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name=ROLE_NAMES[role]
                ),
                subjects=[
                    k.RbacV1Subject(kind="Group", api_group="rbac.authorization.k8s.io", name=group)
                ],
            )
        )
    return out


# --- admission policies --------------------------------------------------------------------

_ANN = "has(namespaceObject.metadata.annotations) ? namespaceObject.metadata.annotations : {'': ''}"


def _allowed(annotation: str) -> str:
    return f"'{annotation}' in variables.ann ? variables.ann['{annotation}'].split(',') : []"


_IMAGES_OK = "{c}.all(c, variables.registries.exists(r, r != '' && c.image.startsWith(r)))"


def _pod_images_check(spec: str) -> str:
    parts = [
        _IMAGES_OK.format(c=f"{spec}.containers"),
        f"(!has({spec}.initContainers) || " + _IMAGES_OK.format(c=f"{spec}.initContainers") + ")",
    ]
    return " && ".join(parts)


@dataclass(frozen=True)
class _Guard:
    name: str
    rules: list[tuple[str, list[str]]]  # (group, resources)
    variable: tuple[str, str]  # (name, annotation)
    expression: str
    message: str


def _guards() -> list[_Guard]:
    reg = ("registries", A_REGISTRIES)
    img_msg = "images must come from a registry allowed for this tenant: "
    return [
        _Guard(
            "govcloud-tenant-pod-registries",
            [("", ["pods"])],
            reg,
            _pod_images_check("object.spec"),
            img_msg,
        ),
        _Guard(
            "govcloud-tenant-workload-registries",
            [
                ("apps", ["deployments", "statefulsets", "daemonsets", "replicasets"]),
                ("batch", ["jobs"]),
            ],
            reg,
            _pod_images_check("object.spec.template.spec"),
            img_msg,
        ),
        _Guard(
            "govcloud-tenant-cronjob-registries",
            [("batch", ["cronjobs"])],
            reg,
            _pod_images_check("object.spec.jobTemplate.spec.template.spec"),
            img_msg,
        ),
        _Guard(
            "govcloud-tenant-ingress-classes",
            [("networking.k8s.io", ["ingresses"])],
            ("classes", A_INGRESS_CLASSES),
            "has(object.spec.ingressClassName) && "
            "object.spec.ingressClassName in variables.classes",
            "spec.ingressClassName must be one of the ingress classes allowed for this tenant: ",
        ),
        _Guard(
            "govcloud-tenant-storage-classes",
            [("", ["persistentvolumeclaims"])],
            ("classes", A_STORAGE_CLASSES),
            "has(object.spec.storageClassName) && "
            "object.spec.storageClassName in variables.classes",
            "spec.storageClassName must be one of the storage classes allowed for this tenant: ",
        ),
    ]


def admission_policies() -> list[Any]:
    """ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1) and their bindings: every
    namespace with a tenant label is held to the registries and classes its annotations allow."""
    out: list[Any] = []
    for g in _guards():
        var_name, annotation = g.variable
        out.append(
            k.V1ValidatingAdmissionPolicy(
                api_version="admissionregistration.k8s.io/v1",
                kind="ValidatingAdmissionPolicy",
                metadata=_meta(g.name, part_of="platform"),
                spec=k.V1ValidatingAdmissionPolicySpec(
                    failure_policy="Fail",
                    match_constraints=k.V1MatchResources(
                        resource_rules=[
                            k.V1NamedRuleWithOperations(
                                api_groups=[group],
                                api_versions=["*"],
                                operations=["CREATE", "UPDATE"],
                                resources=resources,
                            )
                            for group, resources in g.rules
                        ]
                    ),
                    variables=[
                        k.V1Variable(name="ann", expression=_ANN),
                        k.V1Variable(name=var_name, expression=_allowed(annotation)),
                    ],
                    validations=[
                        k.V1Validation(
                            expression=g.expression,
                            message_expression=f"'{g.message}' + variables.{var_name}.join(', ')",
                            reason="Forbidden",
                        )
                    ],
                ),
            )
        )
        out.append(
            k.V1ValidatingAdmissionPolicyBinding(
                api_version="admissionregistration.k8s.io/v1",
                kind="ValidatingAdmissionPolicyBinding",
                metadata=_meta(g.name, part_of="platform"),
                spec=k.V1ValidatingAdmissionPolicyBindingSpec(
                    policy_name=g.name,
                    validation_actions=["Deny"],
                    match_resources=k.V1MatchResources(
                        namespace_selector=k.V1LabelSelector(
                            match_expressions=[
                                k.V1LabelSelectorRequirement(key=L_TENANT, operator="Exists")
                            ]
                        )
                    ),
                ),
            )
        )
    return out


def _platform_namespaces(spec: Spec, opts: TenantOptions) -> list[k.V1Namespace]:
    out = [
        k.V1Namespace(
            api_version="v1",
            kind="Namespace",
            metadata=_meta(
                opts.ingress_namespace,
                labels={L_PLATFORM: "ingress"},
                part_of="platform",
            ),
        )
    ]
    granted = sorted({g.value for d in spec.departments for g in d.grants})
    for svc in granted:
        out.append(
            k.V1Namespace(
                api_version="v1",
                kind="Namespace",
                metadata=_meta(
                    shared_namespace(svc),
                    labels={L_PLATFORM: "shared-service", L_SHARED: svc},
                    part_of="platform",
                ),
            )
        )
    return out


# --- the plan -------------------------------------------------------------------------------


def _capacity(spec: Spec) -> dict[str, float]:
    p = spec.datacenter.pools
    return {
        "cpu": p.compute.vcpus * p.compute.cpu_overcommit,
        "memory_gib": p.compute.memory_gib * p.compute.memory_overcommit,
        "storage_gib": p.storage.capacity_gib * p.storage.overcommit,
    }


#: the label ``app deploy`` puts on an app's pods (its name)
APP_LABEL = "app.kubernetes.io/name"


@dataclass(frozen=True)
class TenantNetwork:
    """Addresses the tenants' network paths name: the edge's prefixes and the IaaS hosts'."""

    edge: tuple[str, ...]  # the internet-access zone
    hosts: dict[str, str]  # host name -> address

    @classmethod
    def of(cls, plan: Any) -> TenantNetwork:
        """From a network plan (``infra.plan.Plan``)."""
        zone = plan.zones.get("internet-access")
        return cls(tuple(zone.prefixes) if zone else (), {h.name: h.address for h in plan.hosts})


def _edge_objects(dept: Department, ns: str, net: TenantNetwork) -> list[Any]:
    """Per edge port: a NodePort Service on every node that keeps the client's address
    (traffic policy Local: a node without a pod of the app refuses, and the edge tries the
    next), and the policy letting the edge's zone, alone, reach that port of the app's pods."""
    out: list[Any] = []
    for e in dept.tenant.edge:
        pods = {APP_LABEL: e.app}
        out.append(
            k.V1Service(
                api_version="v1",
                kind="Service",
                metadata=_meta(f"{e.app}-edge", ns, {L_TENANT: dept.code}),
                spec=k.V1ServiceSpec(
                    type="NodePort",
                    external_traffic_policy="Local",
                    selector=pods,
                    ports=[
                        k.V1ServicePort(
                            name="edge", port=e.port, target_port=e.port, node_port=e.node_port
                        )
                    ],
                ),
            )
        )
        out.append(
            _np(
                dept.code,
                ns,
                f"{e.app}-from-edge",
                k.V1NetworkPolicySpec(
                    pod_selector=k.V1LabelSelector(match_labels=pods),
                    policy_types=["Ingress"],
                    ingress=[
                        k.V1NetworkPolicyIngressRule(
                            ports=[k.V1NetworkPolicyPort(protocol="TCP", port=e.port)],
                            **{"from": [_block(p) for p in net.edge]},
                        )
                    ],
                ),
            )
        )
    return out


def _reach_objects(dept: Department, ns: str, net: TenantNetwork) -> list[Any]:
    """Per reached host: egress of every pod of the namespace to that host's ports."""
    return [
        _np(
            dept.code,
            ns,
            f"reach-{r.host}",
            k.V1NetworkPolicySpec(
                pod_selector=k.V1LabelSelector(),
                policy_types=["Egress"],
                egress=[
                    k.V1NetworkPolicyEgressRule(
                        to=[_block(f"{net.hosts[r.host]}/32")],
                        ports=[k.V1NetworkPolicyPort(protocol="TCP", port=p) for p in r.ports],
                    )
                ],
            ),
        )
        for r in dept.tenant.reaches
    ]


def _block(cidr: str) -> k.V1NetworkPolicyPeer:
    return k.V1NetworkPolicyPeer(ip_block=k.V1IPBlock(cidr=cidr))


def plan_tenant(dept: Department, opts: TenantOptions, net: TenantNetwork | None = None) -> Tenant:
    quotas = split_sizing(dept)
    prod = Environment.PROD.value
    if dept.tenant.edge and prod in quotas:
        quotas[prod] = replace(quotas[prod], node_ports=len(dept.tenant.edge))
    tenant = Tenant(dept.code, dept.name, quotas)
    net = net or TenantNetwork((), {})
    for env, q in quotas.items():
        ns = tenant_namespace(dept.code, env)
        tenant.objects += [
            _namespace(dept, env, opts),
            _quota(dept.code, ns, q),
            _limit_range(dept.code, ns),
            *_network_policies(dept, ns, opts),
            *(_edge_objects(dept, ns, net) if env == prod else []),
            *_reach_objects(dept, ns, net),
            *_rbac(dept.code, ns),
        ]
    return tenant


def plan_tenants(
    spec: Spec,
    opts: TenantOptions | None = None,
    only: Iterable[str] | None = None,
    net: TenantNetwork | None = None,
) -> TenantPlan:
    """Every tenant of the spec (or of the departments in ``only``) and the platform objects.
    ``net`` gives the addresses of the tenants' edge ports and reached hosts (planned from the
    spec when not given)."""
    opts = opts or TenantOptions()
    wanted = set(only) if only is not None else None
    problems: list[Problem] = []
    if wanted is not None:
        unknown = sorted(wanted - {d.code for d in spec.departments})
        problems += [Problem("departments", f"no department with code {c!r}") for c in unknown]
    chosen = [d for d in spec.departments if wanted is None or d.code in wanted]
    if net is None and any(d.tenant.edge or d.tenant.reaches for d in chosen):
        from infra.plan import make_plan

        net = TenantNetwork.of(make_plan(spec))
    tenants = [plan_tenant(d, opts, net) for d in chosen]
    cap = _capacity(spec)
    totals = {
        "cpu": sum(q.cpu_m for t in tenants for q in t.quotas.values()) / 1000,
        "memory_gib": sum(q.memory_mi for t in tenants for q in t.quotas.values()) / 1024,
        "storage_gib": sum(q.storage_mi for t in tenants for q in t.quotas.values()) / 1024,
    }
    for what, used in totals.items():
        if used > cap[what] + 1e-9:
            problems.append(
                Problem(
                    f"departments[*].tenant.{what}",
                    f"tenant quotas add up to {used:g}, more than the pools allow ({cap[what]:g})",
                )
            )
    if problems:
        raise PlanError(problems, title="cannot plan the tenants")
    return TenantPlan(tenants, [*_platform_namespaces(spec, opts), *admission_policies()],
                      totals, cap, opts)  # fmt: skip
