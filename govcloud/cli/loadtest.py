"""``govcloud loadtest``: drive the halls of the five levels and gate on their SLOs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
            "hosts from the plan, over HTTPS by their names, trusting the lab's PKI) or "
            "http(s)://URL[,URL...]",
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
    resolve: Annotated[
        list[str] | None,
        typer.Option(
            "--resolve",
            help="NAME:ADDRESS, as curl's: reach an https target's name at that address "
            "(in this run only; repeat for more names)",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            help="PEM CA bundle that https targets' certificates must chain to (default: the "
            "system's; lab: the cloud's PKI root)",
        ),
    ] = None,
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
            resolve=resolve or [],
            ca_file=ca_file,
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


@app.command("capacity")
def capacity_command(
    spec: SpecArg = None,
    costs: Annotated[
        Path | None,
        typer.Option(
            "--costs",
            help="CPU per request measured by a benchmark (JSON, format govcloud-cpu-costs; "
            "default: the built-in figures measured on the lab)",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            "-r",
            help="the daily peak in requests/s, all levels (default: from the spec's population)",
        ),
    ] = None,
    per_resident: Annotated[
        float | None,
        typer.Option("--per-resident", help="requests per resident a day (default 0.041)"),
    ] = None,
    surge_factor: Annotated[
        float | None, typer.Option("--surge-factor", help="override load.surge_factor")
    ] = None,
    level_mix: Annotated[
        str | None,
        typer.Option("--level-mix", help='"province=1,city=2,county=4,township=2,village=1"'),
    ] = None,
    utilisation: Annotated[
        float,
        typer.Option("--utilisation", help="target CPU utilisation of every tier (headroom)"),
    ] = 0.6,
    replica_cpu: Annotated[
        str | None,
        typer.Option(
            "--replica-cpu",
            help='one hall replica\'s CPU, "0.5" or "500m" (default: the hall\'s app spec)',
        ),
    ] = None,
    node_cores: Annotated[
        int | None,
        typer.Option(
            "--node-cores",
            help="cores of a worker node (default: the compute pool's vCPUs over its compute "
            "hosts, else 8)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The capacity plan for the deadline surge: per level and in total, the surge's requests/s,
    the cores of each tier at the target utilisation, hall replicas, PostgreSQL cores and nodes."""
    from clusters.deploy.spec import cpu_millis
    from loadtests import capacity as cap

    cpu: float | None = None
    if replica_cpu is not None:
        try:
            cpu = cpu_millis(replica_cpu) / 1000
        except ValueError as exc:
            raise InputError([Problem("--replica-cpu", str(exc))]) from None
    if not 0 < utilisation <= 1:
        raise InputError([Problem("--utilisation", "expected a fraction within (0, 1]")])
    if node_cores is not None and node_cores < 1:
        raise InputError([Problem("--node-cores", "expected at least 1 core")])
    cost_table = cap.load_costs(costs)
    the_spec = read_spec(spec)
    demand = cap.spec_demand(
        the_spec,
        rate=rate,
        per_resident_day=per_resident if per_resident is not None else cap.DEFAULT_PER_RESIDENT_DAY,
        surge_factor=surge_factor,
        level_mix=level_mix,
    )
    sizes = cap.spec_sizes(
        the_spec, utilisation=utilisation, replica_cpu=cpu, node_cores=node_cores
    )
    plan = cap.plan_capacity(demand, cost_table, sizes, cap.spec_slo_p95(the_spec))
    if as_json:
        print_json({"ok": True, "spec": the_spec.name, **plan.as_dict()})
        return
    render_capacity(plan, the_spec.name)


def render_capacity(plan: Any, name: str) -> None:
    d, c, s = plan.demand, plan.costs, plan.sizes
    if d.population is not None:
        console.print(
            f"[bold]{escape(name)}[/]: {d.population:,} residents × {d.per_resident_day:g} "
            f"requests a day = {d.daily_requests:,.0f}/day, peak ×{d.peak_factor:g} of the "
            f"day's average = {d.peak_rps:,.1f}/s, surge ×{d.surge_multiple:g} = "
            f"{d.surge_rps:,.0f} requests/s",
            highlight=False,
        )
    else:
        console.print(
            f"[bold]{escape(name)}[/]: daily peak {d.peak_rps:,.1f}/s (given), surge "
            f"×{d.surge_multiple:g} = {d.surge_rps:,.0f} requests/s",
            highlight=False,
        )
    locust = f", locust {c.locust_ms:g} (not the server)" if c.locust_ms is not None else ""
    console.print(
        f"CPU per request: hall {c.hall_ms:.3g} ms, PostgreSQL {c.postgresql_ms:g}, "
        f"nginx {c.nginx_ms:g}{locust} — {escape(c.source)}, {escape(c.measured_at)}, "
        f"{escape(c.measured_where)}",
        highlight=False,
    )
    if c.classes:
        console.print(
            "  hall by class: "
            + ", ".join(f"{k} {v.ms:g} ms ({v.share:.0%})" for k, v in c.classes.items()),
            highlight=False,
        )
    console.print(
        f"sizes: {s.utilisation:.0%} target utilisation; replica {s.replica_cpu:g} CPU "
        f"({escape(s.replica_cpu_source)}), at least {s.min_replicas} per level; node "
        f"{s.node_cores} cores ({escape(s.node_cores_source)})",
        highlight=False,
    )
    table = Table(
        title=f"capacity for the surge ({d.surge_rps:,.0f} requests/s)",
        caption="PG: PostgreSQL",
    )
    cols = ["level", "sites", "surge\nreq/s", "hall\ncores", "hall\nreplicas"]
    cols += ["PG\ncores", "nginx\ncores", "node\ncores", "nodes"]
    for col in cols:
        table.add_column(col, justify="left" if col == "level" else "right", no_wrap=col == "level")
    for lp in [*plan.levels, plan.total]:
        table.add_row(
            lp.level,
            f"{lp.sites:,}" if lp.sites is not None else "",
            f"{lp.surge_rps:,.1f}",
            f"{lp.hall_cores:,.2f}",
            f"{lp.hall_replicas:,}",
            f"{lp.postgresql_cores:,.2f}",
            f"{lp.nginx_cores:,.2f}",
            f"{lp.node_cores:,.2f}",
            f"{lp.nodes:,}",
            style="bold" if lp.level == "total" else None,
        )
    console.print(table)
    rates = {round(lp.replica_rps, 1) for lp in plan.levels if lp.surge_rps > 0}
    per_replica = (
        f"{rates.pop():,.1f}/s"
        if len(rates) == 1
        else ", ".join(f"{lp.level} {lp.replica_rps:,.1f}/s" for lp in plan.levels)
    )
    console.print(
        f"cores at the target utilisation; one replica is planned for {per_replica}; node "
        "cores: the replicas at their CPU limit plus PostgreSQL",
        highlight=False,
    )
    if plan.total.locust_cores is not None:
        console.print(
            f"to drive the surge, locust needs {plan.total.locust_cores:,.2f} cores "
            "(not part of the server)",
            highlight=False,
        )
    console.print(f"edge hosts for nginx: {plan.edge_hosts}", highlight=False)
    p = plan.prediction
    console.print(
        f"prediction (for a bench): replicas of {p['replica_cpu']:g} CPU hold "
        + ", ".join(f"{n}: {v:,.1f}/s" for n, v in p["held_rps"].items())
        + f" at p95 <= {p['p95_ms']:g} ms",
        highlight=False,
    )
    for note in plan.notes:
        console.print(f"  - {escape(note)}", highlight=False)
