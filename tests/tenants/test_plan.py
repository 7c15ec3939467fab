"""Tenant planning (no server): namespaces, quota arithmetic, policies, RBAC, admission,
rendering, and the rendered manifests against the Kubernetes schemas."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.tenants import apply as tenant_apply
from clusters.tenants import plan as P
from clusters.tenants.plan import TenantPlan, plan_tenants
from clusters.tenants.validate import has_schemas, validate_offline
from govcloud.errors import PlanError
from govcloud.naming import department_group, tenant_namespace
from govcloud.spec import Spec, parse
from govcloud.spec.generate import generate

pytestmark = pytest.mark.unit

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SERVER_VERSION = "1.36.3"  # the toolchain's kube-apiserver


_MANIFESTS: dict[int, list[dict[str, Any]]] = {}


def _by(plan: TenantPlan, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """The plan's manifests of one kind (built once per plan: do not mutate them)."""
    return [
        m
        for m in _MANIFESTS.setdefault(id(plan), plan.manifests())
        if m["kind"] == kind and (namespace is None or m["metadata"].get("namespace") == namespace)
    ]


def test_every_department_gets_a_namespace_per_environment(
    guizhou_spec: Spec, guizhou_plan: TenantPlan
) -> None:
    names = {m["metadata"]["name"] for m in _by(guizhou_plan, "Namespace")}
    for d in guizhou_spec.departments:
        for env in d.tenant.environments:
            assert tenant_namespace(d.code, env.value) in names
    assert len(guizhou_plan.tenants) == 59


def test_namespaces_are_labelled_and_enforce_restricted(guizhou_plan: TenantPlan) -> None:
    ns = next(m for m in _by(guizhou_plan, "Namespace") if m["metadata"]["name"] == "gat-prod")
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels[P.L_TENANT] == "gat"
    assert labels[P.L_ENV] == "prod"
    assert labels[P.L_LEVEL] == "province"
    assert labels[f"{P.L_LEVEL_PREFIX}county"] == "true"
    ann = ns["metadata"]["annotations"]
    assert ann[P.A_REGISTRIES].split(",")[0] == "registry.govcloud.local/gat/"
    assert ann[P.A_INGRESS_CLASSES] and ann[P.A_STORAGE_CLASSES]


def test_quotas_add_up_to_each_sizing_and_within_the_pools(
    guizhou_spec: Spec, guizhou_plan: TenantPlan
) -> None:
    for d in guizhou_spec.departments:
        t = guizhou_plan.tenant(d.code)
        assert t is not None
        assert sum(q.cpu_m for q in t.quotas.values()) == round(d.tenant.cpu * 1000)
        assert sum(q.memory_mi for q in t.quotas.values()) == round(d.tenant.memory_gib * 1024)
        assert sum(q.storage_mi for q in t.quotas.values()) == round(d.tenant.storage_gib * 1024)
        assert t.quotas["prod"].cpu_m == int(d.tenant.cpu * 1000 * P.PROD_SHARE)
    s = guizhou_plan.summary()
    for what, used in s["quota_totals"].items():
        assert 0 < used <= s["pool_capacity"][what]
    quota = _by(guizhou_plan, "ResourceQuota", "gat-prod")[0]["spec"]["hard"]
    gat = guizhou_plan.tenant("gat")
    assert gat is not None
    assert quota["limits.cpu"] == quota["requests.cpu"] == f"{gat.quotas['prod'].cpu_m}m"
    assert quota["services.nodeports"] == "0"


def test_quotas_beyond_the_pools_are_refused_naming_the_field(guizhou_spec: Spec) -> None:
    spec = guizhou_spec.model_copy(deep=True)
    spec.datacenter.pools.compute.vcpus = 64
    with pytest.raises(PlanError) as err:
        plan_tenants(spec)
    assert err.value.problems[0].path == "departments[*].tenant.cpu"
    assert "more than the pools allow" in err.value.problems[0].message


def test_limit_range_sets_no_defaults(guizhou_plan: TenantPlan) -> None:
    """Without defaults a pod that states no limits is refused by the quota."""
    lr = _by(guizhou_plan, "LimitRange", "gat-prod")[0]
    for item in lr["spec"]["limits"]:
        assert "default" not in item and "defaultRequest" not in item
    # a container max would become the default limit of a container stating none
    assert "max" not in lr["spec"]["limits"][0]
    assert lr["spec"]["limits"][0]["min"] == P.CONTAINER_MIN


def test_network_policies_deny_then_allow_dns_tenant_ingress_and_grants(
    guizhou_spec: Spec, guizhou_plan: TenantPlan
) -> None:
    granted = next(d for d in guizhou_spec.departments if d.grants)
    ungranted = next(d for d in guizhou_spec.departments if not d.grants)
    ns = tenant_namespace(granted.code, "prod")
    pols = {m["metadata"]["name"]: m["spec"] for m in _by(guizhou_plan, "NetworkPolicy", ns)}
    assert pols["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert {p["port"] for p in pols["allow-dns"]["egress"][0]["ports"]} == {53}
    same = {"namespaceSelector": {"matchLabels": {P.L_TENANT: granted.code}}}
    assert pols["allow-same-tenant"]["ingress"] == [{"from": [same]}]
    assert pols["allow-same-tenant"]["egress"] == [{"to": [same]}]
    ingress_from = pols["allow-ingress-controller"]["ingress"][0]["from"][0]
    assert ingress_from["namespaceSelector"]["matchLabels"] == {
        P.NS_NAME_LABEL: P.TenantOptions().ingress_namespace
    }
    expr = pols["allow-shared-services"]["egress"][0]["to"][0]["namespaceSelector"]
    assert expr["matchExpressions"][0]["values"] == sorted(g.value for g in granted.grants)
    other = {
        m["metadata"]["name"]
        for m in _by(guizhou_plan, "NetworkPolicy", tenant_namespace(ungranted.code, "prod"))
    }
    assert "allow-shared-services" not in other
    shared = {m["metadata"]["name"] for m in _by(guizhou_plan, "Namespace")}
    assert {P.shared_namespace(g) for g in granted.grants} <= shared


def test_roles_are_bound_to_the_department_groups(guizhou_plan: TenantPlan) -> None:
    bindings = _by(guizhou_plan, "RoleBinding", "gat-test")
    subjects = {b["subjects"][0]["name"]: b["roleRef"]["name"] for b in bindings}
    assert subjects == {
        department_group("gat", "developer"): "govcloud-developer",
        department_group("gat", "operator"): "govcloud-operator",
        department_group("gat", "viewer"): "govcloud-viewer",
    }
    roles = {r["metadata"]["name"]: r["rules"] for r in _by(guizhou_plan, "Role", "gat-test")}
    viewer_resources = {res for rule in roles["govcloud-viewer"] for res in rule["resources"]}
    assert "secrets" not in viewer_resources
    for rules in roles.values():  # nobody in a department edits the guard rails
        for rule in rules:
            if set(rule["verbs"]) & {"create", "update", "patch", "delete"}:
                assert not {"resourcequotas", "limitranges", "networkpolicies", "roles",
                            "rolebindings", "namespaces"} & set(rule["resources"])  # fmt: skip


def test_admission_policies_read_the_namespace_annotations(guizhou_plan: TenantPlan) -> None:
    vaps = {m["metadata"]["name"]: m for m in _by(guizhou_plan, "ValidatingAdmissionPolicy")}
    binds = {
        m["metadata"]["name"]: m for m in _by(guizhou_plan, "ValidatingAdmissionPolicyBinding")
    }
    assert set(vaps) == set(binds) and len(vaps) == 5
    pods = vaps["govcloud-tenant-pod-registries"]["spec"]
    assert P.A_REGISTRIES in pods["variables"][1]["expression"]
    assert "startsWith" in pods["validations"][0]["expression"]
    for b in binds.values():
        assert b["spec"]["validationActions"] == ["Deny"]
        sel = b["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
        assert sel == {"key": P.L_TENANT, "operator": "Exists"}


def test_every_object_is_labelled_as_ours(guizhou_plan: TenantPlan) -> None:
    for m in guizhou_plan.manifests():
        labels = m["metadata"]["labels"]
        assert labels[P.L_MANAGED_BY] == "govcloud"
        assert labels[P.L_PART_OF] in ("tenants", "platform")


def test_render_writes_a_file_per_tenant_that_validates_against_the_server_schemas(
    guizhou_plan: TenantPlan, tmp_path: Path
) -> None:
    assert has_schemas(SERVER_VERSION), "kubernetes-validate lacks the server's schemas"
    files = tenant_apply.render(guizhou_plan, tmp_path)
    assert len(files) == 59 + 2  # tenants, the platform, the kustomization
    docs = [
        d
        for f in files
        if f.name != "kustomization.yaml"
        for d in yaml.load_all(f.read_text(), Loader=_Loader)
        if d
    ]
    assert len(docs) == len(guizhou_plan.manifests())
    assert validate_offline(docs, SERVER_VERSION) == []


def test_schema_validation_names_a_bad_field(guizhou_plan: TenantPlan) -> None:
    quota = copy.deepcopy(_by(guizhou_plan, "ResourceQuota", "gat-prod")[0])
    quota["spec"]["hrad"] = quota["spec"].pop("hard")
    problems = validate_offline([quota], SERVER_VERSION)
    assert problems and problems[0].path == "ResourceQuota gat-prod/tenant-quota: spec"
    assert "hrad" in problems[0].message


def test_the_lab_spec_plans_too() -> None:
    p = plan_tenants(parse(generate("lab")))
    assert {t.code for t in p.tenants} == {"gat", "rst", "wjw", "scjgj", "mzt", "dsjj"}
