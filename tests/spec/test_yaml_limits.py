"""Hostile YAML: every file govcloud reads from people is refused past its limits, quickly and
without its memory growing, while the generated specs (anchors included) load as before."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clusters.deploy.spec import load_app
from govcloud.errors import InputError, SpecError
from govcloud.spec.generate import dump, generate
from govcloud.spec.load import load_spec
from govcloud.yamlsafe import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, QUICK_BYTES, load_yaml
from loadtests.config import read_profiles

pytestmark = pytest.mark.unit

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


def alias_bomb(levels: int) -> str:
    """Nine levels: a list of nine strings, then each level a list of nine aliases of the one
    before (9**9 = 387,420,489 strings in under 1 KB)."""
    lines = ["lol1: &lol1 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(2, levels + 1):
        lines.append(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def refusal(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_yaml(path)
    text = info.value.render()
    assert str(path) in text
    return text


# The child runs the real CLI entry point on the file and reports its exit code, the time the
# command took (the interpreter's start-up is not the loader's) and its peak memory before and
# after, from getrusage in that process.
# The child's own peak memory: VmHWM of its address space. (ru_maxrss is not it: Linux carries
# the forking parent's peak across exec, so in a long test session it reports pytest's size.)
CHILD = """
import json, sys, time
def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from govcloud.cli import main
sys.argv = ["govcloud", *sys.argv[1:]]
before = peak_kb()
start = time.perf_counter()
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
took = time.perf_counter() - start
after = peak_kb()
print(json.dumps({"code": code, "seconds": took, "before_kb": before, "after_kb": after}))
"""


def run_cli(*args: str) -> tuple[dict[str, float], str]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=120
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report, proc.stderr


@pytest.mark.parametrize(("levels", "strings"), [(9, "387,420,489"), (11, "31,381,059,609")])
def test_alias_bomb_is_refused_in_a_second_without_memory(
    tmp_path: Path, levels: int, strings: str
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(levels), encoding="utf-8")
    assert bomb.stat().st_size < 1100
    assert f"{9**levels:,}" == strings
    report, stderr = run_cli("spec", "validate", str(bomb))
    assert report["code"] == 2
    assert report["seconds"] < 1.0
    assert report["after_kb"] - report["before_kb"] < 20_000  # the refusal grew nothing
    assert report["after_kb"] < 300_000
    assert str(bomb) in stderr and f"limit of {MAX_NODES:,}" in stderr
    assert "nodes once aliases are expanded" in stderr
    assert "Traceback" not in stderr and "internal error" not in stderr


def test_lab_and_guizhou_specs_load_as_with_the_plain_loader(tmp_path: Path) -> None:
    assert "&id001" in LAB.read_text(encoding="utf-8")  # the lab's shared departments lists
    plain = yaml.load(LAB.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    assert load_yaml(LAB) == plain
    assert load_spec(LAB).name == plain["name"]
    guizhou = tmp_path / "guizhou.yaml"
    guizhou.write_text(dump(generate("guizhou")), encoding="utf-8")
    assert guizhou.stat().st_size > QUICK_BYTES  # counted before it is composed
    assert load_yaml(guizhou) == yaml.load(guizhou.read_text(), Loader=yaml.CSafeLoader)


def test_a_file_past_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no time nor disk spent writing it
    text = refusal(big)
    assert f"{MAX_FILE_BYTES + 1:,} bytes" in text and f"limit of {MAX_FILE_BYTES:,}" in text


def test_a_dense_large_file_is_refused_by_counting_before_composing(tmp_path: Path) -> None:
    dense = tmp_path / "dense.yaml"  # 1.6 MB, 800,001 strings: no node built
    # (the parser's events bound the nodes from below by half: a list is two events)
    dense.write_text("[" + "a," * 800_000 + "a]\n", encoding="utf-8")
    start = time.perf_counter()
    text = refusal(dense)
    assert time.perf_counter() - start < 1.0
    assert f"at least 400,002 nodes, more than the limit of {MAX_NODES:,}" in text


def test_a_count_the_parser_cannot_settle_is_made_exactly(tmp_path: Path) -> None:
    # 360,000 events: as many nodes if they are strings, half as many if they were lists
    over = tmp_path / "over.yaml"
    over.write_text("".join("- a\n" for _ in range(360_000)), encoding="utf-8")
    assert f"at least {MAX_NODES + 1:,} nodes, more than the limit" in refusal(over)


def test_a_large_file_with_aliases_is_counted_as_it_is_parsed(tmp_path: Path) -> None:
    padded = tmp_path / "padded.yaml"
    filler = "".join(f"k{i}: value number {i}\n" for i in range(QUICK_BYTES // 20))
    padded.write_text(filler + alias_bomb(9), encoding="utf-8")
    assert padded.stat().st_size > QUICK_BYTES
    start = time.perf_counter()
    assert f"limit of {MAX_NODES:,}" in refusal(padded)
    assert time.perf_counter() - start < 1.0
    fine = tmp_path / "fine.yaml"
    fine.write_text(filler + "shared: &s [a, b]\nagain: *s\n", encoding="utf-8")
    assert load_yaml(fine)["again"] == ["a", "b"]


@pytest.mark.parametrize("large", [False, True])
def test_nesting_is_bounded_aliases_included(tmp_path: Path, large: bool) -> None:
    pad = "# " + "x" * QUICK_BYTES + "\n" if large else ""
    deep = tmp_path / "deep.yaml"
    deep.write_text(pad + "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n")
    assert f"more than the limit of {MAX_DEPTH} levels" in refusal(deep)
    chain = ["l0: &l0 [x]"] + [f"l{i}: &l{i} [*l{i - 1}]" for i in range(1, MAX_DEPTH + 5)]
    deep.write_text(pad + "\n".join(chain) + "\n")
    assert f"more than the limit of {MAX_DEPTH} levels" in refusal(deep)
    deep.write_text(pad + "a: " + "[" * 40 + "]" * 40 + "\n")
    assert load_yaml(deep)["a"] == [
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    ]


def test_libyaml_own_nesting_refusal_still_names_the_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("regions: " + "[" * 1100 + "]" * 1100 + "\n")
    with pytest.raises(SpecError, match="exceeded maximum nesting depth"):
        load_spec(deep)


@pytest.mark.parametrize("large", [False, True])
def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path, large: bool) -> None:
    loop = tmp_path / "loop.yaml"
    pad = "# " + "x" * QUICK_BYTES + "\n" if large else ""
    loop.write_text(pad + "a: &a [1, *a]\n")
    assert "data without end" in refusal(loop)


@pytest.mark.parametrize(
    "text", ["a: !!int x\n", "a: 2001-13-45\n", "a: !!timestamp x\n", "a: !!float y\n"]
)
def test_values_the_constructor_cannot_make_are_bad_input(tmp_path: Path, text: str) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(text)
    assert "malformed YAML" in refusal(path)


def test_app_specs_get_the_same_protection(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text("name: hall\n" + alias_bomb(9), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_app(app)
    text = info.value.render()
    assert text.startswith("invalid app spec") and str(app) in text
    assert f"limit of {MAX_NODES:,}" in text


def test_load_profiles_get_the_same_protection(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text("profiles:\n  x: &x [1]\n" + alias_bomb(9), encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_profiles(profiles)
    text = info.value.render()
    assert text.startswith("invalid load profiles") and str(profiles) in text
    assert f"limit of {MAX_NODES:,}" in text
