"""A thin layer over the ``kubernetes`` client: objects as plain dicts, server-side apply, reads,
lists and deletes by (apiVersion, kind), and errors turned into messages a user can act on.

Server-side apply goes through the generated client's ``ApiClient.call_api`` with the
``application/apply-patch+yaml`` content type (a JSON body is valid YAML), one field manager
(:data:`FIELD_MANAGER`). The ``ApiClient`` is shared by worker threads: its urllib3 pool is
thread-safe and sized to the concurrency asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from govcloud.errors import InputError, OperationError

FIELD_MANAGER = "govcloud"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        p = self.prefix
        if self.namespaced and namespace:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name:
            p += f"/{name}"
        return p


KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in (
        Kind("v1", "Namespace", "namespaces", False),
        Kind("v1", "ResourceQuota", "resourcequotas", True),
        Kind("v1", "LimitRange", "limitranges", True),
        Kind("v1", "Service", "services", True),
        Kind("v1", "Pod", "pods", True),
        Kind("v1", "ConfigMap", "configmaps", True),
        Kind("v1", "Secret", "secrets", True),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
        Kind("v1", "Event", "events", True),
        Kind("v1", "ServiceAccount", "serviceaccounts", True),
        Kind("v1", "Node", "nodes", False),
        Kind("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
        Kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True),
        Kind("networking.k8s.io/v1", "Ingress", "ingresses", True),
        Kind("rbac.authorization.k8s.io/v1", "Role", "roles", True),
        Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
        Kind(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            False,
        ),
        Kind(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            False,
        ),
        Kind("apps/v1", "Deployment", "deployments", True),
        Kind("apps/v1", "ReplicaSet", "replicasets", True),
        Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
    )
}

_serializer = k8s.ApiClient()


def to_dict(obj: Any) -> dict[str, Any]:
    """A client model (or a dict) as the JSON the API server takes: camelCase, no Nones."""
    out = _serializer.sanitize_for_serialization(obj)
    if not isinstance(out, dict):
        raise TypeError(f"not an object: {type(obj).__name__}")
    return out


def kind_of(obj: dict[str, Any]) -> Kind:
    try:
        return KINDS[(obj["apiVersion"], obj["kind"])]
    except KeyError as exc:
        raise ValueError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}") from exc


def key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """``(apiVersion, kind, namespace, name)``: an object's identity."""
    md = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], md.get("namespace") or "", md["name"])


def describe(k: tuple[str, str, str, str]) -> str:
    _api, kind, ns, name = k
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


class ApiError(OperationError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str, what: str) -> None:
        self.status = status
        self.reason = reason
        self.api_message = message
        self.what = what
        super().__init__(f"{what}: {status} {reason}: {message}")

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def not_found(self) -> bool:
        return self.status == 404


def _api_error(exc: k8s.ApiException, what: str) -> ApiError:
    message, reason = str(exc.reason or ""), str(exc.reason or "")
    try:
        body = json.loads(exc.body or "{}")
        if not isinstance(body, dict):
            body = {}
        message = body.get("message") or message
        reason = body.get("reason") or reason
    except (ValueError, TypeError):
        pass
    return ApiError(int(exc.status or 0), reason, message, what)


class Kube:
    """One connection to an API server, shared by threads."""

    def __init__(self, api_client: k8s.ApiClient, source: str = "") -> None:
        self.api = api_client
        self.source = source

    @classmethod
    def from_kubeconfig(cls, path: Path, pool: int = 16) -> Kube:
        if not path.exists():
            raise InputError(
                f"kubeconfig {path} does not exist (start the local API server with "
                "`govcloud k8s up`, or pass --kubeconfig)"
            )
        conf = k8s.Configuration()
        try:
            k8s_config.load_kube_config(config_file=str(path), client_configuration=conf)
        except (k8s_config.ConfigException, OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot read kubeconfig {path}: {exc}") from exc
        conf.connection_pool_maxsize = max(pool, 4)
        conf.retries = 2
        return cls(k8s.ApiClient(conf), str(path))

    # -- raw requests ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
        timeout: float = 30.0,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        what = what or f"{method} {path}"
        try:
            method_, url, headers_, body_, _post = self.api.param_serialize(
                method,
                path,
                query_params=query or [],
                header_params=headers,
                # apply patches pre-encoded: the client would otherwise walk the whole body once
                # more (JSON bodies must stay objects: the client encodes those itself)
                body=json.dumps(body) if content_type == APPLY_PATCH else body,
                auth_settings=["BearerToken"],
            )
            resp = self.api.call_api(method_, url, header_params=headers_, body=body_,
                                     _request_timeout=timeout)  # fmt: skip
            data = resp.read()
        except k8s.ApiException as exc:
            raise _api_error(exc, what) from exc
        except Exception as exc:  # urllib3 and socket errors: the server is not reachable
            if isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3"):
                reason = getattr(exc, "reason", None) or exc  # MaxRetryError wraps the cause
                raise OperationError(
                    f"{what}: cannot reach the API server at {self.api.configuration.host} "
                    f"({self.source or 'no kubeconfig'}): {reason}"
                ) from exc
            raise
        if not 200 <= resp.status < 300:
            raise _api_error(
                k8s.ApiException(status=resp.status, reason=resp.reason, body=data), what
            )
        return json.loads(data) if data else None

    # -- typed helpers ----------------------------------------------------------------------

    def apply(
        self, obj: dict[str, Any], *, dry_run: bool = False, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply ``obj`` as :data:`FIELD_MANAGER`; the object the server holds after."""
        k = kind_of(obj)
        md = obj["metadata"]
        query = [("fieldManager", FIELD_MANAGER)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        out = self.request(
            "PATCH",
            k.path(md.get("namespace"), md["name"]),
            query=query,
            body=obj,
            content_type=APPLY_PATCH,
            what=f"apply {describe(key(obj))}",
        )
        assert isinstance(out, dict)
        return out

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            out = self.request(
                "GET", kind.path(namespace, name), what=f"get {kind.kind} {namespace or ''}/{name}"
            )
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        assert isinstance(out, dict)
        return out

    def list(
        self, kind: Kind, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", selector)] if selector else []
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            q = [*query, ("limit", "500")] + ([("continue", cont)] if cont else [])
            out = self.request(
                "GET", kind.path(namespace), query=q, what=f"list {kind.plural}", timeout=60
            )
            for item in out.get("items", []):
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item)
            cont = (out.get("metadata") or {}).get("continue") or ""
            if not cont:
                return items

    def delete(self, kind: Kind, name: str, namespace: str | None = None) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            self.request(
                "DELETE",
                kind.path(namespace, name),
                body={"propagationPolicy": "Background"},
                what=f"delete {kind.kind} {namespace + '/' if namespace else ''}{name}",
            )
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def server_version(self) -> str:
        out = self.request("GET", "/version", what="server version")
        return str(out.get("gitVersion", "")).lstrip("v")

    def supports(self, api_version: str, kind: str) -> bool:
        """Does the server serve ``kind`` in ``api_version`` (discovery)?"""
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            out = self.request("GET", path, what=f"discover {api_version}")
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return any(r.get("kind") == kind for r in out.get("resources", []))
