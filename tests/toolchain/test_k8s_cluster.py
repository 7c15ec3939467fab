"""The local control plane as tenants will meet it: a real etcd, kube-apiserver and
kube-controller-manager (``govcloud k8s up``), driven with kubectl and the Python client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.toolchain.conftest import Cluster, govcloud

pytestmark = pytest.mark.integration

NS = "dept-tax"
QUOTA = {"pods": "3", "requests.cpu": "1", "requests.memory": "1Gi", "limits.cpu": "2",
         "limits.memory": "2Gi"}  # fmt: skip


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def pod(
    name: str, cpu: str, memory: str = "128Mi", sc: dict[str, Any] | None = None
) -> dict[str, Any]:
    if sc is None:  # what the restricted Pod Security level asks for
        sc = {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.invalid/hall:1",  # never pulled: no kubelet here
                    "resources": {
                        "requests": {"cpu": cpu, "memory": memory},
                        "limits": {"cpu": cpu, "memory": memory},
                    },
                    "securityContext": sc,
                }
            ]
        },
    }


@pytest.fixture(scope="module")
def api(k8s_cluster: Cluster) -> Iterator[client.CoreV1Api]:
    c = config.new_client_from_config(config_file=str(k8s_cluster.kubeconfig))
    yield client.CoreV1Api(c)
    c.close()


@pytest.fixture(scope="module")
def tenant(api: client.CoreV1Api) -> str:
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    api.create_namespace({"metadata": {"name": NS, "labels": labels}})
    api.create_namespaced_resource_quota(
        NS, {"metadata": {"name": "tenant"}, "spec": {"hard": QUOTA}}
    )
    # The controller manager computes the quota's usage and creates the default service account;
    # until both happened the API server admits no pod in the namespace.
    wait_for(
        "quota status",
        lambda: (api.read_namespaced_resource_quota("tenant", NS).status.hard or {}).get("pods"),
    )
    wait_for("default service account", lambda: api.list_namespaced_service_account(NS).items)
    return NS


def test_readyz_says_ok(k8s_cluster: Cluster) -> None:
    r = k8s_cluster.kubectl("get", "--raw", "/readyz")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_status_reports_every_component_ready(k8s_cluster: Cluster) -> None:
    r = govcloud("k8s", "status", "--state-dir", str(k8s_cluster.state_dir), "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["ready"] is True and st["readyz"] == "ok"
    assert all(c["running"] for c in st["components"].values())


def test_versions_are_the_recorded_ones(k8s_cluster: Cluster) -> None:
    r = k8s_cluster.kubectl("version", "-o", "json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    from govcloud.toolchain.versions import load_versions

    want = "v" + load_versions()["KUBERNETES_VERSION"]
    assert v["serverVersion"]["gitVersion"] == want


def test_pod_within_quota_is_admitted(api: client.CoreV1Api, tenant: str) -> None:
    created = api.create_namespaced_pod(tenant, pod("small", "250m"))
    assert created.metadata.uid

    def used() -> dict[str, str] | None:
        u = api.read_namespaced_resource_quota("tenant", tenant).status.used or {}
        return u if u.get("requests.cpu") == "250m" else None

    assert wait_for("quota usage", used)["pods"] == "1"


def test_pod_over_quota_is_refused_by_the_api_server(api: client.CoreV1Api, tenant: str) -> None:
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_pod(tenant, pod("big", "2", "512Mi"))
    assert exc.value.status == 403
    body = json.loads(exc.value.body)
    assert body["reason"] == "Forbidden"
    assert 'pods "big" is forbidden: exceeded quota: tenant' in body["message"]
    assert "requests.cpu" in body["message"]


def test_pod_over_quota_is_refused_through_kubectl(k8s_cluster: Cluster, tenant: str) -> None:
    r = k8s_cluster.kubectl("-n", tenant, "create", "-f", "-", stdin=json.dumps(pod("big2", "4")))
    assert r.returncode != 0
    assert "Error from server (Forbidden)" in r.stderr
    assert "exceeded quota: tenant" in r.stderr


def test_pod_security_refuses_a_pod_below_restricted(api: client.CoreV1Api, tenant: str) -> None:
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_pod(tenant, pod("loose", "100m", sc={}))
    assert exc.value.status == 403
    message = json.loads(exc.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "allowPrivilegeEscalation != false" in message


def test_privileged_containers_are_disallowed_outright(api: client.CoreV1Api, tenant: str) -> None:
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_pod(tenant, pod("priv", "100m", sc={"privileged": True}))
    assert exc.value.status == 422
    assert "disallowed by cluster policy" in exc.value.body


def test_rbac_denies_until_a_role_is_bound(k8s_cluster: Cluster, tenant: str) -> None:
    who = ["--as", "tax-developer", "--as-group", "dept-tax"]
    denied = k8s_cluster.kubectl(*who, "-n", tenant, "get", "pods")
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr and '"tax-developer" cannot list' in denied.stderr
    bound = k8s_cluster.kubectl(
        "-n", tenant, "create", "rolebinding", "tax-view", "--clusterrole=view",
        "--group=dept-tax",
    )  # fmt: skip
    assert bound.returncode == 0, bound.stderr
    allowed = k8s_cluster.kubectl(*who, "-n", tenant, "get", "pods", "-o", "name")
    assert allowed.returncode == 0, allowed.stderr
    assert "pod/small" in allowed.stdout
    other = k8s_cluster.kubectl(*who, "-n", "default", "get", "pods")
    assert other.returncode != 0 and "Forbidden" in other.stderr


def test_namespace_deletion_completes(api: client.CoreV1Api) -> None:
    api.create_namespace({"metadata": {"name": "short-lived"}})
    api.create_namespaced_config_map("short-lived", {"metadata": {"name": "c"}, "data": {"a": "b"}})
    api.delete_namespace("short-lived")

    def gone() -> bool:
        try:
            api.read_namespace("short-lived")
        except ApiException as exc:
            return exc.status == 404
        return False

    assert wait_for("namespace deletion", gone)
