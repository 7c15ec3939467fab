"""`govcloud identity`: OpenBao and the bastion, planned from the spec and applied."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, SpecArg, console, err_console, print_json, read_spec
from govcloud.errors import EXIT_FAILED

if TYPE_CHECKING:
    from govcloud.spec.model import Spec
    from infra.inventory import InvHost

app = typer.Typer(
    help="Unified identity (统一身份认证): the OpenBao cluster, groups and policies per "
    "department, separated administrators, the SSH CA and the bastion.",
    no_args_is_help=True,
)


def _hosts(spec: Spec) -> list[InvHost]:
    from infra.plan import make_plan

    return make_plan(spec).hosts


@app.command()
def plan(
    spec: SpecArg = None,
    policies: Annotated[bool, typer.Option(help="Print every policy's HCL too.")] = False,
    json: JsonOpt = False,
) -> None:
    """Show what identity as code would create: mounts, groups, policies, SSH grants; and
    prove the department policies cannot reach each other's secrets."""
    from security.identity.plan import check_isolation, make_identity_plan

    s = read_spec(spec)
    p = make_identity_plan(s, _hosts(s))
    problems = check_isolation(p)
    if json:
        print_json({**p.as_dict(), "isolation_problems": problems})
    else:
        table = Table(title=f"identity plan: {len(p.groups)} groups, {len(p.policies)} policies")
        for col in ("group", "policies", "members"):
            table.add_column(col)
        for g in p.groups.values():
            table.add_row(g.name, ", ".join(g.policies), ", ".join(g.members))
        console.print(table)
        console.print(
            f"KV mounts: {', '.join(p.kv_mounts)}\nSSH roles: "
            + ", ".join(f"{r.name} ({r.principal})" for r in p.ssh_roles.values())
            + f"\ntokens {p.token_ttl}, SSH certificates {p.ssh_ttl} (max {p.ssh_max_ttl}), "
            f"MFA on administrators: {'yes' if p.mfa else 'no'}"
        )
        if policies:
            for pol in p.policies.values():
                console.print(f"[bold]{pol.name}[/]\n{escape(pol.hcl)}")
        if problems:
            for problem in problems:
                err_console.print(f"[red]isolation:[/] {escape(problem)}")
        else:
            console.print(
                f"[green]isolation holds[/]: {len(p.departments)} departments, every policy "
                "names only its own KV mount"
            )
    if problems:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def apply(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Install and unseal OpenBao (identity.yml), apply identity as code, sign host keys, make
    the bastion and every node trust only the SSH CA (bastion.yml), revoke the root token."""
    from security.identity.deploy import deploy
    from security.openbao.cluster import WARNING, Paths

    s = read_spec(spec)
    if json:
        report = deploy(s)
        print_json(report.as_dict())
    else:
        with console.status("identity apply") as status:
            report = deploy(s, say=lambda m: status.update(escape(m)))
        for run in report.runs:
            console.print(
                f"{run.playbook}: {run.status} in {run.seconds:.1f} s, {run.changed} changed"
            )
        members = [
            str(m["node"]) + (" (leader)" if m["leader"] else "")
            for m in report.cluster.get("raft", [])
        ]
        console.print(f"cluster: {', '.join(members)}")
        console.print(f"identity changes: {len(report.identity.get('changed', []))}")
        console.print(f"host certificates signed: {report.host_certificates}")
        if report.cluster.get("initialised_now"):
            err_console.print(
                f"[yellow]{escape(WARNING.replace('THRESHOLD', '3'))}[/]\n"
                f"  file: {Paths.default().init_file}"
            )
        if report.root_revoked:
            console.print("initial root token revoked (administrators can log in)")


@app.command()
def status(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Each OpenBao node's state (active / standby / sealed / down)."""
    from security.openbao.cluster import Paths
    from security.openbao.cluster import status as cluster_status

    rows = cluster_status(_hosts(read_spec(spec)), Paths.default())
    if json:
        print_json(rows)
    else:
        for r in rows:
            colour = {"active": "green", "standby": "green"}.get(r["state"], "red")
            console.print(f"{r['url']}: [{colour}]{r['state']}[/] {escape(r.get('error', ''))}")
    if not any(r["state"] == "active" for r in rows):
        raise typer.Exit(EXIT_FAILED)
