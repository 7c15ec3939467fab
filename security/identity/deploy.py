"""`govcloud identity apply`: the whole identity system, from the spec, in order.

1. identity.yml: OpenBao on the identity hosts; every host's public host key fetched;
2. init (once), unseal, join;
3. the identity plan applied (system, then security administrator; root only the first time);
4. every host key signed by the host CA; bastion.yml: trust only the user CA, host certificates,
   principals per account, session logging;
5. the root token revoked once the administrators can log in;
6. the ssh_config and known_hosts (``@cert-authority``) written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govcloud.errors import OperationError
from govcloud.spec.model import Spec
from infra.hosts.apply import Target, lab_credentials, prepare
from infra.hosts.runner import RunResult, retry_unreachable, run_playbook
from infra.inventory import InvHost
from security.access import certs, ssh_config
from security.identity import apply as identity_apply
from security.identity.plan import (
    AUDIT_ACCOUNT,
    HOST_ROLE,
    SSH_HOST_MOUNT,
    IdentityPlan,
    make_identity_plan,
)
from security.identity.session import login
from security.openbao import cluster
from security.openbao.client import Bao
from security.openbao.cluster import Paths, read_secret
from security.openbao.install import install

RENEW_HOST_CERT_BEFORE = 7 * 86400  # seconds of validity left below which a host is re-signed


@dataclass
class DeployReport:
    runs: list[RunResult] = field(default_factory=list)
    cluster: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    host_certificates: int = 0
    root_revoked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.as_dict() for r in self.runs],
            "cluster": self.cluster,
            "identity": self.identity,
            "host_certificates": self.host_certificates,
            "root_revoked": self.root_revoked,
        }


def _check(run: RunResult) -> None:
    if not run.ok:
        detail = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in run.failures[:5])
        raise OperationError(f"{run.playbook} failed: {detail or run.status}")


ROOT_TOKEN_ENV = "GOVCLOUD_ROOT_TOKEN"  # a root token generated for one apply (then revoked)


def actors(plan: IdentityPlan, hosts: list[InvHost], paths: Paths) -> identity_apply.Actors:
    """The root token while it exists (or one generated for this run and given in
    ``$GOVCLOUD_ROOT_TOKEN``), else the first system and security administrators."""
    init = read_secret(paths.init_file) or {}
    root_token = None if init.get("root_token_revoked") else init.get("root_token")
    root_token = root_token or os.environ.get(ROOT_TOKEN_ENV)
    if root_token:
        root = cluster.connect(hosts, paths, root_token)
        return identity_apply.Actors(root, root, root)
    system = next(n for n, g in plan.groups.items() if g.admin and "system" in n)
    security = next(n for n, g in plan.groups.items() if g.admin and "security" in n)
    return identity_apply.Actors(
        login(plan.groups[system].members[0], hosts, paths),
        login(plan.groups[security].members[0], hosts, paths),
    )


def sign_host_keys(bao: Bao, plan: IdentityPlan, paths: Paths) -> int:
    """Sign every fetched host key (principals: the host's name and address)."""
    paths.host_certs.mkdir(parents=True, exist_ok=True)
    signed = 0
    for host, principals in plan.host_principals.items():
        pub = paths.host_keys / f"{host}.pub"
        if not pub.is_file():
            continue
        current = paths.host_certs / f"{host}-cert.pub"
        if (
            certs.same_key(current, pub)
            and certs.cert_valid_before(current) - time.time() > RENEW_HOST_CERT_BEFORE
        ):
            continue  # still good: keep it (a second apply changes nothing)
        cert = bao.sign_ssh_key(
            HOST_ROLE,
            pub.read_text().strip(),
            mount_point=SSH_HOST_MOUNT,
            cert_type="host",
            valid_principals=",".join(principals),
        )
        (paths.host_certs / f"{host}-cert.pub").write_text(cert + "\n")
        signed += 1
    return signed


def bastion_inventory(
    target: Target, plan: IdentityPlan, paths: Paths, user_ca: str
) -> dict[str, Any]:
    inv: dict[str, Any] = {"all": dict(target.inventory["all"])}
    inv["all"]["vars"] = dict(inv["all"]["vars"], bastion_user_ca_key=user_ca)
    for members in inv["all"]["children"].values():
        for name, hostvars in members["hosts"].items():
            cert = paths.host_certs / f"{name}-cert.pub"
            hostvars["bastion_host_certificate_src"] = str(cert) if cert.is_file() else ""
            accounts = plan.host_accounts.get(name, {})
            hostvars["bastion_accounts"] = [
                {
                    "name": account,
                    "principals": principals,
                    "groups": _account_groups(account, hostvars.get("govcloud_role", "")),
                }
                for account, principals in accounts.items()
            ]
    return inv


def _account_groups(account: str, role: str) -> list[str]:
    if account != AUDIT_ACCOUNT:
        return []
    return {"identity": ["openbao-audit"], "log": ["adm"]}.get(role, [])


def host_ca_line(host_ca: str) -> str:
    return f"@cert-authority * {host_ca}"


def write_client_files(
    plan: IdentityPlan, hosts: list[InvHost], paths: Paths, host_ca: str
) -> None:
    """known_hosts: the host CA (OpenSSH) and the signed host keys pinned (paramiko/fabric,
    which do not verify host certificates); the ssh_config with strict host checking."""
    layout = ssh_config.Layout.default()
    layout.root.mkdir(parents=True, exist_ok=True)
    ssh_config.write_known_hosts(
        layout, host_ca_line(host_ca), ssh_config.pinned_keys(hosts, paths.host_keys)
    )


def deploy(
    spec: Spec,
    say: Callable[[str], None] = lambda _m: None,
    *,
    admin: ssh_config.Credentials | None = None,
) -> DeployReport:
    """The whole procedure; ``admin``: the administrator's account and key on the hosts
    (default: the lab's own)."""
    paths = Paths.default()
    report = DeployReport()
    target = prepare(spec, admin or lab_credentials())
    hosts = target.plan.hosts
    say("identity.yml: OpenBao servers, host keys")
    run = install(target, paths, progress=say)
    run = retry_unreachable(run, lambda limit: install(target, paths, say, limit=limit))
    report.runs.append(run)
    _check(run)
    say("initialise / unseal / join")
    report.cluster = cluster.bootstrap(hosts, paths, say)
    plan = make_identity_plan(spec, hosts)
    creds = identity_apply.Credentials.load(paths)
    who = actors(plan, hosts, paths)
    result = identity_apply.apply(who, plan, creds, say)
    report.identity = result.as_dict()
    say("signing host keys")
    report.host_certificates = sign_host_keys(who.system, plan, paths)
    say("bastion.yml: trust only the CA, host certificates, principals, session log")
    inventory = bastion_inventory(target, plan, paths, result.user_ca)

    def bastion(limit: str | None = None) -> RunResult:
        return run_playbook("bastion.yml", inventory, target.connection, progress=say, limit=limit)

    run = retry_unreachable(bastion(), bastion)
    report.runs.append(run)
    _check(run)
    if who.root is not None:
        system = next(n for n, g in plan.groups.items() if g.admin and "system" in n)
        login(plan.groups[system].members[0], hosts, paths)  # the administrators can log in
        report.root_revoked = identity_apply.revoke_root(who.root, paths)
        if not report.root_revoked and os.environ.get(ROOT_TOKEN_ENV):
            who.root.revoke_token()  # the one generated for this run
            report.root_revoked = True
    write_client_files(plan, hosts, paths, result.host_ca)
    return report
