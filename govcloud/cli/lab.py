"""`govcloud lab`: the embedded data center of LXC hosts on Linux bridges (up, down, status)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, SpecArg, console, err_console, print_json, read_spec
from govcloud.errors import EXIT_FAILED
from infra.lab.topology import Topology

app = typer.Typer(
    help="The lab: LXC system containers on Linux bridges standing in for the data center "
    "(needs root). `up` is idempotent; `down` removes only what the lab created.",
    no_args_is_help=True,
)

NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="The lab's name (default: the name the spec's plan gives it)."),
]


def _planner() -> Callable[[Any], Topology] | None:
    """The network planner's ``plan_topology(spec)``, once it exists."""
    for module in ("infra.lab", "infra.lab.from_plan"):
        try:
            found = getattr(importlib.import_module(module), "plan_topology", None)
        except ImportError:
            found = None
        if callable(found):
            return found
    return None


def topology(spec: Path | None, *, quiet: bool = False) -> Topology:
    """The lab topology for ``spec``: planned from it, or the sample until the planner exists."""
    planner = _planner()
    if planner is None:
        from infra.lab.sample import sample_topology

        if spec is not None and not quiet:
            err_console.print(
                "[yellow]note:[/] the network planner is not available yet; "
                "using the sample topology (infra/lab/sample.py)",
                highlight=False,
            )
        return sample_topology()
    return planner(read_spec(spec))


def _lab_name(spec: Path | None, name: str | None) -> str:
    return name if name else topology(spec, quiet=True).name


@app.command()
def up(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Create or repair the lab's bridges and hosts; a second run changes nothing and says so.

    Builds the cached Debian image first when it is missing (a few minutes, once).
    """
    from infra.lab.lab import status as lab_status
    from infra.lab.lab import up as lab_up

    topo = topology(spec, quiet=json)
    if json:
        report = lab_up(topo)
        st = lab_status(topo.name)
        print_json(
            {
                "ok": st.healthy,
                "lab": topo.name,
                "changed": report.changed,
                "counts": report.counts(),
                "seconds": round(report.seconds, 2),
                "changes": [c.__dict__ for c in report.changes],
                "status": st.as_dict(),
            }
        )
        if not st.healthy:
            raise typer.Exit(EXIT_FAILED)
        return
    styles = {
        "created": "green",
        "changed": "yellow",
        "started": "yellow",
        "loaded": "cyan",
        "adopted": "magenta",
        "retired": "magenta",
    }
    with console.status(f"lab {topo.name}: starting", spinner="dots") as spinner:

        def progress(message: str) -> None:
            spinner.update(f"lab {topo.name}: {escape(message)}")
            if message.endswith((": unchanged",)):
                return
            action = next((a for a in styles if f": {a}" in message), None)
            if action:
                console.print(f"  [{styles[action]}]{escape(message)}[/]", highlight=False)

        report = lab_up(topo, progress)
    counts = report.counts()
    if report.changed:
        done = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()) if a != "unchanged")
        console.print(f"lab {topo.name}: {done} in {report.seconds:.1f} s", highlight=False)
    else:
        console.print(
            f"lab {topo.name}: no change ({counts.get('unchanged', 0)} objects already as "
            f"planned, {report.seconds:.1f} s)",
            highlight=False,
        )
    if not _show_status(topo.name, probe=True):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def down(
    spec: SpecArg = None,
    name: NameOpt = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also remove the cached image and its build cache.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Remove every container, bridge and nftables table the lab created, and nothing else."""
    from infra.lab.lab import down as lab_down

    lab = _lab_name(spec, name)
    if json:
        report = lab_down(lab, purge)
        print_json(
            {
                "ok": True,
                "lab": lab,
                "removed": [c.__dict__ for c in report.removed],
                "kept": report.kept,
                "seconds": round(report.seconds, 2),
            }
        )
        return
    with console.status(f"lab {lab}: removing", spinner="dots") as spinner:
        report = lab_down(lab, purge, lambda m: spinner.update(f"lab {lab}: {escape(m)}"))
    for c in report.removed:
        detail = f" ({escape(c.detail)})" if c.detail else ""
        console.print(f"  [red]{c.kind} {escape(c.name)}: {c.action}[/]{detail}", highlight=False)
    if not report.removed:
        console.print(f"lab {lab}: nothing to remove", highlight=False)
    else:
        console.print(
            f"lab {lab}: removed {len(report.removed)} objects in {report.seconds:.1f} s",
            highlight=False,
        )
    for k in report.kept:
        console.print(f"  kept: {escape(k)}", highlight=False)


@app.command()
def status(
    spec: SpecArg = None,
    name: NameOpt = None,
    probe: Annotated[
        bool, typer.Option("--probe/--no-probe", help="Ping each host from its router or a peer.")
    ] = True,
    json: JsonOpt = False,
) -> None:
    """Each host's state, addresses and reachability (ping from its router or a peer).

    Exits 1 unless every host is RUNNING and answers.
    """
    from infra.lab.lab import status as lab_status

    lab = _lab_name(spec, name)
    if json:
        st = lab_status(lab, probe=probe)
        print_json({"ok": st.healthy, **st.as_dict()})
        if not st.healthy:
            raise typer.Exit(EXIT_FAILED)
        return
    if not _show_status(lab, probe=probe):
        raise typer.Exit(EXIT_FAILED)


def _show_status(lab: str, *, probe: bool) -> bool:
    from infra.lab.lab import status as lab_status

    st = lab_status(lab, probe=probe)
    if not st.exists:
        console.print(f"lab {lab}: not up (`govcloud lab up` creates it)", highlight=False)
        return False
    table = Table(title=f"lab {lab}")
    for col in ("host", "role", "state", "addresses", "reachable"):
        table.add_column(col)
    for h in st.hosts:
        state = f"[green]{h.state}[/]" if h.state == "RUNNING" else f"[red]{h.state}[/]"
        if h.reachable is None:
            reach = "[dim]not probed[/]"
        elif h.reachable:
            how = ", ping filtered: arp" if h.probe == "arp" else ""
            reach = f"[green]yes[/] [dim](from {h.probed_from}{how})[/]"
        else:
            reach = f"[red]no[/] [dim](from {h.probed_from})[/]"
        table.add_row(h.name, h.role, state, ", ".join(h.addresses), reach)
    console.print(table)
    missing = [b for b, ok in st.bridges.items() if not ok]
    if missing:
        console.print(f"[red]missing bridges:[/] {', '.join(missing)}", highlight=False)
    return st.healthy
