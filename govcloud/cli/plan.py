"""`govcloud plan`, `govcloud net show`, `govcloud dc show`: the plan, printed and written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, SpecArg, console, err_console, print_json, read_spec
from govcloud.errors import EXIT_FAILED
from govcloud.spec.model import LEVELS
from infra.plan import Plan, make_plan, read_previous, write_plan

net_app = typer.Typer(
    help="The government network: address plan, zones and policy.", no_args_is_help=True
)
dc_app = typer.Typer(
    help="The data center: racks, power, cooling, pools (GB 50174-2017).", no_args_is_help=True
)


def _failed_verdicts(dc: dict[str, Any]) -> list[str]:
    out = [
        f"rack {r['rack']}: {r['load_kw']} kW placed, budget {r['budget_kw']} kW"
        for r in dc["racks"]
        if not r["ok"]
    ]
    out += [
        f"{chain} {v['item']}: {v['detail']} [{v['clause']}]"
        for chain, vs in dc["chains"].items()
        for v in vs
        if not v["ok"]
    ]
    out += [
        f"grade {dc['grade']}: {g['requirement']} [{g['clause']}]"
        for g in dc["grade_rules"]
        if not g["ok"]
    ]
    out += [
        f"pool {k}: quotas {v['quota']:g} over capacity {v['capacity']:g}"
        for k, v in dc["pools"].items()
        if v["quota"] > v["capacity"]
    ]
    return out


def plan_command(
    spec: SpecArg = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Directory to write the plan to.")
    ] = Path("out/plan"),
    fresh: Annotated[
        bool,
        typer.Option(
            help="Ignore the previous plan in the directory: allocate every address from scratch."
        ),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Plan the network and the data center and write the files engineers read and diff.

    Writes network.json (sites, zones, rules), acl.csv / acl.json (vendor-neutral ACL),
    nftables/<router>.nft and nftables/role-<role>.nft, datacenter.json (capacities and
    verdicts with their clauses) and inventory.yml / inventory.json. A network.json already in
    the directory is the previous plan: sites keep their addresses unless --fresh.
    Exits 1 when the data center cannot carry the plan (the files are still written).
    """
    s = read_spec(spec)
    plan = make_plan(s, None if fresh else read_previous(output))
    files = write_plan(plan, output)
    failed = _failed_verdicts(plan.datacenter)
    if json:
        print_json(
            {
                "ok": not failed,
                "output": str(output),
                "files": files,
                "warnings": [str(w) for w in plan.policy.warnings],
                "notes": [str(n) for n in plan.policy.notes],
                "failed": failed,
            }
        )
    else:
        console.print(
            f"wrote {len(files)} files to {output}: "
            f"{sum(1 for _ in plan.addresses.walk()):,} sites, {len(plan.zones)} zones, "
            f"{len(plan.policy.rules)} rules, {len(plan.hosts)} hosts",
            highlight=False,
        )
        for w in plan.policy.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(str(w))}", highlight=False)
        for f in failed:
            err_console.print(f"[red]failed:[/] {escape(f)}", highlight=False)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _net_summary(plan: Plan) -> dict[str, Any]:
    levels: dict[str, dict[str, Any]] = {lv.value: {"sites": 0, "prefixes": {}} for lv in LEVELS}
    for site in plan.addresses.walk():
        entry = levels[site.level.value]
        entry["sites"] += 1
        length = f"/{33 - site.block[1].bit_length()}"
        entry["prefixes"][length] = entry["prefixes"].get(length, 0) + 1
    return {
        "supernets": plan.spec.network.supernets.model_dump(),
        "levels": levels,
        "zones": [z.as_dict() for z in plan.zones.values()],
        "routers": [h.name for h in plan.hosts if h.role == "router"],
        "rules": len(plan.policy.rules),
        "warnings": [str(w) for w in plan.policy.warnings],
        "notes": [str(n) for n in plan.policy.notes],
    }


@net_app.command("show")
def net_show(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Summarise the address plan per level, the zones and the policy."""
    summary = _net_summary(make_plan(read_spec(spec)))
    if json:
        print_json(summary)
        return
    levels = Table(title="address plan (extranet " + summary["supernets"]["extranet"] + ")")
    for col in ("level", "sites", "block sizes"):
        levels.add_column(col)
    for name, entry in summary["levels"].items():
        sizes = ", ".join(f"{n:,}×{p}" for p, n in sorted(entry["prefixes"].items()))
        levels.add_row(name, f"{entry['sites']:,}", sizes)
    console.print(levels)
    zones = Table(title="zones")
    for col in ("zone", "label", "network", "prefixes"):
        zones.add_column(col)
    for z in summary["zones"]:
        prefixes = ", ".join(z["prefixes"][:3]) + (" …" if len(z["prefixes"]) > 3 else "")
        zones.add_row(z["name"], z["label"], z["network"], prefixes)
    console.print(zones)
    console.print(
        f"routers: {', '.join(summary['routers'])}; {summary['rules']} allow rules, "
        "everything else denied",
        highlight=False,
    )
    for w in summary["warnings"]:
        err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    for n in summary["notes"]:
        console.print(f"[dim]note:[/] {escape(n)}", highlight=False)


@dc_app.command("show")
def dc_show(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Racks against their kW budgets, power and cooling chains with their redundancy, pools."""
    dc = make_plan(read_spec(spec)).datacenter
    if json:
        print_json(dc)
        return
    mark = {True: "[green]ok[/]", False: "[red]FAIL[/]"}
    racks = Table(title=f"{dc['name']}: grade {dc['grade']}, IT load {dc['it_load_kw']} kW")
    for col in ("rack", "budget kW", "placed kW", ""):
        racks.add_column(col)
    for r in dc["racks"]:
        racks.add_row(r["rack"], f"{r['budget_kw']:g}", f"{r['load_kw']:g}", mark[r["ok"]])
    console.print(racks)
    chains = Table(title="power and cooling")
    for col in ("chain", "check", "", "detail", "source"):
        chains.add_column(col)
    for chain, verdicts in dc["chains"].items():
        for v in verdicts:
            chains.add_row(
                chain, v["item"], mark[v["ok"]], escape(v["detail"]), escape(v["clause"])
            )
    for g in dc["grade_rules"]:
        chains.add_row(
            "grade", g["rule"], mark[g["ok"]], escape(g["requirement"]), escape(g["clause"])
        )
    console.print(chains)
    pools = Table(title="pools against tenant quotas")
    for col in ("pool", "quota", "capacity", "share"):
        pools.add_column(col)
    for name, p in dc["pools"].items():
        pools.add_row(name, f"{p['quota']:g}", f"{p['capacity']:g}", f"{p['share']:.0%}")
    console.print(pools)
    if not dc["ok"]:
        raise typer.Exit(EXIT_FAILED)


@net_app.command("verify")
def net_verify(
    spec: SpecArg = None,
    wait: Annotated[
        float, typer.Option(help="Seconds a probe waits before calling a flow dropped.")
    ] = 1.5,
    json: JsonOpt = False,
) -> None:
    """Send real packets inside the lab to prove the plan.

    Every allowed flow must open (TCP connect), every denied one must be refused or dropped,
    the intranet must be unreachable from every extranet zone, and SSH must reach hosts only
    from the bastion. Prints the matrix (sources × hosts: the ports that opened) and exits 1 on
    any mismatch, naming the flow. Needs the lab up (`govcloud lab up`).
    """
    from infra.lab.from_plan import lab_topology
    from infra.lab.lab import status
    from infra.lab.netverify import verify

    plan = make_plan(read_spec(spec))
    topo = lab_topology(plan)
    lab = status(topo.name, probe=False)
    down = [h.name for h in lab.hosts if h.state != "RUNNING"]
    if not lab.hosts or down:
        err_console.print(
            f"[red]error:[/] the lab {topo.name!r} is not up"
            + (f" ({', '.join(down)} not running)" if down else "")
            + ": run `govcloud lab up` first",
            highlight=False,
        )
        raise typer.Exit(EXIT_FAILED)
    say = (lambda _m: None) if json else (lambda m: err_console.print(m, highlight=False))
    outcomes = verify(topo.name, topo, plan.policy.rules, wait=wait, progress=say)
    bad = [o for o in outcomes if not o.ok]
    if json:
        print_json(
            {
                "ok": not bad,
                "checked": len(outcomes),
                "mismatches": [
                    {
                        "flow": o.check.label,
                        "expected": "open" if o.check.expect_open else "closed",
                        "observed": o.observed,
                        "rule": o.check.reason,
                    }
                    for o in bad
                ],
            }
        )
    else:
        _print_matrix(outcomes)
        for o in bad:
            want = "open" if o.check.expect_open else "closed"
            err_console.print(
                f"[red]mismatch:[/] {escape(o.check.label)}: expected {want} "
                f"({escape(o.check.reason)}), observed {o.observed}",
                highlight=False,
            )
        verdict = "[green]all match the plan[/]" if not bad else f"[red]{len(bad)} mismatch(es)[/]"
        console.print(f"{len(outcomes)} flows checked: {verdict}", highlight=False)
    if bad:
        raise typer.Exit(EXIT_FAILED)


def _print_matrix(outcomes: list[Any]) -> None:
    """One row per source: what opened towards each host (✗ marks a difference from the plan)."""
    rows: dict[str, dict[str, list[str]]] = {}
    closed: dict[str, int] = {}
    for o in outcomes:
        port = str(o.check.port) if o.check.port else o.check.proto
        row = rows.setdefault(o.check.src, {})
        if not o.ok:
            row.setdefault(o.check.dst, []).append(f"[red]✗{port}[/]")
        elif o.opened:
            row.setdefault(o.check.dst, []).append(port)
        else:
            closed[o.check.src] = closed.get(o.check.src, 0) + 1
    table = Table(title="net verify: what each source reached (everything else stayed closed)")
    table.add_column("from")
    table.add_column("opened: host ports")
    table.add_column("closed", justify="right")
    for src, row in rows.items():
        opened = "; ".join(f"{dst} {','.join(ports)}" for dst, ports in row.items()) or "·"
        table.add_row(src, opened, str(closed.get(src, 0)))
    console.print(table)
