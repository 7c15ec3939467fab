"""`govcloud audit`: audit for security officers, as the audit administrator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, console, err_console, print_json, read_spec
from govcloud.errors import EXIT_FAILED, InputError

if TYPE_CHECKING:
    from security.audit.officer import Officer

app = typer.Typer(
    help="Audit for security officers (审计管理员): device health, who did what, verify a value.",
    no_args_is_help=True,
)

UserOpt = Annotated[
    str | None,
    typer.Option("--user", "-u", help="Audit administrator (default: the spec's first holder)."),
]
PasscodeOpt = Annotated[str | None, typer.Option("--passcode", help="TOTP passcode.")]
SpecOpt = Annotated[Path | None, typer.Option("--spec", help="The spec (default: the lab's).")]
DeviceOpt = Annotated[str, typer.Option(help="Audit device to read.")]


def _officer(spec: Path | None, user: str | None, passcode: str | None) -> Officer:
    from infra.plan import make_plan
    from security.audit.officer import Officer, auditor
    from security.identity.plan import make_identity_plan

    s = read_spec(spec)
    hosts = make_plan(s).hosts
    plan = make_identity_plan(s, hosts)
    name = user or auditor(plan)
    if name not in plan.groups[next(n for n in plan.groups if "audit-admins" in n)].members:
        raise InputError(f"{name} is not an audit administrator of this spec")
    return Officer(plan, hosts, name, passcode=passcode)


@app.command()
def status(
    user: UserOpt = None, passcode: PasscodeOpt = None, spec: SpecOpt = None, json: JsonOpt = False
) -> None:
    """Audit devices, their files on every identity host (writable? disk headroom?), and
    whether OpenBao still serves. Exits 1 on any problem."""
    out = _officer(spec, user, passcode).status()
    if json:
        print_json(out)
    else:
        serving = {True: "[green]yes[/]", False: "[red]NO (fail closed)[/]", None: "?"}
        console.print(f"OpenBao serving: {serving[out['serving']]}")
        table = Table(title="audit devices")
        for col in ("host", "device", "owner", "mode", "size", "writable", "free MiB"):
            table.add_column(col)
        for node in out["nodes"]:
            if "error" in node:
                table.add_row(node["host"], "-", "-", "-", "-", "[red]unreachable[/]", "-")
            for name, d in node["devices"].items():
                table.add_row(
                    node["host"],
                    name,
                    str(d.get("owner", "-")),
                    str(d.get("mode", "-")),
                    str(d.get("size", "-")),
                    "[green]yes[/]" if d.get("writable") else "[red]no[/]",
                    str(d.get("free_mib", "-")),
                )
        console.print(table)
        for p in out["problems"]:
            err_console.print(f"[red]problem:[/] {escape(p)}")
    if not out["ok"]:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def report(
    since: Annotated[
        str | None, typer.Option(help="Only entries after this: 30m, 2h, 7d or an ISO time.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="Read a local audit file instead of the nodes' logs.")
    ] = None,
    sshd_log: Annotated[
        Path | None,
        typer.Option(help="With --file: a local sshd log to list break-glass logins from."),
    ] = None,
    break_glass_key: Annotated[
        list[Path] | None,
        typer.Option(
            help="The break-glass (provisioning) key, public or private; repeatable "
            "(default: the lab's)."
        ),
    ] = None,
    device: DeviceOpt = "primary",
    user: UserOpt = None,
    passcode: PasscodeOpt = None,
    spec: SpecOpt = None,
    json: JsonOpt = False,
) -> None:
    """Who did what: logins and failed logins, policy and grant changes, certificates signed,
    secrets read per department, denied requests; and the hosts' SSH logins made with the
    break-glass key instead of a certificate (from the log host). Streams the logs line by
    line."""
    from security.audit import sshd
    from security.audit.officer import report_file
    from security.audit.report import parse_since

    cutoff = parse_since(since)
    keys = [sshd.key_fingerprint(k) for k in _break_glass_keys(break_glass_key)]
    ssh: sshd.SshReport | None = None
    if file is not None:
        if not file.is_file():
            raise InputError(f"--file: no such file {file}")
        result = report_file(file, cutoff)
        skipped: list[str] = []
        if sshd_log is not None:
            if not sshd_log.is_file():
                raise InputError(f"--sshd-log: no such file {sshd_log}")
            with sshd_log.open(encoding="utf-8", errors="replace") as fh:
                ssh = sshd.build(fh, keys)
    else:
        officer = _officer(spec, user, passcode)
        result = officer.report(cutoff, device)
        ssh = officer.ssh_report(keys)
        skipped = officer.skipped
    data = {**result.as_dict(), "nodes_not_read": skipped}
    if ssh is not None:
        data["ssh"] = ssh.as_dict()
    for problem in skipped:
        err_console.print(f"[yellow]not read:[/] {escape(problem)}")
    if json:
        print_json(data)
        return
    console.print(
        f"{data['entries']} responses in {data['lines']} lines"
        f" ({data['first'] or '-'} .. {data['last'] or '-'})"
    )
    for title, key in (
        ("logins", "logins"),
        ("failed logins", "failed_logins"),
        ("MFA challenges", "mfa_challenges"),
        ("failed MFA", "mfa_failures"),
        ("certificates signed", "certificates_signed"),
    ):
        if data[key]:
            console.print(
                f"[bold]{title}[/]: " + ", ".join(f"{k} {v}" for k, v in data[key].items())
            )
    for dept, readers in data["secrets_read"].items():
        console.print(
            f"[bold]secrets read, {dept}[/]: " + ", ".join(f"{k} {v}" for k, v in readers.items())
        )
    for title, key in (("policy changes", "policy_changes"), ("grant changes", "grant_changes")):
        for c in data[key][:20]:
            console.print(
                f"[bold]{title}[/]: {c['time'][:19]} {c['who']} {c['operation']} {c['path']}"
            )
    if data["denied"]:
        console.print(f"[bold]denied[/]: {sum(data['denied'].values())} requests")
    if ssh is not None:
        _print_ssh(data["ssh"])


def _break_glass_keys(given: list[Path] | None) -> list[Path]:
    if given:
        for key in given:
            if not key.is_file():
                raise InputError(f"--break-glass-key: no such file {key}")
        return list(given)
    from infra.hosts.apply import lab_credentials

    lab = lab_credentials().identity_file
    return [lab] if lab.is_file() else []


def _print_ssh(ssh: dict[str, Any]) -> None:
    console.print(
        f"[bold]SSH logins[/]: {ssh['logins']} ({ssh['certificate_login_count']} with a "
        "certificate)"
    )
    if not ssh["break_glass_keys"]:
        err_console.print("[yellow]no break-glass key given:[/] plain-key logins listed only")
    if not ssh["break_glass_logins"]:
        console.print("[bold]break-glass logins[/]: none")
    for title, key in (
        ("break-glass logins", "break_glass_logins"),
        ("plain-key logins", "plain_key_logins"),
    ):
        for fp, use in ssh[key].items():
            hosts = ", ".join(f"{h} {n}" for h, n in use["hosts"].items())
            console.print(
                f"[bold red]{title}[/]: {escape(fp)} {use['count']} on {escape(hosts)} "
                f"({use['first'] or '-'} .. {use['last'] or '-'})",
                emoji=False,
            )
            for t in use["times"][:10]:
                console.print(f"  {escape(t)}", emoji=False)


@app.command()
def verify(
    value: Annotated[str, typer.Argument(help="The clear-text value to look for.")],
    device: DeviceOpt = "primary",
    user: UserOpt = None,
    passcode: PasscodeOpt = None,
    spec: SpecOpt = None,
    json: JsonOpt = False,
) -> None:
    """Hash VALUE with the device's HMAC key (sys/audit-hash) and count where the logs hold it.
    Exits 1 when it is nowhere."""
    out = _officer(spec, user, passcode).verify(value, device)
    if json:
        print_json(out)
    else:
        console.print(f"{out['hash']}: {out['occurrences']} occurrence(s) in the {device} logs")
        for t in out["times"]:
            console.print(f"  {t}")
    if not out["occurrences"]:
        raise typer.Exit(EXIT_FAILED)
