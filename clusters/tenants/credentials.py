"""Department credentials for the local API server: a client certificate per department role.

The API server authenticates client certificates signed by its client CA, taking the user from
the certificate's CN and the groups from its O entries. A department developer's certificate
carries ``O=dept-<code>-developers`` (:func:`govcloud.naming.department_group`): the group the
tenant's RoleBindings name and OpenBao holds, so what the identity system grants and what the
cluster allows are the same thing. Certificates are signed by the local control plane's CA
(:mod:`govcloud.toolchain.k8s`) and kept under ``<state dir>/departments/``; in production the
same certificates would come from OpenBao's PKI engine with the same subject.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from govcloud.errors import InputError
from govcloud.naming import DEPARTMENT_ROLES, department_group
from govcloud.toolchain import pki
from govcloud.toolchain.k8s import ClusterConfig

CERT_DAYS = 30


def user_name(code: str, role: str, person: str | None = None) -> str:
    """``<person>@<code>`` or ``<code>-<role>``: the user the API server sees."""
    return f"{person}@{code}" if person else f"{code}-{role}"


def department_kubeconfig(
    cfg: ClusterConfig,
    code: str,
    role: str = "developer",
    person: str | None = None,
    out: Path | None = None,
) -> Path:
    """A kubeconfig acting as a member of department ``code`` in ``role`` on the local API
    server; written to ``out`` (default ``<state dir>/departments/<code>-<role>.kubeconfig``),
    mode 0600."""
    return kubeconfig_for(
        cfg.pki, cfg.server, cfg.state_dir / "departments", code, role, person, out,
        hint="start the local API server first (govcloud k8s up)",
    )  # fmt: skip


def kubeconfig_for(
    ca_dir: Path,
    server: str,
    directory: Path,
    code: str,
    role: str = "developer",
    person: str | None = None,
    out: Path | None = None,
    *,
    hint: str = "",
) -> Path:
    """A department member's kubeconfig for the API server at ``server``, its certificate
    signed by the CA in ``ca_dir`` and kept in ``directory``."""
    if role not in DEPARTMENT_ROLES:
        raise InputError(f"role must be one of {', '.join(DEPARTMENT_ROLES)}, not {role!r}")
    ca_key_path, ca_cert_path = ca_dir / "ca.key", ca_dir / "ca.crt"
    if not (ca_key_path.exists() and ca_cert_path.exists()):
        raise InputError(f"no cluster CA under {ca_dir}" + (f": {hint}" if hint else ""))
    ca_key, ca_cert = pki.load_key(ca_key_path), pki.load_cert(ca_cert_path)
    user = user_name(code, role, person)
    stem = f"{code}-{role}" + (f"-{person}" if person else "")
    crt, key = pki.ensure_cert(
        directory,
        ca_key,
        ca_cert,
        pki.CertRequest(stem, user, organizations=(department_group(code, role),), client=True),
    )
    conf: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "govcloud",
                "cluster": {"server": server, "certificate-authority": str(ca_cert_path)},
            }
        ],
        "users": [{"name": user, "user": {"client-certificate": str(crt), "client-key": str(key)}}],
        "contexts": [
            {"name": stem, "context": {"cluster": "govcloud", "user": user}},
        ],
        "current-context": stem,
    }
    path = out or directory / f"{stem}.kubeconfig"
    pki.write_private(path, yaml.safe_dump(conf).encode())
    return path
