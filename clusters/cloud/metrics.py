"""metrics-server as a cluster add-on: the resource metrics API (``metrics.k8s.io``) that
HorizontalPodAutoscalers and ``kubectl top`` read, as plain objects applied server-side.

How it fits this cloud:

* **Image**: the static binary ``toolchain/build services`` makes, alone in an image of its own
  (``<registry>/platform/metrics-server:<version>``), run as user 65532.
* **Network**: the control plane runs as host processes, with no kube-proxy and no route to the
  pods' subnets, so the API server cannot reach a pod address nor a ClusterIP. metrics-server
  therefore runs in the node's network namespace (``host_network=True``, the default) on
  :data:`HOST_PORT` (the kubelet holds 10250 there), and the API server reaches it at the node's
  address with ``--enable-aggregator-routing=true``: one flow, control plane to the compute hosts
  on that port. ``host_network=False`` gives the usual pod on 10250 for a cluster whose control
  plane routes to the pods.
* **TLS, both ways, from the cluster's CA**: the API server checks metrics-server's serving
  certificate (issued for the Service's names by :func:`serving_cert_request`) against the
  APIService's ``caBundle``; metrics-server checks each kubelet's serving certificate (issued
  with the node's address as an IP SAN) against the same CA (``--kubelet-certificate-authority``),
  so no ``--kubelet-insecure-tls``. It authenticates to the kubelets with its ServiceAccount
  token (the kubelets' webhook authn/authz ask the API server: ``nodes/metrics``).
* **Aggregation**: the API server must be configured as a front proxy (``--requestheader-*`` and
  ``--proxy-client-*``, with a front-proxy CA of its own, and aggregator routing):
  :func:`apiserver_aggregation_flags`. metrics-server reads the request-header CA from the
  ``extension-apiserver-authentication`` ConfigMap and refuses requests it cannot authenticate.

Wiring: issue :func:`serving_cert_request` with the cluster's other certificates, push
:func:`image_spec` as :func:`image`, then :func:`apply_objects` of :func:`objects_from_pki`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clusters.cloud.addons import platform_image
from clusters.cloud.plan import ClusterPlan
from clusters.images.oci import ImageSpec, static_binary_image
from govcloud.errors import OperationError
from govcloud.toolchain import pki

if TYPE_CHECKING:
    from clusters.tenants.kube import Kind, Kube

NAME = "metrics-server"
NAMESPACE = "kube-system"
IMAGE_NAME = NAME  # <registry>/platform/metrics-server:<METRICS_SERVER_VERSION>
LABELS = {"k8s-app": NAME}
API_GROUP = "metrics.k8s.io"
API_VERSION = "v1beta1"
APISERVICE_NAME = f"{API_VERSION}.{API_GROUP}"
HOST_PORT = 4443  # in the node's network namespace: the kubelet holds 10250
POD_PORT = 10250  # in a pod of its own, as upstream runs it
USER = 65532  # the image's user (static_binary_image): not root
TLS_SECRET = f"{NAME}-tls"
KUBELET_CA_CONFIGMAP = f"{NAME}-kubelet-ca"
RESOLUTION = "15s"
RBAC = "rbac.authorization.k8s.io"


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/managed-by": "govcloud"}}
    if namespace:
        md["namespace"] = namespace
    return md


def _apiservice_kind() -> Kind:
    from clusters.tenants.kube import Kind

    return Kind("apiregistration.k8s.io/v1", "APIService", "apiservices", False)


def port(host_network: bool = True) -> int:
    return HOST_PORT if host_network else POD_PORT


def service_names(cp: ClusterPlan) -> tuple[str, ...]:
    """The names the API server may check metrics-server's certificate against: it dials
    ``<service>.<namespace>.svc``."""
    svc = f"{NAME}.{NAMESPACE}.svc"
    return (svc, f"{svc}.{cp.dns_domain}", f"{NAME}.{NAMESPACE}", NAME)


def serving_cert_request(cp: ClusterPlan) -> pki.CertRequest:
    """metrics-server's serving certificate, issued by the cluster CA beside the others
    (``clusters.cloud.pki.cert_requests``): files ``metrics-server.crt`` / ``.key``."""
    return pki.CertRequest(
        NAME, f"{NAME}.{NAMESPACE}.svc", dns_names=service_names(cp), server=True
    )


def image(cp: ClusterPlan) -> str:
    from govcloud.toolchain.versions import load_versions

    return platform_image(cp, IMAGE_NAME, load_versions()["METRICS_SERVER_VERSION"])


def image_spec(bin_dir: Path, host_network: bool = True) -> ImageSpec:
    """The image: the static binary as ``/metrics-server``, run as a non-root user."""
    return static_binary_image(bin_dir / NAME, NAME, ports=(port(host_network),))


FRONT_PROXY_CA = "front-proxy-ca"  # a CA of its own: see apiserver_aggregation_flags
FRONT_PROXY_CLIENT = "front-proxy-client"


def front_proxy_client_request() -> pki.CertRequest:
    """The API server's client certificate when it proxies to an aggregated API, issued by
    the front-proxy CA (not the cluster CA)."""
    return pki.CertRequest(FRONT_PROXY_CLIENT, FRONT_PROXY_CLIENT, client=True)


def apiserver_aggregation_flags(pki_dir: str) -> list[str]:
    """What kube-apiserver needs to serve an aggregated API such as metrics.k8s.io.

    The request-header CA is a CA of its own: a client certificate it issued with an allowed
    name may tell the API server (and every extension server) any user and group in headers, so
    it must not be the CA that issues every other client certificate of the cluster. Aggregator
    routing: the API server dials the Service's endpoints itself, having neither kube-proxy nor
    a route to ClusterIPs."""
    return [
        f"--requestheader-client-ca-file={pki_dir}/{FRONT_PROXY_CA}.crt",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki_dir}/{FRONT_PROXY_CLIENT}.crt",
        f"--proxy-client-key-file={pki_dir}/{FRONT_PROXY_CLIENT}.key",
        "--enable-aggregator-routing=true",
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rbac_objects() -> list[dict[str, Any]]:
    """Who may read the metrics (every view/edit/admin role, by aggregation), what
    metrics-server itself reads, and the delegation it needs to authenticate and authorize its
    callers through the API server."""
    read = ["get", "list", "watch"]
    sa = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    aggregate = {f"{RBAC}/aggregate-to-{r}": "true" for r in ("view", "edit", "admin")}
    reader = _meta("system:aggregated-metrics-reader")
    reader["labels"] = {**reader["labels"], **aggregate}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, NAMESPACE)},
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": reader,
            "rules": [{"apiGroups": [API_GROUP], "resources": ["pods", "nodes"], "verbs": read}],
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": _meta(f"system:{NAME}"),
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": read},
            ],
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(f"system:{NAME}"),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": f"system:{NAME}"},
            "subjects": sa,
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(f"{NAME}:system:auth-delegator"),
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": sa,
        },
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": _meta(f"{NAME}-auth-reader", NAMESPACE),
            "roleRef": {
                "apiGroup": RBAC,
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": sa,
        },
    ]


def container_args(host_network: bool = True) -> list[str]:
    return [
        f"--secure-port={port(host_network)}",
        "--tls-cert-file=/etc/metrics-server/tls/tls.crt",
        "--tls-private-key-file=/etc/metrics-server/tls/tls.key",
        "--tls-min-version=VersionTLS12",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        "--kubelet-certificate-authority=/etc/metrics-server/kubelet-ca/ca.crt",
        f"--metric-resolution={RESOLUTION}",
        "--profiling=false",
    ]


def deployment(
    cp: ClusterPlan, image_ref: str, replicas: int = 1, host_network: bool = True
) -> dict[str, Any]:
    p = port(host_network)
    probe = {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": NAME,
        "priorityClassName": "system-cluster-critical",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER,
            "runAsGroup": USER,
            "fsGroup": USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "tolerations": [
            {
                "key": f"node.kubernetes.io/{t}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": cp.eviction_seconds,
            }
            for t in ("unreachable", "not-ready")
        ],
        "containers": [
            {
                "name": NAME,
                "image": image_ref,
                "args": container_args(host_network),
                "ports": [{"name": "https", "containerPort": p, "protocol": "TCP"}],
                "readinessProbe": {
                    "httpGet": probe,
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                    "initialDelaySeconds": 20,
                },
                "livenessProbe": {
                    "httpGet": {**probe, "path": "/livez"},
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "200Mi"},
                    "limits": {"memory": "400Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True,
                },
                "volumeMounts": [
                    {"name": "tls", "mountPath": "/etc/metrics-server/tls", "readOnly": True},
                    {
                        "name": "kubelet-ca",
                        "mountPath": "/etc/metrics-server/kubelet-ca",
                        "readOnly": True,
                    },
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            }
        ],
        "volumes": [
            {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
            {"name": "kubelet-ca", "configMap": {"name": KUBELET_CA_CONFIGMAP}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if host_network:
        # the node's own resolver, and one replica per node (they share the node's port)
        pod_spec["hostNetwork"] = True
        pod_spec["dnsPolicy"] = "Default"
    if replicas > 1:
        pod_spec["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": LABELS},
                    }
                ]
            }
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**_meta(NAME, NAMESPACE), "labels": {**_meta(NAME)["labels"], **LABELS}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": LABELS},
            # a new pod must be ready before the old one goes: the API stays served
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {"metadata": {"labels": LABELS}, "spec": pod_spec},
        },
    }


def metrics_objects(
    cp: ClusterPlan,
    image_ref: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    replicas: int = 1,
    host_network: bool = True,
) -> list[dict[str, Any]]:
    """Every object of the add-on, in the order to apply them (the APIService last, once what
    it points to exists). ``ca_pem`` is the cluster CA; ``cert_pem``/``key_pem`` the serving
    certificate of :func:`serving_cert_request`."""
    if replicas < 1:
        raise ValueError("metrics-server needs at least one replica")
    p = port(host_network)
    return [
        *rbac_objects(),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(TLS_SECRET, NAMESPACE),
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": _b64(cert_pem), "tls.key": _b64(key_pem)},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(KUBELET_CA_CONFIGMAP, NAMESPACE),
            "data": {"ca.crt": ca_pem.decode()},
        },
        deployment(cp, image_ref, replicas, host_network),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**_meta(NAME, NAMESPACE), "labels": {**_meta(NAME)["labels"], **LABELS}},
            "spec": {
                "selector": LABELS,
                "ports": [
                    {
                        "name": "https",
                        "port": 443,
                        "protocol": "TCP",
                        "targetPort": p,
                        "appProtocol": "https",
                    }
                ],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {**_meta(APISERVICE_NAME), "labels": {**_meta(NAME)["labels"], **LABELS}},
            "spec": {
                "group": API_GROUP,
                "version": API_VERSION,
                "service": {"name": NAME, "namespace": NAMESPACE, "port": 443},
                "caBundle": _b64(ca_pem),
                "insecureSkipTLSVerify": False,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def objects_from_pki(
    cp: ClusterPlan,
    pki_dir: Path,
    image_ref: str | None = None,
    replicas: int = 1,
    host_network: bool = True,
) -> list[dict[str, Any]]:
    """The add-on's objects with the cluster CA and the serving certificate read from
    ``pki_dir`` (the cluster's certificates, ``clusters.cloud.pki.ensure``); the serving
    certificate is issued there by the CA first when missing or no longer matching."""
    ca_crt, ca_key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    if not (ca_crt.is_file() and ca_key_path.is_file()):
        raise OperationError(
            f"no cluster CA in {pki_dir}: the cluster's certificates come first "
            "(govcloud cluster apply)"
        )
    ca_key, ca_cert = pki.load_key(ca_key_path), pki.load_cert(ca_crt)
    pki.ensure_cert(pki_dir, ca_key, ca_cert, serving_cert_request(cp))
    return metrics_objects(
        cp,
        image_ref or image(cp),
        (pki_dir / "ca.crt").read_bytes(),
        (pki_dir / f"{NAME}.crt").read_bytes(),
        (pki_dir / f"{NAME}.key").read_bytes(),
        replicas=replicas,
        host_network=host_network,
    )


def apply_objects(kube: Kube, objs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Server-side apply each object; the APIService (a kind the tenant client does not list)
    through the same apply patch. Returns what the server holds after."""
    from clusters.tenants.kube import APPLY_PATCH, FIELD_MANAGER, KINDS

    extra = _apiservice_kind()
    out = []
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in KINDS:
            out.append(kube.apply(obj))
            continue
        if (obj["apiVersion"], obj["kind"]) != (extra.api_version, extra.kind):
            raise ValueError(f"unknown kind {obj['apiVersion']}/{obj['kind']}")
        name = obj["metadata"]["name"]
        out.append(
            kube.request(
                "PATCH",
                extra.path(None, name),
                query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
                body=obj,
                content_type=APPLY_PATCH,
                what=f"apply APIService {name}",
            )
        )
    return out


def get_apiservice(kube: Kube) -> dict[str, Any] | None:
    return kube.get(_apiservice_kind(), APISERVICE_NAME)


def available(apiservice: dict[str, Any] | None) -> bool:
    """Whether the API server serves the metrics API (the APIService's Available condition)."""
    conds = ((apiservice or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)
