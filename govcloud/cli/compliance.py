"""`govcloud compliance`: grade-3 (等保2.0) evidence from every host, for inspectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from govcloud.cli.common import (
    JsonOpt,
    SpecArg,
    console,
    err_console,
    print_json,
    read_spec,
    spec_path,
)
from govcloud.errors import EXIT_FAILED

app = typer.Typer(
    help="Grade-3 (GB/T 22239-2019) compliance evidence from every host.", no_args_is_help=True
)


@app.command()
def check(
    spec: SpecArg = None,
    report: Annotated[
        Path, typer.Option(help="Directory for the report, JUnit XML, results and chart.")
    ] = Path("out/compliance"),
    limit: Annotated[
        str | None,
        typer.Option(help="Only cases matching this pytest -k expression (e.g. a host name)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Run the testinfra suite on every host through the bastion and write the evidence.

    One case per host and control item, each tagged with its control family (身份鉴别,
    访问控制, 安全审计, 入侵防范, 集中管控, ...). Writes report.md (date, spec, hosts, version,
    every control with its evidence, and the controls a host cannot show), summary.png,
    junit.xml and results.json. Exits 1 on any failure, naming the control and the host.
    """
    from infra.hosts.apply import lab_credentials, prepare
    from security.compliance.run import (
        declared_ports,
        parse_junit,
        run_suite,
        targets,
        write_report,
    )

    s = read_spec(spec)
    target = prepare(s, lab_credentials())
    tdoc = targets(target.plan.hosts, target.connection.ssh_config, declared_ports(s))
    with console.status(f"checking {len(tdoc['hosts'])} hosts"):
        outcomes = parse_junit(run_suite(tdoc, report, limit=limit))
    path = write_report(outcomes, report, spec_name=s.name, spec_path=str(spec_path(spec)))
    failed = [o for o in outcomes if not o.ok]
    if json:
        print_json(
            {
                "ok": not failed,
                "checks": len(outcomes),
                "report": str(path),
                "failed": [o.__dict__ for o in failed],
            }
        )
    else:
        for o in failed:
            err_console.print(
                f"[red]FAIL[/] {escape(o.host)}: {escape(o.family)} / {o.item} "
                f"({o.clause}): {escape(o.detail)}",
                highlight=False,
            )
        console.print(
            f"{len(outcomes) - len(failed)} of {len(outcomes)} checks passed on "
            f"{len({o.host for o in outcomes})} hosts; report: {path}",
            highlight=False,
        )
    if failed or not outcomes:
        raise typer.Exit(EXIT_FAILED)
