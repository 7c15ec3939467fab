"""Names shared by the identity system and the tenant cloud, so both speak of the same groups.

A department's people are in three groups (developers, operators, viewers); the platform's
administrators are split into the three separated roles of GB/T 22239-2019 grade 3 (三权分立).
OpenBao holds these groups; Kubernetes RBAC binds to the same names.
"""

from __future__ import annotations

DEPARTMENT_ROLES = ("developer", "operator", "viewer")
ADMIN_ROLES = ("system", "security", "audit")


def department_group(code: str, role: str) -> str:
    """``dept-<code>-<role>s``, e.g. ``dept-gat-developers``."""
    if role not in DEPARTMENT_ROLES:
        raise ValueError(f"unknown department role {role!r}")
    return f"dept-{code}-{role}s"


def admin_group(role: str) -> str:
    """``govcloud-<role>-admins``: system, security or audit administrators."""
    if role not in ADMIN_ROLES:
        raise ValueError(f"unknown administrator role {role!r}")
    return f"govcloud-{role}-admins"


def tenant_namespace(code: str, environment: str) -> str:
    """``<code>-<environment>``, e.g. ``gat-prod``: a department's namespace."""
    return f"{code}-{environment}"


def kv_mount(code: str) -> str:
    """``kv-<code>``: the department's secrets in OpenBao (KV v2)."""
    return f"kv-{code}"
