"""The edge's TLS certificates: one per hall host, issued by the automation identity.

Each hall host of the internet-access zone serves the halls' public names over HTTPS with a key
of its own (a stolen edge key is one host's, revoked alone). Its certificate carries

- first, the host's own name under the first of ``tls.edge.allowed_domains``
  (``hall-1.zwfw.guizhou.gov.cn``): its common name and file stem, the name a monitor or a load
  test uses to reach that one edge;
- then every hall's public name (``hall.server_name`` in the spec), which citizens use.

They are issued from the service PKI's ``edge`` role by the automation identity (its AppRole
may issue from that role and nothing else of the PKI), so each issue is in OpenBao's audit log
under the automation's token. :func:`ensure` issues what is missing, what no longer carries the
spec's names, and what is due for renewal (``tls.renew_before``); it asks OpenBao nothing when
all are good. The hall play then copies them and nginx reloads (no connection dropped).
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
from security.pki.plan import EDGE_ROLE, PkiPlan, make_pki_plan

HALL_ROLE = "hall"


@dataclass(frozen=True)
class EdgeCert:
    """What one hall host's certificate must carry."""

    host: str
    address: str
    names: tuple[str, ...]  # names[0]: the host's own name, the certificate's file stem

    @property
    def stem(self) -> str:
        return self.names[0]


def host_name(spec: Spec, host: str) -> str:
    """A hall host's own public name: ``<host>.<first edge domain>``."""
    return f"{host}.{spec.tls.edge.allowed_domains[0]}"


def edge_certs(spec: Spec, hosts: Sequence[Any]) -> list[EdgeCert]:
    """One certificate per hall host (``hosts``: the plan's, with name, role, address)."""
    plan = make_pki_plan(spec)
    out = []
    for h in hosts:
        if h.role != HALL_ROLE:
            continue
        own = host_name(spec, h.name)
        names = tuple(dict.fromkeys([own, *plan.edge_names]))
        try:
            check_request(plan, EDGE_ROLE, list(names), None)
        except InputError as exc:
            raise InputError(
                [Problem("tls.edge.allowed_domains", f"the edge of {h.name}: {exc}")]
            ) from exc
        out.append(EdgeCert(h.name, h.address, names))
    return out


def edge_dir() -> Path:
    """Where the edge's certificates are kept on the controller (keys 0600, under the state)."""
    from govcloud.paths import state_dir

    return state_dir() / "pki" / "edge"


@dataclass
class EdgeResult:
    host: str
    stem: str
    action: str  # "good", "issued" or "due" (a dry run)
    reason: str
    issued: Issued | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "name": self.stem,
            "action": self.action,
            "reason": self.reason,
            "serial": self.issued.serial if self.issued else None,
            "not_after": self.issued.not_after if self.issued else None,
        }


def why_issue(directory: Path, cert: EdgeCert, plan: PkiPlan, now: dt.datetime) -> str:
    """Why ``cert`` must be issued (again), or "" when the one on disk is good."""
    meta = next((m for m in managed(directory) if m["name"] == cert.stem), None)
    if meta is None:
        return "none yet"
    if tuple(meta["names"]) != cert.names:
        return "the spec's hall names changed"
    return why_renew(directory, meta, plan.renew_before, now)


def ensure(
    spec: Spec,
    hosts: Sequence[Any],
    login: Callable[[], Bao],
    *,
    directory: Path | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> list[EdgeResult]:
    """Issue every edge certificate that is missing, stale or due; ``login`` (called once, and
    only when one is) gives the client that issues them (the automation identity)."""
    plan = make_pki_plan(spec)
    where = directory or edge_dir()
    now = now or dt.datetime.now(dt.UTC)
    wanted = edge_certs(spec, hosts)
    results = []
    for cert in wanted:
        reason = why_issue(where, cert, plan, now)
        results.append(EdgeResult(cert.host, cert.stem, "due" if reason else "good", reason))
    due = [(c, r) for c, r in zip(wanted, results, strict=True) if r.action == "due"]
    if not due or dry_run:
        return results
    bao = login()
    try:
        for cert, r in due:
            try:
                r.issued = issue(bao, plan, EDGE_ROLE, list(cert.names), where)
            except BaoError as exc:
                raise OperationError(
                    f"the edge certificate of {r.host} ({r.stem}): OpenBao refused: {exc}"
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
