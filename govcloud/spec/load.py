"""Reading a spec: YAML from one file or a directory of files, then shape and cross-checks."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from govcloud.errors import InputError, Problem, SpecError
from govcloud.spec.checks import check
from govcloud.spec.model import SLUG_PATTERN, Spec
from govcloud.yamlsafe import load_yaml

SPEC_ENV = "GOVCLOUD_SPEC"
_REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_SPEC = _REPO_ROOT / "examples" / "lab.yaml"


def default_spec_path() -> Path:
    """Where a command finds its spec when none is given: ``$GOVCLOUD_SPEC``, else the lab spec."""
    env = os.environ.get(SPEC_ENV)
    return Path(env) if env else LAB_SPEC


def _read_yaml(path: Path) -> dict[str, Any]:
    data = load_yaml(path, error=SpecError)
    if data is None:
        raise SpecError(
            [
                Problem(
                    "",
                    "the file is empty: expected a mapping of spec sections "
                    "(name, regions, departments, datacenter, identity, ...)",
                    str(path),
                )
            ]
        )
    if not isinstance(data, dict):
        raise SpecError(
            [
                Problem(
                    "", f"expected a mapping at the top level, got {type(data).__name__}", str(path)
                )
            ]
        )
    return data


def read_documents(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The raw spec mapping and, for each top-level key, the file it came from."""
    if not path.exists():
        raise InputError(
            [
                Problem(
                    "",
                    "no such file or directory (expected a spec YAML file or a directory of them)",
                    str(path),
                )
            ],
            title="spec not found",
        )
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise SpecError([Problem("", "the directory holds no .yaml or .yml file", str(path))])
    else:
        files = [path]
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    problems: list[Problem] = []
    for f in files:
        for key, value in _read_yaml(f).items():
            if key in merged:
                problems.append(Problem(str(key), f"defined twice, also in {origin[key]}", str(f)))
                continue
            merged[key] = value
            origin[str(key)] = str(f)
    if problems:
        raise SpecError(problems)
    return merged, origin


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(err: Any) -> str:
    kind = err["type"]
    got = err.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check its spelling against the spec reference)"
    if kind == "string_type":
        return f"expected a string (quote it in YAML), got {type(got).__name__} {got!r}"
    if kind == "literal_error" or kind == "enum":
        return f"expected {err['ctx'].get('expected', 'one of the allowed values')}, got {got!r}"
    if kind == "string_pattern_mismatch":
        if err["ctx"]["pattern"] == SLUG_PATTERN:
            return (
                "expected 2-32 lower-case letters, digits or dashes, starting with a letter "
                f"and not ending with a dash, got {got!r}"
            )
        return f"expected text matching {err['ctx']['pattern']}, got {got!r}"
    msg: str = err["msg"]
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return f"expected {msg.removeprefix('Input should be ')}, got {got!r}"
    return f"{msg}, got {got!r}"


def parse(data: dict[str, Any], origin: dict[str, str] | None = None) -> Spec:
    """Validate a raw mapping into a :class:`Spec`; :class:`SpecError` lists every problem."""
    origin = origin or {}
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(
                format_loc(e["loc"]),
                _message(e),
                origin.get(str(e["loc"][0])) if e["loc"] else None,
            )
            for e in exc.errors(include_url=False)
        ]
        raise SpecError(problems) from None
    problems = check(spec)
    if problems:
        raise SpecError(
            [
                Problem(p.path, p.message, origin.get(p.path.split(".")[0].split("[")[0]))
                for p in problems
            ]
        )
    return spec


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building a province's worth of small objects triggers the cyclic collector again and
    again over a growing heap; none of them form cycles, so collection waits until the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_spec(path: Path | str | None = None) -> Spec:
    """Read, validate and cross-check a spec; raises :class:`SpecError` listing every problem."""
    with _gc_paused():
        data, origin = read_documents(Path(path) if path is not None else default_spec_path())
        return parse(data, origin)
