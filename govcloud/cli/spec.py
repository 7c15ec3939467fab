"""`govcloud spec`: validate, show and generate specs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from govcloud.cli.common import JsonOpt, SpecArg, console, print_json, read_spec, spec_path
from govcloud.errors import OperationError
from govcloud.spec.generate import PROFILES, dump, generate
from govcloud.spec.summary import summarize

app = typer.Typer(
    help="Validate, summarise and generate specs: the one description of the cloud.",
    no_args_is_help=True,
)


@app.command()
def validate(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Check a spec's shape and cross-references; report every problem with its path.

    Exits 0 when the spec is valid, 2 with the full list of problems otherwise.
    """
    s = read_spec(spec)
    if json:
        print_json(
            {
                "ok": True,
                "spec": str(spec_path(spec)),
                "name": s.name,
                "regions": {k.value: v for k, v in s.counts().items()},
            }
        )
    else:
        console.print(f"[green]valid[/]: {spec_path(spec)} ({s.name})", highlight=False)


@app.command()
def show(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Summarise a spec: sites per level, departments, data-center grade and capacity."""
    summary = summarize(read_spec(spec))
    if json:
        print_json(summary)
        return
    regions = Table(title=f"spec {summary['name']}: sites per level")
    regions.add_column("level")
    regions.add_column("sites", justify="right")
    for level, n in summary["regions"].items():
        regions.add_row(level, f"{n:,}")
    console.print(regions)
    d = summary["departments"]
    console.print(
        f"departments: {d['count']} ({d['administrative_items']:,} administrative + "
        f"{d['public_service_items']:,} public-service items); tenants ask "
        f"{d['tenant_cpu']:g} vCPU, {d['tenant_memory_gib']:g} GiB memory, "
        f"{d['tenant_storage_gib']:g} GiB storage"
    )
    dc = summary["datacenter"]
    table = Table(title=f"data center {dc['name']} (grade {dc['grade']}, GB 50174-2017)")
    table.add_column("item")
    table.add_column("value", justify="right")
    for key in (
        "rooms",
        "racks",
        "rack_kw",
        "hosts",
        "host_kw",
        "ups",
        "ups_usable_kw",
        "cooling",
        "cooling_usable_kw",
        "compute_vcpus",
        "compute_memory_gib",
        "storage_gib",
    ):
        value = dc[key]
        table.add_row(key, f"{value:,.1f}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command("generate")
def generate_cmd(
    profile: Annotated[
        str,
        typer.Option(
            help=f"One of: {', '.join(PROFILES)}. 'lab' is the "
            "small spec the lab runs; 'guizhou' a province "
            "at real scale."
        ),
    ] = "lab",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: standard output).")
    ] = None,
    scale: Annotated[float, typer.Option(help="Multiply the number of villages (guizhou).")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed for names and splits (guizhou).")] = None,
) -> None:
    """Write a deterministic spec for a profile (same options, same bytes)."""
    text = dump(generate(profile, scale=scale, seed=seed))
    if output is None:
        typer.echo(text, nl=False)
        return
    tmp = output.with_name(output.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OperationError(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"wrote {output} ({profile}, {len(text):,} bytes)", highlight=False)
