"""What every command shares: the SPEC argument, output helpers, exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from govcloud.spec import Spec, default_spec_path, load_spec

console = Console()
err_console = Console(stderr=True)

SpecArg = Annotated[
    Path | None,
    typer.Argument(
        help="The spec: a YAML file or a directory of YAML files. "
        "Defaults to $GOVCLOUD_SPEC, else the lab spec in examples/.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON only.")]


def spec_path(path: Path | None) -> Path:
    return path if path is not None else default_spec_path()


def read_spec(path: Path | None) -> Spec:
    return load_spec(spec_path(path))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
