"""`govcloud hosts apply`: the site playbook over the plan's inventory, through the bastion.

Prepares what the run needs (the plan's files, the one ssh_config, the runtime inventory with
each host's ruleset and the role variables derived from the plan) and runs ``site.yml`` with the
project's ansible-runner wrapper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govcloud.errors import OperationError
from govcloud.paths import state_dir
from govcloud.spec.model import Spec
from infra.hosts.digests import digest, playbook_digest
from infra.hosts.runner import Connection, RunResult, run_playbook
from infra.inventory import ADMIN_USER, InvHost, ansible_inventory
from infra.plan import Plan, make_plan, read_previous, write_plan
from security.access import ssh_config


@dataclass(frozen=True)
class Target:
    plan: Plan
    plan_dir: Path
    inventory: dict[str, Any]
    connection: Connection


def lab_credentials() -> ssh_config.Credentials:
    """The lab's own key, for the administrator account, until identity signs certificates."""
    from infra.lab.state import LabPaths

    return ssh_config.Credentials(ADMIN_USER, LabPaths.default().ssh_key)


def runtime_inventory(plan: Plan, plan_dir: Path) -> dict[str, Any]:
    """The plan's inventory plus what the roles need from the plan."""
    inv = ansible_inventory(plan.spec, plan.hosts)
    loghost = next((h.address for h in plan.hosts if h.role == "log"), "")
    groups = inv["all"]["children"]
    inv["all"]["vars"].update(
        {
            "baseline_admin_user": ADMIN_USER,
            "baseline_ntp_servers": [loghost] if loghost else [],
        }
    )
    for group, members in groups.items():
        for name, hostvars in members["hosts"].items():
            ruleset = name if group == "router" else f"role-{hostvars['govcloud_role']}"
            path = plan_dir / "nftables" / f"{ruleset}.nft"
            if path.is_file():
                hostvars["firewall_ruleset_file"] = str(path)
    if "compute" in groups:  # Kubernetes nodes: kube-proxy and kube-router keep their own tables
        groups["compute"].setdefault("vars", {})["firewall_own_table_only"] = True
    if "bastion" in groups:
        groups["bastion"].setdefault("vars", {})["baseline_ssh_allow_tcp_forwarding"] = "local"
    add_converged_inputs(inv)
    _log_vars(plan, inv)  # certificates come and renew after a site run: not site's inputs
    _hall_groups(plan, plan_dir, groups)  # hall.yml's own inputs, not site.yml's
    return inv


def _log_vars(plan: Plan, inv: dict[str, Any]) -> None:
    """Log shipping over TLS (roles logship and loghost, in site.yml and logs.yml): every host
    sends to the log host with its own certificate from the PKI, which the log host asks for;
    the log host keeps its own logs. Until a host's certificate is issued (the automation
    identity does it after identity apply), the roles configure no shipping at all."""
    from security.pki.hostcerts import LOG, LOG_ROLE, cert_dir, log_certs, log_peers
    from security.pki.root import RootPaths

    certs = {c.host: c for c in log_certs(plan.spec, plan.hosts)}
    host = next((h for h in plan.hosts if h.role == LOG_ROLE), None)
    if host is None:
        return
    log = certs[host.name]
    inv["all"]["vars"].update(
        {
            "logship_loghost": log.address,
            "logship_loghost_name": log.stem,
            "logship_tls_src_dir": str(cert_dir(LOG)),
            "logship_ca_file": str(RootPaths.default().cert),
            "loghost_tls_peers": log_peers(plan.spec),
        }
    )
    for members in inv["all"]["children"].values():
        for name, hostvars in members["hosts"].items():
            if name in certs:
                hostvars["logship_tls_name"] = certs[name].stem
            if name == log.host:
                hostvars["logship_loghost"] = ""  # the log host keeps its own logs
                hostvars["loghost_tls_name"] = log.stem


def _hall_groups(plan: Plan, plan_dir: Path, groups: dict[str, Any]) -> None:
    """The hall's edge (group hall) forwards to its node port on every node; its database host
    (group hall_db, from the tenant's reached hosts) is seeded from the spec and lets the nodes
    log in, and the storage hosts (group hall_backup) back it up."""
    from clusters.hallsite import hall_site

    site = hall_site(plan.spec)
    if site is None:
        return
    nodes = [h.address for h in plan.hosts if h.role == "compute"]
    if "hall" in groups:
        from security.pki.hostcerts import edge_certs, edge_dir, service_name
        from security.pki.root import RootPaths

        groups["hall"].setdefault("vars", {}).update(
            {
                "hall_upstreams": [f"{a}:{site.node_port}" for a in nodes],
                "hall_upstream_tls_name": service_name(plan.spec, "hall", site.department),
                "hall_tls_src_dir": str(edge_dir()),
                "hall_tls_ca_file": str(RootPaths.default().cert),
            }
        )
        for cert in edge_certs(plan.spec, plan.hosts):  # each edge its own key
            groups["hall"]["hosts"][cert.host]["hall_tls_name"] = cert.stem
    db = next((h for h in plan.hosts if h.name == site.database_host), None)
    if db is None:
        return
    from security.pki.hostcerts import DATABASE, cert_dir, database_certs
    from security.pki.root import RootPaths

    storage = [h for h in plan.hosts if h.role == "storage"]
    root_ca = str(RootPaths.default().cert)
    groups["hall_db"] = {
        "hosts": {db.name: {}},  # its connection variables are in its role's group
        "vars": {
            "hall_db_seed_plan_file": str(plan_dir / HALL_SEED_PLAN),
            "hall_db_secrets_dir": str(hall_secrets_dir()),
            "hall_db_clients": [f"{a}/32" for a in nodes],
            "hall_db_backup_clients": [f"{h.address}/32" for h in storage],
            "hall_db_tls_src_dir": str(cert_dir(DATABASE)),
            "hall_db_tls_name": database_certs(plan.spec, plan.hosts)[0].stem,
            "hall_db_tls_ca_file": root_ca,
        },
    }
    if storage:  # the storage hosts take the database's backups on the spec's schedule
        backups = plan.spec.datacenter.backups
        groups["hall_backup"] = {
            "hosts": {h.name: {} for h in storage},
            "vars": {
                "hall_backup_db_host": db.address,
                "hall_backup_secrets_dir": str(hall_secrets_dir()),
                "hall_backup_every_hours": backups.every_hours,
                "hall_backup_keep": backups.keep,
                "hall_backup_ca_file": root_ca,  # the database's certificate chains to it
            },
        }


def before_play(
    playbook: str, target: Target, *, check: bool = False, say: Callable[[str], None] = print
) -> None:
    """What a play needs on the controller before it runs: the host certificates its roles
    install, issued by the automation identity when missing or due (in check mode only said,
    so a refresh that finds one due shows the play as drift). The hall play: the edge's and
    the hall database's. A play that ships logs (role logship): every host's for its logs;
    the site play, which also runs before the identity system exists, goes on without them
    (shipping starts with the logs play) when there is no automation identity yet or OpenBao
    cannot issue."""
    from infra.hosts.digests import roles_of
    from security.pki import hostcerts

    roles = roles_of(playbook)
    uses = [
        *((hostcerts.EDGE, hostcerts.DATABASE) if "hall" in roles else ()),
        *((hostcerts.LOG,) if "logship" in roles else ()),
    ]
    if not uses:
        return
    hosts = target.plan.hosts
    optional = playbook == "site.yml"  # runs before the identity system exists
    if optional and not _automation_ready():
        say("log certificates: no automation identity yet; the logs play ships them later")
        return
    login = hostcerts.automation_login(hosts)
    try:
        results = hostcerts.ensure(target.plan.spec, hosts, login, dry_run=check, uses=uses)
    except OperationError as exc:
        if not optional:
            raise
        say(f"log certificates not issued ({exc}); the hosts keep the ones they have")
        return
    for r in results:
        if r.action != "good":
            say(f"{r.use} certificate {r.stem} of {r.host}: {r.action} ({r.reason})")


def _automation_ready() -> bool:
    from security.openbao.cluster import Paths

    return Paths.default().automation_file.is_file()


def add_converged_inputs(inv: dict[str, Any]) -> None:
    """Give each host ``converged_inputs``: a digest of what site.yml would apply to it (the
    playbook and its roles, the host's variables, the files they name). The converged role
    leaves a host alone only while this is what its last full run recorded. Files on the
    controller count by what they hold, not where they are (``*_file`` by content, ``*_dir``
    left out), so the same plan from another state directory is the same input."""
    site = playbook_digest("site.yml")
    for group, members in inv["all"]["children"].items():
        for hostvars in members["hosts"].values():
            effective = {**inv["all"]["vars"], **members.get("vars", {}), **hostvars}
            values = {
                k: _content(v) if k.endswith("_file") else v
                for k, v in effective.items()
                if not k.endswith("_dir") and k != "converged_inputs"
            }
            hostvars["converged_inputs"] = digest([site, group, values])


def _content(path: Any) -> str | None:
    p = Path(path) if isinstance(path, str) and path else None
    return p.read_text(encoding="utf-8") if p and p.is_file() else None


HALL_SEED_PLAN = "hall-seed-plan.json"


def hall_secrets_dir() -> Path:
    """Where hall.yml generates the halls' admin, metrics and database secrets (0700, files
    0600, on the controller only; ``state/`` is kept out of git)."""
    return state_dir() / "secrets" / "hall"


def write_hall_seed_plan(plan: Plan, plan_dir: Path) -> None:
    """The halls' catalog seed plan (sites, departments, guide counts) from the spec."""
    import json

    from clusters.hallseed import seed_plan

    text = json.dumps(seed_plan(plan.spec), ensure_ascii=False, sort_keys=True)
    path = plan_dir / HALL_SEED_PLAN
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)


def forget_replaced_lab_hosts(plan: Plan) -> None:
    """A lab host re-created by ``lab up`` has a new host key: its old known_hosts entry would
    make SSH refuse it (and every host reached through it, if it is the bastion). Entries of
    lab hosts whose key is no longer the one lab up generated are dropped; the host CA's line
    and every other entry stay."""
    from infra.lab.lab import Lab

    layout = ssh_config.Layout.default()
    if not layout.known_hosts.is_file():
        return
    lab = Lab(plan.spec.name)
    current = {h.address: k for h in plan.hosts if (k := lab.host_key(h.name)) is not None}
    if not current:  # not a lab (or not up): known_hosts is left as it is
        return
    kept = []
    for line in layout.known_hosts.read_text().splitlines():
        names, _, key = line.partition(" ")
        addresses = set(names.split(",")) & set(current)
        if addresses and not line.startswith("@") and all(current[a] != key for a in addresses):
            continue  # a lab host's old key
        kept.append(line)
    text = "".join(k + "\n" for k in kept)
    if text != layout.known_hosts.read_text():
        layout.known_hosts.write_text(text)


def prepare(spec: Spec, creds: ssh_config.Credentials, *, tuned: bool = True) -> Target:
    """The plan's files, the ssh_config and the inventory. ``creds`` is the break-glass login
    (the provisioning key): the run logs in with the automation certificate instead once the
    identity system gives one (:func:`security.access.automation.login_credentials`)."""
    from security.access.automation import login_credentials

    plan_dir = state_dir() / "plan"
    plan = make_plan(spec, read_previous(plan_dir))
    write_plan(plan, plan_dir)
    if any(h.role == "hall" for h in plan.hosts):
        write_hall_seed_plan(plan, plan_dir)
    forget_replaced_lab_hosts(plan)
    creds = login_credentials(creds, plan.hosts)
    config = ssh_config.write(plan.hosts, creds)
    inventory = runtime_inventory(plan, plan_dir)
    connection = Connection(
        config,
        creds.user,
        tuned=tuned,
        identity_file=creds.identity_file,
        certificate=creds.certificate,
    )
    return Target(plan, plan_dir, inventory, connection)


def silent_bastion(hosts: list[InvHost], *, port: int = 22, timeout: float = 3.0) -> str | None:
    """The bastion's name when no SSH server answers on it (every other host is reached
    through it, so none can be), else None. Seconds, where Ansible would wait out a connection
    timeout for every host. An accepted connection is not enough (a middlebox may accept it):
    the server's banner must come."""
    import socket

    bastion = next((h for h in hosts if h.role == "bastion"), None)
    if bastion is None:
        return None
    try:
        with socket.create_connection((bastion.address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            banner = conn.recv(4)
    except OSError:
        return bastion.name
    return None if banner == b"SSH-" else bastion.name


def apply(
    target: Target,
    *,
    limit: str | None = None,
    check: bool = False,
    full: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """site.yml on the target's hosts; ``full``: every role on every host, even those whose
    managed state is what the last full run left."""
    return run_playbook(
        "site.yml",
        target.inventory,
        target.connection,
        limit=limit,
        check=check,
        extravars={"converged_full": True} if full else None,
        progress=progress,
    )
