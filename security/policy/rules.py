"""The mandatory rules of govcloud's policy pack, as plain functions over a resource's type
and properties: each returns the violations it finds (empty: compliant). The pack
(``security/policy/__main__.py``) wires them into pulumi_policy; tests call them directly."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

Rule = Callable[[str, dict[str, Any]], list[str]]
SECRET_KEY = re.compile(r"(password|passphrase|token|secret|unseal|private_?key)", re.I)


def _record(props: dict[str, Any], kind: str) -> dict[str, Any] | None:
    if props.get("kind") != kind:
        return None
    summary = props.get("summary")
    return summary if isinstance(summary, dict) else None


def _touches(prefixes: list[str], net: ipaddress.IPv4Network) -> bool:
    return any(ipaddress.IPv4Network(p).overlaps(net) for p in prefixes)


def no_intranet_flow(_type: str, props: dict[str, Any]) -> list[str]:
    """No rule lets traffic between the intranet (政务内网) and the extranet."""
    policy = _record(props, "policy")
    if policy is None:
        return []
    inner = ipaddress.IPv4Network(policy["intranet"])
    return [
        f"rule {r['id']} ({r['name']}) reaches the intranet {inner}"
        for r in policy["rules"]
        if r["action"] == "accept"
        and (_touches(r["src_prefixes"], inner) or _touches(r["dst_prefixes"], inner))
    ]


def ssh_only_from_bastion(_type: str, props: dict[str, Any]) -> list[str]:
    """SSH (tcp/22) is allowed from the bastion only (and to the bastion from management)."""
    policy = _record(props, "policy")
    if policy is None:
        return []
    bastion = {f"{a}/32" for a in policy.get("bastion", [])}
    out = []
    dropped: set[tuple[str, str]] = set()  # (src, dst) whose SSH an earlier rule drops
    for r in policy["rules"]:
        if r["proto"] != "tcp" or (r["ports"] and 22 not in r["ports"]):
            continue
        if r["action"] != "accept":
            dropped.add((r["src"], r["dst"]))
            continue
        if r["dst"] == "role:bastion" or set(r["src_prefixes"]) <= bastion:
            continue
        if (r["src"], r["dst"]) not in dropped:
            out.append(f"rule {r['id']} ({r['name']}) allows SSH from {r['src']}")
    return out


def two_audit_devices(_type: str, props: dict[str, Any]) -> list[str]:
    """OpenBao declares at least two audit devices (one full disk must not stop it)."""
    identity = _record(props, "openbao")
    if identity is None:
        return []
    n = int(identity.get("audit_devices", 0))
    return [] if n >= 2 else [f"OpenBao has {n} audit device(s), at least 2 are required"]


def tenants_restricted(_type: str, props: dict[str, Any]) -> list[str]:
    """Every tenant namespace enforces the "restricted" Pod Security level."""
    tenant = _record(props, "tenant")
    if tenant is None:
        return []
    return [
        f"namespace {ns} enforces {level!r}, not 'restricted'"
        for ns, level in tenant.get("pod_security", {}).items()
        if level != "restricted"
    ]


def no_clear_secrets(_type: str, props: dict[str, Any]) -> list[str]:
    """No property named like a secret holds a clear value (secrets are references or
    Pulumi secrets, never plain state)."""
    out = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            if value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
                return  # a Pulumi secret: encrypted in the state
            for k, v in value.items():
                where = f"{path}.{k}" if path else str(k)
                if SECRET_KEY.search(str(k)) and isinstance(v, str) and v:
                    out.append(f"{where} holds a secret in clear")
                else:
                    walk(v, where)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    walk({k: v for k, v in props.items() if k != "__provider"}, "")
    return out


RULES: dict[str, tuple[Rule, str]] = {
    "no-intranet-flow": (no_intranet_flow, "no flow between the intranet and the extranet"),
    "ssh-only-from-bastion": (ssh_only_from_bastion, "SSH only from the bastion"),
    "two-audit-devices": (two_audit_devices, "OpenBao keeps at least two audit devices"),
    "tenants-restricted": (tenants_restricted, "tenant namespaces are Pod Security restricted"),
    "no-clear-secrets": (no_clear_secrets, "no secret in clear in the state"),
}
