"""Apply an :class:`~security.identity.plan.IdentityPlan` to OpenBao (idempotent).

Each step runs with the identity whose job it is: mounts, SSH CAs and host certificates with
the system administrator's token, policies, users, groups, MFA and SSH grants with the security
administrator's. On the very first run only the initial root token exists: it creates the
administrators, and is revoked at the end of that run.

The automation identity (an AppRole, :class:`~security.identity.plan.AutomationPlan`) is
defined by the security administrator and its credentials issued by the system administrator to
the controller: ``state/secrets/identity/automation.json`` (0600), never in git.

The lab's people get generated passwords and (administrators) a TOTP enrolment, kept in
``state/secrets/identity/credentials.json`` (0600) so the tests and the lab can log in; a real
deployment gives those to their holders and deletes the file.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govcloud.errors import OperationError
from security.identity.plan import (
    EXTENSIONS,
    HOST_CERT_TTL,
    HOST_ROLE,
    SSH_HOST_MOUNT,
    SSH_USER_MOUNT,
    USERPASS,
    IdentityPlan,
    check_isolation,
)
from security.openbao.client import Bao, BaoError, BaoForbidden, BaoInvalid, BaoNotFound
from security.openbao.cluster import Paths, read_secret, write_secret
from security.pki.root import RootPaths
from security.pki.setup import ensure_pki

CREDENTIALS_WARNING = (
    "WARNING: lab credentials (passwords and TOTP secrets) of every govcloud identity. Give each "
    "to its holder and delete this file in any real deployment."
)
TOTP_METHOD_NAME = "govcloud-totp"
RENEW_SECRET_ID_BEFORE = 7 * 86400  # seconds left below which automation gets a new secret id


@dataclass
class Credentials:
    """The lab's passwords and TOTP secrets, one file, mode 0600."""

    paths: Paths
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: Paths) -> Credentials:
        data = read_secret(paths.credentials_file) or {}
        data.setdefault("users", {})
        return cls(paths, data)

    def save(self) -> None:
        self.data["warning"] = CREDENTIALS_WARNING
        write_secret(self.paths.credentials_file, self.data)

    def user(self, name: str) -> dict[str, Any]:
        users: dict[str, dict[str, Any]] = self.data["users"]
        return users.setdefault(name, {})

    def password(self, name: str) -> str:
        entry = self.user(name)
        if "password" not in entry:
            entry["password"] = secrets.token_urlsafe(18)
        return str(entry["password"])


@dataclass
class Actors:
    """Who applies what: the system and security administrators (the root token once)."""

    system: Bao
    security: Bao
    root: Bao | None = None


@dataclass
class ApplyReport:
    changed: list[str] = field(default_factory=list)
    user_ca: str = ""
    host_ca: str = ""
    root_revoked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "user_ca": self.user_ca,
            "host_ca": self.host_ca,
            "root_revoked": self.root_revoked,
        }


def apply_system(bao: Bao, plan: IdentityPlan, report: ApplyReport) -> None:
    mounts = bao.list_secrets_engines()
    for mount in plan.kv_mounts:
        if f"{mount}/" not in mounts:
            bao.enable_secrets_engine("kv", mount_point=mount, options={"version": "2"})
            report.changed.append(f"mount {mount} (kv v2)")
    for mount in (SSH_USER_MOUNT, SSH_HOST_MOUNT):
        if f"{mount}/" not in mounts:
            bao.enable_secrets_engine("ssh", mount_point=mount)
            report.changed.append(f"mount {mount} (ssh)")
    # user certificates live minutes (the role caps them); host certificates a month
    bao.tune_secrets_engine(mount_point=SSH_USER_MOUNT, max_lease_ttl=plan.ssh_max_ttl)
    bao.tune_secrets_engine(mount_point=SSH_HOST_MOUNT, max_lease_ttl="8760h")
    report.user_ca = bao.configure_ssh_ca(mount_point=SSH_USER_MOUNT)
    report.host_ca = bao.configure_ssh_ca(mount_point=SSH_HOST_MOUNT)
    principals = sorted({p for ps in plan.host_principals.values() for p in ps})
    bao.create_or_update_ssh_role(
        HOST_ROLE,
        mount_point=SSH_HOST_MOUNT,
        key_type="ca",
        allow_host_certificates=True,
        allow_bare_domains=True,
        allow_subdomains=False,
        allowed_domains=",".join(principals) or "localhost",
        ttl=HOST_CERT_TTL,
        max_ttl=HOST_CERT_TTL,
    )


#: how to get the root token a change of the administrators' or automation's policies needs
ROOT_TOKEN_HOWTO = (
    "generate one with the key holders' unseal shares (`bao operator generate-root`, "
    "authenticated as the system administrator, whose policy allows the ceremony from this "
    "version on; an older policy needs the listener's disable_unauthed_generate_root_endpoints "
    "= false for the ceremony), then run identity apply with it in GOVCLOUD_ROOT_TOKEN (it is "
    "revoked at the end)"
)


def apply_pki(bao: Bao, plan: IdentityPlan, paths: Paths, report: ApplyReport) -> None:
    """The service PKI's mount, intermediate and roles (:mod:`security.pki.setup`)."""
    if plan.pki is None:
        return
    try:
        report.changed += ensure_pki(bao, plan.pki, RootPaths.under(paths.root))
    except BaoForbidden as exc:
        raise OperationError(
            f"{exc}: the system administrators' policy predates the service PKI. Administrator "
            f"policies are written only with a root token (the security administrator may not "
            f"change them): {ROOT_TOKEN_HOWTO}"
        ) from exc


def apply_security(
    bao: Bao, plan: IdentityPlan, creds: Credentials, report: ApplyReport
) -> dict[str, str]:
    """Auth methods, policies, users, entities, groups, SSH grants, MFA. Returns entity ids."""
    problems = check_isolation(plan)
    if problems:
        raise OperationError("identity plan breaks department isolation: " + "; ".join(problems))
    auths = bao.list_auth_methods()
    for method in plan.auth_methods:
        if f"{method}/" not in auths:
            bao.enable_auth_method(method, mount_point=method)
            report.changed.append(f"auth {method}")
    bao.tune_auth_method(
        mount_point=USERPASS, default_lease_ttl=plan.token_ttl, max_lease_ttl=plan.token_ttl
    )
    # the automation's secret id lives for weeks: its mount may grant that much (the server's
    # own max_lease_ttl, a day, would cap it and identity apply would issue one every run);
    # the tokens it logs in to stay minutes (the role's token_max_ttl)
    automation = plan.automation
    if automation.mount in plan.auth_methods:
        bao.tune_auth_method(mount_point=automation.mount, max_lease_ttl=automation.secret_id_ttl)
    accessor = str(bao.list_auth_methods()[f"{USERPASS}/"]["accessor"])
    for name, policy in plan.policies.items():
        if bao.read_policy(name) != policy.hcl:
            try:
                bao.create_or_update_policy(name, policy.hcl)
            except BaoForbidden as exc:
                raise OperationError(
                    f"{exc}: policy {name} is new or changed. The administrators' and the "
                    "automation's policies are written only with a root token (the security "
                    f"administrator may not change them): {ROOT_TOKEN_HOWTO}"
                ) from exc
            report.changed.append(f"policy {name}")
    entity_ids: dict[str, str] = {}
    for name in plan.users:
        if bao.read_userpass_user(name, mount_point=USERPASS) is None:
            bao.create_or_update_userpass_user(
                name,
                creds.password(name),
                mount_point=USERPASS,
                token_ttl=plan.token_ttl,
                token_max_ttl=plan.token_ttl,
            )
            report.changed.append(f"user {name}")
        existing = bao.read_entity(name)
        if existing is None:
            entity_ids[name] = bao.create_or_update_entity(name, metadata={"govcloud": "true"})
            report.changed.append(f"entity {name}")
        else:
            entity_ids[name] = str(existing["id"])
        aliases = (existing or {}).get("aliases") or []
        if not any(a.get("mount_accessor") == accessor for a in aliases):
            bao.create_entity_alias(name, entity_ids[name], accessor)
    group_ids: dict[str, str] = {}
    for name, group in plan.groups.items():
        want = sorted(entity_ids[m] for m in group.members)
        current = bao.read_group(name)
        if (
            current is None
            or sorted(current.get("member_entity_ids") or []) != want
            or sorted(current.get("policies") or []) != sorted(group.policies)
        ):
            group_ids[name] = bao.create_or_update_group(
                name, type="internal", policies=list(group.policies), member_entity_ids=want
            )
            report.changed.append(f"group {name}")
        else:
            group_ids[name] = str(current["id"])
    for role in plan.ssh_roles.values():
        bao.create_or_update_ssh_role(
            role.name,
            mount_point=SSH_USER_MOUNT,
            key_type="ca",
            allow_user_certificates=True,
            allowed_users=role.principal,
            default_user=role.principal,
            allowed_extensions=",".join(EXTENSIONS),
            default_extensions=EXTENSIONS,
            ttl=plan.ssh_ttl,
            max_ttl=plan.ssh_max_ttl,
            key_id_format="{{token_display_name}}",
            algorithm_signer="default",
        )
    automation = plan.automation
    bao.create_or_update_ssh_role(
        automation.role, mount_point=SSH_USER_MOUNT, **automation.ssh_role_params()
    )
    if bao.read_approle_role(automation.role, mount_point=automation.mount) is None:
        report.changed.append(f"AppRole {automation.mount}/{automation.role}")
    bao.create_or_update_approle_role(
        automation.role, mount_point=automation.mount, **automation.approle_params()
    )
    if plan.mfa:
        _apply_mfa(bao, plan, creds, entity_ids, group_ids, report)
    return entity_ids


def apply_automation(bao: Bao, plan: IdentityPlan, paths: Paths, report: ApplyReport) -> bool:
    """The system administrator issues the automation identity's credentials to the
    controller (0600 in the state): kept while the role is the same and the secret id has a
    week (or a quarter of a shorter life) left, else a new secret id. Returns whether new
    ones were issued."""
    automation = plan.automation
    role_id = bao.read_approle_role_id(automation.role, mount_point=automation.mount)
    stored = read_secret(paths.automation_file) or {}
    left = float(stored.get("expires", 0)) - time.time()
    lifetime = float(stored.get("lifetime") or 0)
    # a week before the end; a quarter of its life for one issued shorter than four weeks
    renew_below = min(RENEW_SECRET_ID_BEFORE, lifetime / 4) if lifetime else RENEW_SECRET_ID_BEFORE
    if stored.get("role_id") == role_id and stored.get("secret_id") and left > renew_below:
        return False
    issued = bao.generate_approle_secret_id(
        automation.role,
        mount_point=automation.mount,
        metadata='{"issued_to": "govcloud controller"}',
    )
    ttl = int(issued.get("secret_id_ttl") or 0)
    write_secret(
        paths.automation_file,
        {
            "mount": automation.mount,
            "role": automation.role,
            "role_id": role_id,
            "secret_id": issued["secret_id"],
            "secret_id_accessor": issued.get("secret_id_accessor"),
            "expires": time.time() + ttl if ttl else 2**40,
            "lifetime": ttl or None,
        },
    )
    report.changed.append(f"automation credentials ({automation.mount}/{automation.role})")
    return True


def _apply_mfa(
    bao: Bao,
    plan: IdentityPlan,
    creds: Credentials,
    entity_ids: dict[str, str],
    group_ids: dict[str, str],
    report: ApplyReport,
) -> None:
    methods = [m for m in bao.list_totp_methods() if m.get("issuer") == "govcloud"]
    if methods:
        method_id = str(methods[0]["id"])
    else:
        method_id = bao.create_totp_method(
            method_name=TOTP_METHOD_NAME,
            issuer="govcloud",
            period=30,
            digits=6,
            algorithm="SHA1",
            key_size=20,
        )
        report.changed.append("MFA method TOTP")
    admin_groups = [group_ids[n] for n, g in plan.groups.items() if g.admin]
    bao.create_or_update_mfa_enforcement(
        "govcloud-admins", mfa_method_ids=[method_id], identity_group_ids=admin_groups
    )
    for name, user in plan.users.items():
        if not user.mfa:
            continue
        entry = creds.user(name)
        if entry.get("totp_method") == method_id and entry.get("totp_secret"):
            continue
        try:
            entry["totp_secret"] = bao.generate_totp_secret(method_id, entity_ids[name])
        except BaoInvalid:  # enrolled before, secret lost: enrol again
            bao.destroy_totp_secret(method_id, entity_ids[name])
            entry["totp_secret"] = bao.generate_totp_secret(method_id, entity_ids[name])
        entry["totp_method"] = method_id
        creds.save()
        report.changed.append(f"TOTP enrolment {name}")


def apply(
    actors: Actors,
    plan: IdentityPlan,
    creds: Credentials,
    say: Callable[[str], None] = lambda _m: None,
) -> ApplyReport:
    report = ApplyReport()
    say("system administrator: mounts and SSH CAs")
    apply_system(actors.system, plan, report)
    say("security administrator: auth, policies, users, groups, SSH grants, MFA")
    apply_security(actors.security, plan, creds, report)
    say("system administrator: the automation identity's credentials for the controller")
    apply_automation(actors.system, plan, creds.paths, report)
    if plan.pki is not None:
        say("system administrator: the service PKI (intermediate below the offline root)")
        apply_pki(actors.system, plan, creds.paths, report)
    creds.save()
    return report


def revoke_root(root: Bao, paths: Paths) -> bool:
    """Revoke the initial root token and record it in the init file."""
    init = read_secret(paths.init_file) or {}
    if init.get("root_token_revoked"):
        return False
    try:
        root.revoke_token()
    except (BaoNotFound, BaoError) as exc:
        if "permission denied" not in str(exc) and "not authenticated" not in str(exc):
            raise
    init["root_token_revoked"] = True
    init["root_token"] = None
    write_secret(paths.init_file, init)
    return True
