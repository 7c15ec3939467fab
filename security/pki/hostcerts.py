"""The hosts' own TLS certificates: the edge's, the hall database's and every host's for its logs,
issued by the automation identity.

- **Edge**: each hall host of the internet-access zone serves the halls' public names over
  HTTPS with a key of its own (a stolen edge key is one host's, revoked alone). Its certificate
  carries first the host's own name under the first of ``tls.edge.allowed_domains``
  (``hall-1.zwfw.guizhou.gov.cn``: its common name and file stem, the name a monitor or a load
  test uses to reach that one edge), then every hall's public name (``hall.server_name``),
  which citizens use. From the PKI's ``edge`` role.
- **Database**: the hall's PostgreSQL on its department's host serves TLS only; its certificate
  carries the host's name under the first of ``tls.internal.allowed_domains``
  (``dsjj-vm-1.govcloud.local``) and its address, which is what the hall's pods and the backup
  hosts connect to and verify (``verify-full``). From the PKI's ``internal`` role.
- **Logs**: every host ships its logs to the management zone's log host over TLS (RFC 5425),
  both ends showing a certificate: the sender's carries its own name under the first of
  ``tls.internal.allowed_domains`` (``web-1.govcloud.local``), which the log host permits; the
  log host's also carries its address, which senders connect to. From the PKI's ``internal``
  role (server and client use), kept apart from the database's (``state/pki/log``).
- **Services on the cloud**: the hall's pods serve HTTPS to the edge, which forwards citizens
  from the internet-access zone into the cloud and verifies the pods' certificate by the
  service's name, ``<app>.<department>.<first internal domain>`` (``hall.dsjj.govcloud.local``).
  One certificate per app (every replica the same), delivered through the department's OpenBao
  path into the app's Secret; its "host" is the app. From the PKI's ``internal`` role.

The automation identity's AppRole may issue from these two roles and nothing else of the PKI, so
each issue is in OpenBao's audit log under the automation's token. :func:`ensure` issues what is
missing, what no longer carries the spec's names, and what is due for renewal
(``tls.renew_before``); it asks OpenBao nothing when all are good. The hall play then copies them
and the server reloads (nginx and PostgreSQL drop no connection on a reload).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govcloud.errors import InputError, OperationError, Problem
from govcloud.spec.model import Spec
from security.openbao.client import Bao, BaoError
from security.pki.certs import Issued, check_request, issue, managed, why_renew
from security.pki.plan import EDGE_ROLE, INTERNAL_ROLE, PkiPlan, make_pki_plan

HALL_ROLE = "hall"
EDGE, DATABASE, LOG, SERVICE = "edge", "database", "log", "service"  # each its own directory
LOG_ROLE = "log"  # the plan's role of the log host


@dataclass(frozen=True)
class HostCert:
    """What one host's certificate for one use must carry."""

    host: str
    address: str
    use: str  # EDGE, DATABASE, LOG or SERVICE
    role: str  # the PKI role it is issued from
    names: tuple[str, ...]  # names[0]: the host's own name, the certificate's file stem
    ips: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        return self.names[0]


def host_name(spec: Spec, host: str) -> str:
    """A hall host's own public name: ``<host>.<first edge domain>``."""
    return f"{host}.{spec.tls.edge.allowed_domains[0]}"


def _checked(plan: PkiPlan, role: str, names: tuple[str, ...], field: str, what: str) -> None:
    """Refuse at planning what OpenBao would refuse, naming the spec's field."""
    try:
        check_request(plan, role, list(names), None)
    except InputError as exc:
        raise InputError([Problem(field, f"{what}: {exc}")]) from exc


def edge_certs(spec: Spec, hosts: Sequence[Any]) -> list[HostCert]:
    """One certificate per hall host (``hosts``: the plan's, with name, role, address)."""
    plan = make_pki_plan(spec)
    out = []
    for h in hosts:
        if h.role != HALL_ROLE:
            continue
        own = host_name(spec, h.name)
        names = tuple(dict.fromkeys([own, *plan.edge_names]))
        _checked(plan, EDGE_ROLE, names, "tls.edge.allowed_domains", f"the edge of {h.name}")
        out.append(HostCert(h.name, h.address, EDGE, EDGE_ROLE, names))
    return out


def database_certs(spec: Spec, hosts: Sequence[Any]) -> list[HostCert]:
    """The hall database's server certificate (none when the spec puts no hall on a cloud)."""
    from clusters.hallsite import hall_site

    site = hall_site(spec)
    db = next((h for h in hosts if site and h.name == site.database_host), None)
    if db is None:
        return []
    plan = make_pki_plan(spec)
    names = (internal_name(spec, db.name),)
    _checked(
        plan, INTERNAL_ROLE, names, "tls.internal.allowed_domains", f"the database on {db.name}"
    )
    return [HostCert(db.name, db.address, DATABASE, INTERNAL_ROLE, names, (db.address,))]


def internal_name(spec: Spec, host: str) -> str:
    """A host's name inside the data center: ``<host>.<first internal domain>``."""
    return f"{host}.{spec.tls.internal.allowed_domains[0]}"


def log_certs(spec: Spec, hosts: Sequence[Any]) -> list[HostCert]:
    """Every host's certificate for shipping its logs (none when the plan has no log host);
    the log host's own carries its address too."""
    if not any(h.role == LOG_ROLE for h in hosts):
        return []
    plan = make_pki_plan(spec)
    out = []
    for h in hosts:
        names = (internal_name(spec, h.name),)
        _checked(
            plan, INTERNAL_ROLE, names, "tls.internal.allowed_domains", f"the logs of {h.name}"
        )
        ips = (h.address,) if h.role == LOG_ROLE else ()
        out.append(HostCert(h.name, h.address, LOG, INTERNAL_ROLE, names, ips))
    return out


def log_peers(spec: Spec) -> list[str]:
    """The names the log host lets ship to it: any host under the internal domains."""
    return [f"*.{d}" for d in spec.tls.internal.allowed_domains]


def service_name(spec: Spec, app: str, department: str) -> str:
    """An app's name inside the cloud: ``<app>.<department>.<first internal domain>``."""
    return f"{app}.{department}.{spec.tls.internal.allowed_domains[0]}"


def service_certs(spec: Spec, hosts: Sequence[Any]) -> list[HostCert]:
    """The hall app's serving certificate (none when the spec puts no hall on a cloud)."""
    from clusters.hallsite import hall_site

    site = hall_site(spec)
    if site is None:
        return []
    plan = make_pki_plan(spec)
    names = (service_name(spec, "hall", site.department),)
    _checked(plan, INTERNAL_ROLE, names, "tls.internal.allowed_domains", "the hall's pods")
    return [HostCert("hall", "", SERVICE, INTERNAL_ROLE, names)]


USES = (EDGE, DATABASE, LOG, SERVICE)


def host_certs(spec: Spec, hosts: Sequence[Any], uses: Sequence[str] = USES) -> list[HostCert]:
    """Every host certificate the spec asks for, of the ``uses`` given: the edge's, the
    database's, the logs', the services'."""
    made = {EDGE: edge_certs, DATABASE: database_certs, LOG: log_certs, SERVICE: service_certs}
    return [c for use in USES if use in uses for c in made[use](spec, hosts)]


def cert_dir(use: str) -> Path:
    """Where one use's certificates are kept on the controller (keys 0600, under the state)."""
    from govcloud.paths import state_dir

    return state_dir() / "pki" / use


def edge_dir() -> Path:
    return cert_dir(EDGE)


@dataclass
class HostResult:
    host: str
    use: str
    stem: str
    action: str  # "good", "issued" or "due" (a dry run)
    reason: str
    issued: Issued | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "use": self.use,
            "name": self.stem,
            "action": self.action,
            "reason": self.reason,
            "serial": self.issued.serial if self.issued else None,
            "not_after": self.issued.not_after if self.issued else None,
        }


def why_issue(directory: Path, cert: HostCert, plan: PkiPlan, now: dt.datetime) -> str:
    """Why ``cert`` must be issued (again), or "" when the one in ``directory`` is good."""
    meta = next((m for m in managed(directory) if m["name"] == cert.stem), None)
    if meta is None:
        return "none yet"
    if tuple(meta["names"]) != cert.names:
        return "the spec's hall names changed"
    if tuple(meta.get("ip_sans") or ()) != cert.ips:
        return "the host's address changed"
    return why_renew(directory, meta, plan.renew_before, now)


def ensure(
    spec: Spec,
    hosts: Sequence[Any],
    login: Callable[[], Bao],
    *,
    root: Path | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    uses: Sequence[str] = USES,
) -> list[HostResult]:
    """Issue every host certificate of ``uses`` that is missing, stale or due, each use into
    ``<root>/<use>`` (the state's ``pki`` directory by default); ``login`` (called once, and
    only when one is due) gives the client that issues them (the automation identity)."""
    plan = make_pki_plan(spec)
    now = now or dt.datetime.now(dt.UTC)
    wanted = host_certs(spec, hosts, uses)

    def where(cert: HostCert) -> Path:
        return root / cert.use if root is not None else cert_dir(cert.use)

    results = []
    for cert in wanted:
        reason = why_issue(where(cert), cert, plan, now)
        results.append(
            HostResult(cert.host, cert.use, cert.stem, "due" if reason else "good", reason)
        )
    due = [(c, r) for c, r in zip(wanted, results, strict=True) if r.action == "due"]
    if not due or dry_run:
        return results
    bao = login()
    try:
        for cert, r in due:
            try:
                r.issued = issue(
                    bao, plan, cert.role, list(cert.names), where(cert), ip_sans=list(cert.ips)
                )
            except BaoError as exc:
                raise OperationError(
                    f"the {cert.use} certificate of {r.host} ({r.stem}): OpenBao refused: {exc}"
                ) from exc
            r.action = "issued"
    finally:
        with contextlib.suppress(BaoError):
            bao.revoke_token()
    return results


def automation_login(hosts: Sequence[Any]) -> Callable[[], Bao]:
    """Log in as the automation identity (AppRole credentials on the controller)."""
    from security.access.automation import approle_login
    from security.identity.plan import AutomationPlan
    from security.openbao import cluster

    paths = cluster.Paths.default()
    return lambda: approle_login(
        lambda: cluster.connect(list(hosts), paths), paths, AutomationPlan()
    )
