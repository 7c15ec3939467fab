"""Tenants on the real API server: apply, re-apply, diff, prune, and what a department's own
identity may and may not do — every refusal comes from the API server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from clusters.tenants import apply as tenant_apply
from clusters.tenants import kube
from clusters.tenants.kube import KINDS, ApiError, Kube
from clusters.tenants.plan import plan_tenants
from govcloud.spec import Spec
from tests.tenants.conftest import Applied, TenantCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POD = KINDS[("v1", "Pod")]
CM = KINDS[("v1", "ConfigMap")]
QUOTA = KINDS[("v1", "ResourceQuota")]


def test_first_apply_creates_every_object(guizhou_applied: Applied) -> None:
    planned = {kube.key(m) for m in guizhou_applied.plan.manifests()}
    assert not guizhou_applied.first.errors
    assert guizhou_applied.first.count()["create"] == len(planned)
    assert set(guizhou_applied.live_after_first) == planned  # every object is on the server
    namespaces = [k for k in planned if k[1] == "Namespace"]
    assert len(namespaces) == 59 * 2 + 3  # prod and test per department; ingress, 2 shared


def test_second_apply_changes_nothing(guizhou_applied: Applied) -> None:
    n = guizhou_applied.second.count()
    assert not guizhou_applied.second.errors
    assert n["create"] == 0 and n["update"] == 0
    assert n["unchanged"] == len(guizhou_applied.plan.manifests())
    assert guizhou_applied.second.requests == 0  # the server holds what was last applied


def test_diff_after_editing_one_quota_shows_exactly_that_change(
    guizhou_applied: Applied, tenant_cluster: TenantCluster, guizhou_spec: Spec
) -> None:
    spec = guizhou_spec.model_copy(deep=True)
    dept = spec.department("gat")
    assert dept is not None
    old = dept.tenant.cpu
    dept.tenant.cpu = old + 4
    out = tenant_apply.diff(plan_tenants(spec), tenant_cluster.admin())
    assert not out.errors
    changed = {(c.key[1], c.key[2], c.key[3]) for c in out.changes if c.action != "unchanged"}
    assert changed == {
        ("ResourceQuota", "gat-prod", "tenant-quota"),
        ("ResourceQuota", "gat-test", "tenant-quota"),
    }
    prod = next(c for c in out.of("update") if c.key[2] == "gat-prod")
    new_prod = int((old + 4) * 1000 * 0.75)
    # the server writes whole cores without the m: 21000m is '21'
    shown = f"'{new_prod // 1000}'" if new_prod % 1000 == 0 else f"{new_prod}m"
    assert f"+    limits.cpu: {shown}" in prod.diff
    minus = [ln for ln in prod.diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in prod.diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    # cpu limits and requests, and the pod count that follows the cpu: nothing else
    assert {ln.split(":")[0].strip("-+ ") for ln in minus + plus} == {
        "limits.cpu",
        "requests.cpu",
        "pods",
    }


def test_diff_on_the_applied_spec_is_empty(
    guizhou_applied: Applied, tenant_cluster: TenantCluster, guizhou_spec: Spec
) -> None:
    out = tenant_apply.diff(plan_tenants(guizhou_spec, only=["gat", "rst"]), tenant_cluster.admin())
    assert out.count()["update"] == 0 and out.count()["create"] == 0


def test_drift_by_another_writer_is_seen_and_undone(
    guizhou_applied: Applied, tenant_cluster: TenantCluster, guizhou_spec: Spec
) -> None:
    """An object someone else wrote to is diffed and applied again, not skipped."""
    k = tenant_cluster.admin()
    k.request(
        "PATCH",
        QUOTA.path("rst-test", "tenant-quota"),
        query=[("fieldManager", "kubectl-edit")],
        body={"spec": {"hard": {"pods": "9999"}}},
        content_type="application/merge-patch+json",
    )
    plan = plan_tenants(guizhou_spec, only=["rst", "gat"])
    d = tenant_apply.diff(plan, k)
    assert [c.what for c in d.of("update")] == ["ResourceQuota rst-test/tenant-quota"]
    assert "-    pods: '9999'" in d.of("update")[0].diff
    fixed = tenant_apply.apply(plan, k)
    assert [c.what for c in fixed.of("update")] == ["ResourceQuota rst-test/tenant-quota"]
    quota = k.get(QUOTA, "tenant-quota", "rst-test")
    assert quota is not None and quota["spec"]["hard"]["pods"] != "9999"
    again = tenant_apply.apply(plan, k)
    assert again.requests == 0 and again.count()["unchanged"] == len(plan.manifests())


# --- department identities ---------------------------------------------------------------


def _pod(name: str, *, image: str = "registry.govcloud.local/gat/app:1.0", limits: bool = True,
         privileged: bool = False, cpu: str = "100m") -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "securityContext": {
            "allowPrivilegeEscalation": privileged,
            "privileged": privileged,
            "runAsNonRoot": not privileged,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if privileged:
        container["securityContext"] = {"privileged": True}
    if limits:
        container["resources"] = {
            "requests": {"cpu": cpu, "memory": "64Mi"},
            "limits": {"cpu": cpu, "memory": "64Mi"},
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], "securityContext": {"runAsUser": 10001}},
    }


def _create(k: Kube, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    kind = kube.kind_of(obj)
    out = k.request("POST", kind.path(namespace), body=obj, what=f"create in {namespace}")
    assert isinstance(out, dict)
    return out


def _refused(fn: Any, status: int = 403) -> ApiError:
    with pytest.raises(ApiError) as err:
        fn()
    assert err.value.status == status, err.value
    return err.value


@pytest.fixture(scope="module")
def gat(guizhou_applied: Applied, tenant_cluster: TenantCluster) -> Kube:
    return tenant_cluster.as_department("gat")


def test_department_a_cannot_touch_department_b(gat: Kube) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    e = _refused(lambda: _create(gat, "rst-prod", cm))
    assert 'User "gat-developer"' in e.api_message and '"rst-prod"' in e.api_message
    _refused(lambda: gat.list(POD, "rst-prod"))
    _refused(lambda: gat.get(QUOTA, "tenant-quota", "rst-test"))
    _refused(lambda: gat.delete(KINDS[("v1", "ResourceQuota")], "tenant-quota", "rst-prod"))
    _refused(lambda: gat.delete(KINDS[("v1", "Namespace")], "rst-prod"))
    # ... while in its own namespace the same identity may work
    _create(gat, "gat-test", cm)
    assert gat.get(CM, "x", "gat-test") is not None
    assert gat.delete(CM, "x", "gat-test")


def test_department_cannot_loosen_its_own_guard_rails(gat: Kube) -> None:
    quota = gat.get(QUOTA, "tenant-quota", "gat-prod")  # it may read its quota
    assert quota is not None
    _refused(lambda: gat.delete(QUOTA, "tenant-quota", "gat-prod"))
    _refused(lambda: gat.delete(KINDS[("networking.k8s.io/v1", "NetworkPolicy")],
                                "default-deny", "gat-prod"))  # fmt: skip


def _admit(gat: Kube, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    """Create a pod, retrying while the quota controller has not computed usage yet."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return _create(gat, namespace, pod)
        except ApiError as exc:
            if "status unknown" not in exc.api_message or time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_compliant_pod_is_admitted_in_own_namespace(gat: Kube) -> None:
    out = _admit(gat, "gat-test", _pod("ok"))
    assert out["metadata"]["namespace"] == "gat-test"
    assert gat.delete(POD, "ok", "gat-test")


def test_privileged_pod_is_refused(gat: Kube) -> None:
    # privileged containers: the API server allows none at all (--allow-privileged is off)
    e = _refused(lambda: _create(gat, "gat-prod", _pod("priv", privileged=True)), status=422)
    assert "privileged: Forbidden" in e.api_message
    # below "restricted" without being privileged (root, capabilities kept, host network):
    # the namespace's Pod Security label refuses it
    loose = _pod("loose")
    loose["spec"]["hostNetwork"] = True
    loose["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": False}
    e = _refused(lambda: _admit(gat, "gat-prod", loose))
    assert 'violates PodSecurity "restricted:latest"' in e.api_message
    assert "host namespaces" in e.api_message and "allowPrivilegeEscalation" in e.api_message


def test_pod_without_limits_is_refused(gat: Kube) -> None:
    # the LimitRange's limit/request ratio needs a limit (the quota would refuse it next)
    e = _refused(lambda: _admit(gat, "gat-prod", _pod("nolimits", limits=False)))
    assert "cpu max limit to request ratio" in e.api_message
    assert "no limit is specified" in e.api_message


def test_exceeding_the_quota_is_refused(gat: Kube, guizhou_applied: Applied) -> None:
    t = guizhou_applied.plan.tenant("gat")
    assert t is not None
    too_much = f"{t.quotas['test'].cpu_m + 10}m"  # more than the whole namespace may use
    e = _refused(lambda: _admit(gat, "gat-test", _pod("big", cpu=too_much)))
    assert "exceeded quota: tenant-quota" in e.api_message


def test_image_from_another_registry_is_refused_by_the_admission_policy(gat: Kube) -> None:
    for image in ("docker.io/library/nginx:1.27", "registry.govcloud.local/rst/app:1.0"):
        e = _refused(lambda image=image: _admit(gat, "gat-test", _pod("reg", image=image)))
        assert "govcloud-tenant-pod-registries" in e.api_message
        assert "registry.govcloud.local/gat/" in e.api_message


def test_claim_and_ingress_classes_are_held_to_the_allowed_ones(gat: Kube) -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "fast-unreviewed",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    e = _refused(lambda: _create(gat, "gat-test", pvc))
    assert "govcloud-tenant-storage-classes" in e.api_message
    ing = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "ingressClassName": "public-nginx",
            "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
        },
    }
    e = _refused(lambda: _create(gat, "gat-test", ing))
    assert "govcloud-tenant-ingress-classes" in e.api_message


def test_prune_lists_then_deletes_only_what_left_the_spec(
    guizhou_applied: Applied, tenant_cluster: TenantCluster, guizhou_spec: Spec
) -> None:
    """Runs last in this module: removes one department from the cluster."""
    k = tenant_cluster.admin()
    spec = guizhou_spec.model_copy(deep=True)
    gone_code = spec.departments[-1].code
    spec.departments = spec.departments[:-1]
    plan = plan_tenants(spec)
    without = tenant_apply.apply(plan, k)  # without --prune nothing goes
    assert without.count()["prune"] == 0
    assert k.get(KINDS[("v1", "Namespace")], f"{gone_code}-prod") is not None
    listed: list[tenant_apply.Key] = []
    out = tenant_apply.apply(plan, k, prune=True, on_prune=listed.extend)
    assert not out.errors
    assert sorted(k_[3] for k_ in listed) == [f"{gone_code}-prod", f"{gone_code}-test"]
    assert {c.key for c in out.of("prune")} == set(listed)
    ns = k.get(KINDS[("v1", "Namespace")], f"{gone_code}-prod")
    assert ns is None or ns["status"]["phase"] == "Terminating"
    assert k.get(KINDS[("v1", "Namespace")], "gat-prod") is not None
