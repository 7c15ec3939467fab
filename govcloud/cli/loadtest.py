"""``govcloud loadtest``: drive the halls of the five levels and gate on their SLOs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, SpecArg, console, err_console, print_json, read_spec
from govcloud.errors import EXIT_FAILED, InputError, Problem

app = typer.Typer(
    help="Load tests of the online halls (网上办事大厅): personas per level, profiles as data, "
    "a per-level SLO gate and a report.",
    no_args_is_help=True,
)


@app.command("run")
def run_command(
    spec: SpecArg = None,
    profile: Annotated[
        str,
        typer.Option("--profile", "-p", help="workday, surge or soak (loadtests/profiles.yaml)"),
    ] = "workday",
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            help="local (a throwaway PostgreSQL and hall on loopback), lab (the lab's hall "
            "hosts from the plan) or http(s)://URL[,URL...]",
        ),
    ] = "local",
    users: Annotated[
        int | None, typer.Option("--users", "-u", help="closed model: peak concurrent users")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", "-r", help="open model: peak arrivals (requests) per second"),
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", "-d", help="60s, 15m, 2h (default: the profile's)")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="report directory (default loadtest-reports/PROFILE-TIME)"),
    ] = None,
    processes: Annotated[
        int, typer.Option("--processes", help="local locust worker processes (one per core)")
    ] = 1,
    slo: Annotated[
        list[str] | None,
        typer.Option(
            "--slo",
            help='override the spec\'s SLO: "p95=300", "county:p99=800", "village:err=0.02"',
        ),
    ] = None,
    level_mix: Annotated[
        str | None,
        typer.Option("--level-mix", help='"province=1,city=2,county=4,township=2,village=1"'),
    ] = None,
    surge_factor: Annotated[
        float | None, typer.Option("--surge-factor", help="override load.surge_factor")
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            "--admin-token",
            envvar="GOVCLOUD_HALL_ADMIN_TOKEN",
            help="the hall's admin token, to issue staff tokens (local: not needed; lab: "
            "default the one hall.yml generated under state/secrets/hall)",
            show_envvar=True,
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="lab target: the probe at a hall LAN whose network the load comes from "
            "(default probe-province; the halls are reached on the planned path)",
        ),
    ] = None,
    sites_per_level: Annotated[
        int, typer.Option("--sites-per-level", help="sites sampled per level")
    ] = 20,
    think: Annotated[
        str, typer.Option("--think", help="closed model: think time MIN-MAX seconds")
    ] = "1-3",
    min_requests: Annotated[
        int, typer.Option("--min-requests", help="requests an endpoint needs to be gated alone")
    ] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Run one load test; exit 1 when the SLO gate fails (naming level and endpoint)."""
    from loadtests.run import RunOptions, run

    if sites_per_level < 1:
        raise InputError([Problem("--sites-per-level", "expected at least 1")])

    def echo(text: str) -> None:
        if not as_json:
            err_console.print(escape(text), highlight=False)

    result = run(
        RunOptions(
            spec=read_spec(spec),
            profile=profile,
            target=target,
            users=users,
            rate=rate,
            duration=duration,
            report_dir=report,
            processes=processes,
            slo=slo or [],
            level_mix=level_mix,
            surge_factor=surge_factor,
            admin_token=admin_token,
            source=source,
            sites_per_level=sites_per_level,
            think=think,
            min_requests=min_requests,
            echo=echo,
            locust_output=not as_json,
        )
    )
    if as_json:
        print_json(result)
    else:
        table = Table(title=f"{profile}: {result['requests']} requests, {result['rps']} req/s")
        for col in ("level", "requests", "error ratio", "p95 ms", "p99 ms", "limits"):
            table.add_column(col)
        for level, f in result["levels"].items():
            s = f["slo"]
            table.add_row(
                level,
                str(f["requests"]),
                f"{f['error_ratio']:.2%}",
                str(f["p95_ms"]),
                str(f["p99_ms"]),
                f"{s['p95_ms']:.0f} / {s['p99_ms']:.0f} ms / {s['error_ratio']:.1%}",
            )
        console.print(table)
        if result["ok"]:
            console.print("[bold green]SLO gate passed[/]")
        else:
            console.print("[bold red]SLO gate FAILED[/]")
            for b in result["breaches"]:
                console.print(f"  - {escape(b)}", highlight=False)
        console.print(f"report: {escape(result['report'])}")
    if not result["ok"]:
        raise typer.Exit(EXIT_FAILED)


@app.command("profiles")
def profiles_command(as_json: JsonOpt = False) -> None:
    """Show the load profiles (shapes as data) and the persona mix."""
    from loadtests.config import PROFILES_FILE, read_profiles

    try:
        data = read_profiles()
    except ValueError as exc:
        raise InputError([Problem("", str(exc), str(PROFILES_FILE))]) from None
    if as_json:
        print_json(data)
        return
    for name, prof in data["profiles"].items():
        pts = " → ".join(f"{t:g}:{v}" for t, v in prof["points"])
        console.print(f"[bold]{name}[/] ({prof.get('default_duration', '60s')}): {pts}")
        console.print(f"  {escape(prof.get('description', ''))}", highlight=False)
    console.print("personas: " + json.dumps(data.get("personas", {}), ensure_ascii=False))


@app.command("seed-plan")
def seed_plan_command(
    spec: SpecArg = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the plan here (default stdout)")
    ] = None,
) -> None:
    """The hall's seed plan from the spec (sites, departments, guide counts), as JSON: copy it
    to a hall host and run `python3 -m hall seed PLAN.json` there."""
    from clusters.hallseed import guide_counts, seed_plan

    plan = seed_plan(read_spec(spec))
    text = json.dumps(plan, ensure_ascii=False)
    if output is None:
        print(text)
        return
    output.write_text(text, encoding="utf-8")
    counts = guide_counts(plan)
    err_console.print(
        f"wrote {output}: {len(plan['sites'])} sites, {sum(counts.values())} guides "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())})"
    )
