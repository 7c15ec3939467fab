"""`govcloud hosts`: configure the hosts with the site playbook (ansible-runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, SpecArg, console, err_console, print_json, read_spec
from govcloud.errors import EXIT_FAILED, InputError
from infra.hosts.runner import RunResult

app = typer.Typer(
    help="Configure the hosts: baseline hardening, routers, the log host.", no_args_is_help=True
)


def show_result(result: RunResult) -> None:
    table = Table(title=f"{result.playbook}: {result.status} in {result.seconds:.1f} s")
    for col in ("host", "status", "ok", "changed", "failed", "unreachable", "seconds"):
        table.add_column(col, justify="left" if col in ("host", "status") else "right")
    colour = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red"}
    for h in sorted(result.hosts.values(), key=lambda h: h.host):
        table.add_row(
            h.host,
            f"[{colour[h.status]}]{h.status}[/]",
            str(h.ok),
            str(h.changed),
            str(h.failed),
            str(h.unreachable),
            f"{h.seconds:.1f}",
        )
    console.print(table)
    for f in result.failures:
        err_console.print(
            f"[red]{escape(f.host)}[/]: {escape(f.task)}: {escape(f.message)}", highlight=False
        )


@app.command()
def apply(
    spec: SpecArg = None,
    limit: Annotated[str | None, typer.Option(help="Only these hosts (Ansible pattern).")] = None,
    check: Annotated[bool, typer.Option(help="Show what would change; change nothing.")] = False,
    full: Annotated[
        bool,
        typer.Option(
            help="Run every role on every host, also on hosts whose managed state is what "
            "the last full run left (by default those are left alone after one check)."
        ),
    ] = False,
    identity: Annotated[
        Path | None, typer.Option(help="SSH private key (default: the lab's).")
    ] = None,
    user: Annotated[str, typer.Option(help="Administrator account to log in as.")] = "ops",
    tuned: Annotated[
        bool, typer.Option(help="SSH multiplexing and pipelining (--no-tuned: Ansible's defaults).")
    ] = True,
    json: JsonOpt = False,
) -> None:
    """Run playbooks/site.yml on every host of the plan, through the bastion.

    A host whose managed files, modes, masked units and live ruleset are what the last full
    run recorded, and whose inputs (playbook, roles, variables) are the same, is left alone
    after one fingerprinting command; any difference, drift included, runs every role on it.

    Reports ok / changed / failed / unreachable per host; a host that is down is reported
    unreachable while the others finish. Exits 1 if any host failed or was unreachable.
    """
    from infra.hosts.apply import apply as run_apply
    from infra.hosts.apply import lab_credentials, prepare
    from security.access.ssh_config import Credentials

    creds = Credentials(user, identity) if identity else lab_credentials()
    if not creds.identity_file.is_file():
        raise InputError(
            f"--identity: no SSH key at {creds.identity_file} (bring the lab up "
            "first, or pass the key of the administrator account)"
        )
    target = prepare(read_spec(spec), creds, tuned=tuned)
    if json:
        result = run_apply(target, limit=limit, check=check, full=full)
        print_json(result.as_dict())
    else:
        with console.status("running site.yml") as status:
            result = run_apply(
                target,
                limit=limit,
                check=check,
                full=full,
                progress=lambda m: status.update(escape(m)),
            )
        show_result(result)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)
