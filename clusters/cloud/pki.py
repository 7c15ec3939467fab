"""The cluster's certificates and keys, made on the controller from the cluster's CA.

Every identity the cluster knows is a certificate issued here: etcd, the API server (serving,
and as a client of etcd and of the kubelets), the controller manager and scheduler, each node
(``system:node:<name>`` in ``system:nodes``, and its kubelet's serving certificate), kube-proxy,
the policy agent, the registry and the platform administrator. Plus the service-account signing
key and the key that encrypts Secrets at rest. All live in ``state/cluster/pki`` (0600 keys);
the roles copy each host only what it needs. Re-running issues only what is missing, stale or
no longer matches the plan (a node's new address, a renamed registry).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from clusters.cloud.plan import ClusterPlan
from govcloud.paths import state_dir
from govcloud.toolchain import pki

ADMIN_USER = "govcloud-admin"
KUBE_ROUTER_USER = "govcloud:kube-router"  # bound to its ClusterRole by the add-ons
APISERVER_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
)


def cluster_dir() -> Path:
    return state_dir() / "cluster"


def pki_dir() -> Path:
    return cluster_dir() / "pki"


def cert_requests(plan: ClusterPlan) -> list[pki.CertRequest]:
    cp = (plan.api_address, "127.0.0.1")
    reqs = [
        pki.CertRequest(
            "etcd-server",
            "etcd",
            dns_names=(plan.api_host, "localhost"),
            ip_addresses=cp,
            server=True,
            client=True,
        ),
        pki.CertRequest("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True),
        pki.CertRequest(
            "apiserver",
            "kube-apiserver",
            dns_names=(
                plan.api_host,
                "localhost",
                *APISERVER_NAMES,
                f"kubernetes.default.svc.{plan.dns_domain}",
            ),
            ip_addresses=(*cp, plan.api_service_ip),
            server=True,
        ),
        # the API server calling kubelets (logs, exec): allowed by the kubelets' webhook authz
        pki.CertRequest(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            organizations=("system:masters",),
            client=True,
        ),
        pki.CertRequest("controller-manager", "system:kube-controller-manager", client=True),
        pki.CertRequest("scheduler", "system:kube-scheduler", client=True),
        pki.CertRequest("kube-proxy", "system:kube-proxy", client=True),
        pki.CertRequest("kube-router", KUBE_ROUTER_USER, client=True),
        pki.CertRequest("admin", ADMIN_USER, organizations=("system:masters",), client=True),
        pki.CertRequest(
            "registry",
            plan.registry_name,
            dns_names=(plan.registry_name, plan.registry_host),
            ip_addresses=(plan.registry_address,),
            server=True,
        ),
    ]
    for n in plan.nodes:
        reqs.append(
            pki.CertRequest(
                f"node-{n.name}",
                f"system:node:{n.name}",
                organizations=("system:nodes",),
                client=True,
            )
        )
        reqs.append(
            pki.CertRequest(
                f"kubelet-{n.name}",
                n.name,
                dns_names=(n.name,),
                ip_addresses=(n.address,),
                server=True,
            )
        )
    return reqs


def encryption_config(key: bytes) -> str:
    """The API server's EncryptionConfiguration: Secrets are stored encrypted with
    ``secretbox`` (XSalsa20-Poly1305, a fresh nonce per write); ``identity`` only reads what
    was written before encryption was on."""
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [
                    {
                        "secretbox": {
                            "keys": [{"name": "key1", "secret": base64.b64encode(key).decode()}]
                        }
                    },
                    {"identity": {}},
                ],
            }
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def ensure(plan: ClusterPlan, directory: Path | None = None) -> Path:
    """Every certificate and key of ``plan`` in ``directory`` (default ``pki_dir()``)."""
    directory = directory or pki_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_key, ca_cert = pki.ensure_ca(directory, f"govcloud-{plan.name}-cluster-ca")
    for req in cert_requests(plan):
        pki.ensure_cert(directory, ca_key, ca_cert, req)
    pki.ensure_signing_key(directory, "service-account")
    _front_proxy(plan, directory)
    enc = directory / "encryption-config.yaml"
    if not enc.exists():
        pki.write_private(enc, encryption_config(os.urandom(32)).encode())
    return directory


FRONT_PROXY_DIR = "front-proxy"


def _front_proxy(plan: ClusterPlan, directory: Path) -> None:
    """The API server's front-proxy CA (a CA of its own: a client certificate it issues may
    assert any user to an aggregated API such as metrics.k8s.io) and its client certificate,
    in a subdirectory, then copied beside the others as ``front-proxy-ca.crt`` and
    ``front-proxy-client.{crt,key}`` (the names ``metrics.apiserver_aggregation_flags`` uses)."""
    from clusters.cloud.metrics import (
        FRONT_PROXY_CA,
        FRONT_PROXY_CLIENT,
        front_proxy_client_request,
    )

    sub = directory / FRONT_PROXY_DIR
    sub.mkdir(mode=0o700, exist_ok=True)
    key, cert = pki.ensure_ca(sub, f"govcloud-{plan.name}-front-proxy-ca")
    pki.ensure_cert(sub, key, cert, front_proxy_client_request())
    copies = {
        sub / "ca.crt": directory / f"{FRONT_PROXY_CA}.crt",
        sub / f"{FRONT_PROXY_CLIENT}.crt": directory / f"{FRONT_PROXY_CLIENT}.crt",
        sub / f"{FRONT_PROXY_CLIENT}.key": directory / f"{FRONT_PROXY_CLIENT}.key",
    }
    for src, dest in copies.items():
        data = src.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            write = pki.write_private if dest.suffix == ".key" else pki.write_public
            write(dest, data)


def admin_kubeconfig(plan: ClusterPlan, directory: Path | None = None) -> Path:
    """The platform administrator's kubeconfig on the controller (``state/cluster/``)."""
    directory = directory or pki_dir()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": plan.name,
                "cluster": {
                    "server": plan.server,
                    "certificate-authority": str(directory / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": ADMIN_USER,
                "user": {
                    "client-certificate": str(directory / "admin.crt"),
                    "client-key": str(directory / "admin.key"),
                },
            }
        ],
        "contexts": [{"name": plan.name, "context": {"cluster": plan.name, "user": ADMIN_USER}}],
        "current-context": plan.name,
    }
    path = directory.parent / "admin.kubeconfig"
    pki.write_private(path, yaml.safe_dump(doc, sort_keys=False).encode())
    return path


def department_kubeconfig(plan: ClusterPlan, code: str, role: str = "developer") -> Path:
    """A member of department ``code`` in ``role`` on the cluster: a client certificate whose
    O is the department's group (the one OpenBao holds and the tenant's RoleBindings name)."""
    from clusters.tenants.credentials import kubeconfig_for

    return kubeconfig_for(
        pki_dir(),
        plan.server,
        cluster_dir() / "departments",
        code,
        role,
        hint="run govcloud cluster apply first",
    )
