"""Set up the service PKI in OpenBao from a :class:`~security.pki.plan.PkiPlan` (idempotent).

Run by the system administrator as part of ``govcloud identity apply``, like the SSH CAs: the
``pki`` mount, the intermediate (a CSR generated in OpenBao, signed by the offline root, imported
with its chain and made the default issuer) and one role per use. A second run changes nothing
while the intermediate chains to the root, still outlives the longest certificate and carries the
plan's name constraints; otherwise a new intermediate is signed and becomes the default (the old
one keeps verifying the certificates it issued).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from govcloud.errors import OperationError
from govcloud.toolchain import pki as files
from security.openbao.client import Bao
from security.pki.plan import INTERMEDIATE_COMMON_NAME, KEY_BITS, KEY_TYPE, PkiPlan
from security.pki.root import RootPaths, constraints_of, ensure_root, sign_intermediate


def intermediate_ok(
    cert: x509.Certificate, root: x509.Certificate, plan: PkiPlan, now: dt.datetime | None = None
) -> str | None:
    """Why the intermediate must be replaced, or None when it is good."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the offline root"
    left = cert.not_valid_after_utc - now
    if left < dt.timedelta(hours=plan.max_ttl_hours):
        return f"{left} left, less than the longest certificate ({plan.max_ttl_hours} h)"
    domains, nets = constraints_of(cert)
    if domains != set(plan.permitted_domains) or nets != set(plan.permitted_networks):
        return "its name constraints differ from the spec's domains"
    return None


def _role_differs(current: dict[str, Any] | None, want: dict[str, Any]) -> bool:
    if current is None:
        return True
    for key, value in want.items():
        have = current.get(key)
        if key in ("ttl", "max_ttl"):
            hours = int(str(value).removesuffix("h"))
            if int(have or 0) != hours * 3600:
                return True
        elif isinstance(value, list):
            if sorted(have or []) != sorted(value):
                return True
        elif have != value:
            return True
    return False


def ensure_pki(bao: Bao, plan: PkiPlan, root_paths: RootPaths) -> list[str]:
    """Mount, intermediate and roles; returns what changed."""
    changed: list[str] = []
    mount = plan.mount
    if f"{mount}/" not in bao.list_secrets_engines():
        bao.enable_secrets_engine("pki", mount_point=mount)
        changed.append(f"mount {mount} (pki)")
    bao.tune_secrets_engine(mount_point=mount, max_lease_ttl=f"{plan.max_ttl_hours}h")
    root_key, root_cert = ensure_root(root_paths)
    issuer = bao.read_pki_issuer(mount_point=mount)
    why: str | None = "none yet"
    if issuer and issuer.get("certificate"):
        current = x509.load_pem_x509_certificate(str(issuer["certificate"]).encode())
        why = intermediate_ok(current, root_cert, plan)
    if why is not None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
        csr = bao.generate_intermediate_csr(
            f"{INTERMEDIATE_COMMON_NAME} {stamp}",
            mount_point=mount,
            key_type=KEY_TYPE,
            key_bits=KEY_BITS,
            organization="govcloud",
        )
        cert = sign_intermediate(
            csr,
            root_key,
            root_cert,
            hours=plan.intermediate_hours,
            permitted_domains=plan.permitted_domains,
            permitted_networks=plan.permitted_networks,
        )
        pem = files.cert_pem(cert).decode()
        imported = bao.set_signed_intermediate(
            pem + files.cert_pem(root_cert).decode(), mount_point=mount
        )
        ours = [
            i
            for i in imported
            if str((bao.read_pki_issuer(i, mount_point=mount) or {}).get("certificate", "")).strip()
            == pem.strip()
        ]
        if not ours:
            raise OperationError(f"{mount}: the signed intermediate was not imported as an issuer")
        bao.set_default_pki_issuer(ours[0], mount_point=mount)
        changed.append(f"{mount} intermediate ({why})")
    for role in plan.roles.values():
        want = role.params()
        if _role_differs(bao.read_pki_role(role.name, mount_point=mount), want):
            bao.create_or_update_pki_role(role.name, mount_point=mount, **want)
            changed.append(f"{mount} role {role.name}")
    return changed
