"""Random YAML of random shapes through every command that reads a spec (and `app deploy
--dry-run`, which reads an app spec): each exits 0, 1 or 2 with a message, never a traceback and
never an internal error. The commands run in this process through the real entry point
(`govcloud.cli.main`), so a few hundred runs take seconds."""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govcloud.cli import main
from govcloud.spec.generate import generate

pytestmark = pytest.mark.unit

HALL_APP = Path(__file__).resolve().parents[2] / "clusters" / "apps" / "hall" / "app.yaml"

# every command that reads a spec and touches nothing outside the output directory
SPEC_COMMANDS: list[list[str]] = [
    ["spec", "validate"],
    ["spec", "validate", "--json"],
    ["spec", "show"],
    ["spec", "show", "--json"],
    ["plan", "-o", "{out}"],
    ["net", "show"],
    ["dc", "show"],
    ["identity", "plan"],
    ["tenants", "plan"],
    ["tenants", "render", "-o", "{out}"],
    ["loadtest", "seed-plan"],
    ["loadtest", "capacity"],
    ["loadtest", "capacity", "--json"],
]


def run(args: list[str]) -> tuple[int, str]:
    """One command through the entry point users run: its exit code and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["govcloud", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue() + err.getvalue()


def assert_clean(args: list[str]) -> None:
    code, output = run(args)
    assert code in (0, 1, 2), (args, code, output)
    assert "Traceback" not in output and "internal error" not in output, (args, output)
    if code != 0:
        assert output.strip(), (args, "no message")


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["52", "5201", "lab", "B", "N+1", "10.0.0.0/8", "prod", "2001-13-45"]),
)
KEYS = ["name", "version", "regions", "departments", "datacenter", "identity", "network", "load"]
KEYS += ["cities", "code", "hall", "sizing", "power", "image", "replicas", "ports"]
keys = st.one_of(
    st.sampled_from(KEYS), st.text(max_size=8), st.integers(min_value=-5, max_value=100)
)
shapes = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)

# pieces of YAML syntax spliced into the text at random places
JUNK = [
    "&a ", "*a", "*b", "!!int ", "!!float ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ",
    "!!python/object:os.system ", "<<: *a\n", "{", "}", "[", "]", ": ", "- ", "? ", ",",
    "\t", "\n", "---\n", "...\n", "%YAML 1.1\n", "'", '"', "|\n", ">\n", "#", "~", "\\x00",
    "2001-13-45", "0x1G", "1e999", "\ufeff", "[" * 200 + "]" * 200,
]  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["shape", "lab", "anchored"]))
    if kind == "lab":  # the lab spec with one part swapped for a random shape
        data: Any = generate("lab")
        node = data
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node, key=str)))
                if draw(st.booleans()) or not isinstance(node[key], dict | list):
                    node[key] = draw(shapes)
                    break
                node = node[key]
            elif isinstance(node, list) and node:
                i = draw(st.integers(min_value=0, max_value=len(node) - 1))
                if draw(st.booleans()) or not isinstance(node[i], dict | list):
                    node[i] = draw(shapes)
                    break
                node = node[i]
    else:
        data = draw(shapes)
    if kind == "anchored":  # the same object twice: the dumper writes an anchor and an alias
        shared = draw(shapes)
        data = {"name": "lab", "a": shared, "b": [shared, shared]}
    text = yaml.safe_dump(
        data, default_flow_style=draw(st.sampled_from([False, True, None])), allow_unicode=True
    )
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.sampled_from(JUNK)) + text[at:]
    return text


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=documents())
def test_every_command_that_reads_a_spec_fails_cleanly(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp, "spec.yaml")
        spec.write_text(text, encoding="utf-8")
        for args in SPEC_COMMANDS:
            assert_clean([a.format(out=Path(tmp, "out")) for a in args] + [str(spec)])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents(), app_base=st.booleans())
def test_app_deploy_dry_run_fails_cleanly(text: str, app_base: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp, "app.yaml")
        if app_base:  # the hall's app spec with random YAML appended (keys overridden or junk)
            text = HALL_APP.read_text(encoding="utf-8") + text
        app.write_text(text, encoding="utf-8")
        assert_clean(["app", "deploy", str(app), "--dry-run"])


def test_the_runner_sees_what_users_see(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n", encoding="utf-8")
    code, output = run(["spec", "validate", str(bad)])
    assert code == 2 and "malformed YAML" in output and str(bad) in output
