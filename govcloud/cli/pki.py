"""`govcloud pki`: service certificates from OpenBao's PKI: issue, renew, status."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, console, err_console, print_json, read_spec
from govcloud.errors import EXIT_FAILED, InputError

if TYPE_CHECKING:
    from security.openbao.client import Bao
    from security.pki.plan import PkiPlan

app = typer.Typer(
    help="Service certificates (TLS) from the cloud's PKI in OpenBao: the edge's public names "
    "and the services' own; every issue is in OpenBao's audit trail.",
    no_args_is_help=True,
)

SpecOpt = Annotated[Path | None, typer.Option("--spec", help="The spec (default: the lab's).")]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir", "-d", help="Where the certificates are [state/pki/certs].", show_default=False
    ),
]
AddrOpt = Annotated[
    str | None,
    typer.Option(
        "--addr",
        envvar="BAO_ADDR",
        help="OpenBao to use, with the token in $BAO_TOKEN (default: the lab's cluster, as "
        "its first system administrator).",
        show_default=False,
    ),
]
CaCertOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca-cert", envvar="BAO_CACERT", help="CA bundle for OpenBao's TLS.", show_default=False
    ),
]


def _default_dir() -> Path:
    from govcloud.paths import state_dir

    return state_dir() / "pki" / "certs"


def _plan(spec: Path | None) -> PkiPlan:
    from security.pki.plan import make_pki_plan

    return make_pki_plan(read_spec(spec))


def _client(spec: Path | None, addr: str | None, ca_cert: Path | None) -> Bao:
    from security.openbao.client import Bao, Endpoint

    if addr:
        token = os.environ.get("BAO_TOKEN") or os.environ.get("VAULT_TOKEN")
        if not token:
            raise InputError("--addr needs a token in $BAO_TOKEN")
        return Bao(Endpoint(addr, ca_cert), token)
    from infra.plan import make_plan
    from security.identity.plan import make_identity_plan
    from security.identity.session import login
    from security.openbao.cluster import Paths

    s = read_spec(spec)
    hosts = make_plan(s).hosts
    plan = make_identity_plan(s, hosts)
    system = next(g for n, g in plan.groups.items() if g.admin and "system" in n)
    return login(system.members[0], hosts, Paths.default())


@app.command()
def issue(
    names: Annotated[
        list[str], typer.Argument(help="The names it is for; the first is its common name.")
    ],
    role: Annotated[str, typer.Option("--role", "-r", help="edge or internal.")] = "edge",
    ip: Annotated[
        list[str] | None, typer.Option("--ip", help="An address it is for (internal role).")
    ] = None,
    ttl_hours: Annotated[
        int | None, typer.Option(help="Hours it lives [the role's TTL from the spec].")
    ] = None,
    directory: DirOpt = None,
    spec: SpecOpt = None,
    addr: AddrOpt = None,
    ca_cert: CaCertOpt = None,
    json: JsonOpt = False,
) -> None:
    """Issue a certificate into a directory: <name>.key (0600), .crt, .chain.pem,
    .fullchain.pem (what nginx serves) and .json (what renew asks again)."""
    from security.pki.certs import check_request
    from security.pki.certs import issue as issue_cert

    plan = _plan(spec)
    check_request(plan, role, names, ttl_hours)  # bad input refused before any login
    if ip and not plan.roles[role].ip_sans:
        raise InputError(f"--ip: the {role} role issues for names only")
    bao = _client(spec, addr, ca_cert)
    out = issue_cert(
        bao, plan, role, names, directory or _default_dir(), ip_sans=ip or [], ttl_hours=ttl_hours
    )
    if json:
        print_json(out.as_dict())
    else:
        console.print(
            f"issued {escape(out.stem)} ({out.role}), serial {out.serial}, until "
            f"{out.not_after}\n  files in {escape(str(out.directory))}"
        )


@app.command()
def renew(
    directory: DirOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what is due.")] = False,
    spec: SpecOpt = None,
    addr: AddrOpt = None,
    ca_cert: CaCertOpt = None,
    json: JsonOpt = False,
) -> None:
    """Issue again every certificate whose remaining life is under the spec's renew-before
    share (tls.renew_before); nothing happens, and OpenBao is not asked, when none is due.
    Reload the servers that use them afterwards (nginx -s reload drops no connection)."""
    from security.pki.certs import managed, why_renew
    from security.pki.certs import renew as renew_certs

    plan = _plan(spec)
    where = directory or _default_dir()
    now = dt.datetime.now(dt.UTC)
    due = [m for m in managed(where) if why_renew(where, m, plan.renew_before, now)]
    bao = _client(spec, addr, ca_cert) if due and not dry_run else None
    results = renew_certs(bao, plan, where, now=now, dry_run=dry_run)
    if json:
        print_json({"directory": str(where), "results": [r.as_dict() for r in results]})
        return
    if not results:
        console.print(f"no certificates in {escape(str(where))}")
    for r in results:
        if r.renewed:
            console.print(f"[green]renewed[/] {escape(r.name)}: {escape(r.reason)}")
        elif r.due:
            console.print(f"[yellow]due[/] {escape(r.name)}: {escape(r.reason)}")
        else:
            console.print(f"good {escape(r.name)}")


@app.command()
def status(
    directory: DirOpt = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            help="The root to check chains against [the lab's PKI root].", show_default=False
        ),
    ] = None,
    spec: SpecOpt = None,
    json: JsonOpt = False,
) -> None:
    """Every certificate in the directory: days to expiry, whether its chain verifies to the
    PKI's root for its name, whether its key matches, whether renewal is due. Exits 1 when a
    chain or key is bad or one has run out."""
    from security.pki.certs import load_pems
    from security.pki.certs import status as cert_status
    from security.pki.root import RootPaths

    plan = _plan(spec)
    root_file = ca or RootPaths.default().cert
    roots = load_pems(root_file)
    if not roots:
        raise InputError(f"no root certificate at {root_file} (--ca)")
    where = directory or _default_dir()
    rows = cert_status(where, roots, plan.renew_before)
    bad = [r for r in rows if not r.chain_ok or not r.key_ok or r.days_left <= 0]
    if json:
        print_json({"directory": str(where), "certificates": [r.as_dict() for r in rows]})
    else:
        table = Table(title=f"certificates in {where}")
        for col in ("name", "role", "days left", "chain", "key", "renew"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                escape(r.name),
                r.role,
                f"{r.days_left:.1f}",
                "[green]ok[/]" if r.chain_ok else f"[red]{escape(r.chain_error)}[/]",
                "[green]ok[/]" if r.key_ok else "[red]mismatch[/]",
                "[yellow]due[/]" if r.renew_due else "-",
            )
        console.print(table)
        for r in bad:
            err_console.print(f"[red]problem:[/] {escape(r.name)}")
    if bad:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def hosts(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say which certificates are due.")
    ] = False,
    spec: SpecOpt = None,
    json: JsonOpt = False,
) -> None:
    """The hosts' own certificates (security.pki.hostcerts): each hall host's edge certificate,
    the hall database's, every host's for shipping its logs, and the hall pods' own. Issue, as
    the automation identity, each one missing, no longer carrying the spec's names, or due for
    renewal, then put them in place: the hall play for the edge and the database (nginx and
    PostgreSQL reload: no connection is dropped), the logs play for the logs (rsyslog
    restarts; senders queue meanwhile), the hall's publication for its pods (OpenBao, then a
    rolling restart). Nothing is asked of OpenBao, and nothing is touched, when every one is
    good."""
    from infra.hosts.apply import lab_credentials, prepare
    from infra.hosts.runner import RunResult, run_playbook
    from security.pki import hostcerts

    s = read_spec(spec)
    target = prepare(s, lab_credentials())
    login = hostcerts.automation_login(target.plan.hosts)
    results = hostcerts.ensure(s, target.plan.hosts, login, dry_run=dry_run)
    plays: dict[str, tuple[str, RunResult]] = {}
    for playbook, uses in (
        ("hall.yml", (hostcerts.EDGE, hostcerts.DATABASE)),
        ("logs.yml", (hostcerts.LOG,)),
    ):
        on = ",".join(sorted({r.host for r in results if r.action == "issued" and r.use in uses}))
        if on:
            with console.status(f"putting the new certificates on {on} ({playbook})"):
                plays[playbook] = (
                    on,
                    run_playbook(playbook, target.inventory, target.connection, limit=on),
                )
    played = [r for _on, r in plays.values()]
    republished = None
    if any(r.action == "issued" and r.use == hostcerts.SERVICE for r in results):
        from clusters.hallapp import publish_hall

        with console.status("the hall's pods take their new certificate (rolling restart)"):
            republished = publish_hall(s, target.plan.hosts).rollout
    if json:
        print_json(
            {
                "certificates": [r.as_dict() for r in results],
                "deployed": None if not played else all(r.ok for r in played),
                "hall_rollout": republished,
            }
        )
    else:
        for r in results:
            colour = {"issued": "green", "due": "yellow"}.get(r.action, "default")
            why = f": {escape(r.reason)}" if r.reason else ""
            where = f"{r.use} of {r.host}"
            console.print(f"[{colour}]{r.action}[/] {escape(r.stem)} ({escape(where)}){why}")
        for playbook, (on, result) in plays.items():
            console.print(f"{playbook} on {on}: {result.status}")
        if republished is not None:
            console.print(f"the hall's pods: {escape(str(republished.get('message', '')))}")
    if not all(r.ok for r in played):
        for f in [f for r in played for f in r.failures][:5]:
            err_console.print(
                f"[red]failed:[/] {escape(f.host)}: {escape(f.task)}: {escape(f.message)}"
            )
        raise typer.Exit(EXIT_FAILED)
