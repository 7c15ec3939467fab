"""`govcloud spec` as users run it: a real process, its exit code and its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from govcloud.spec.generate import dump, generate

pytestmark = pytest.mark.unit


def govcloud(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govcloud", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_guizhou_generate_validate_show(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    assert govcloud("spec", "generate", "--profile", "guizhou", "-o", str(out)).returncode == 0
    assert govcloud("spec", "validate", str(out)).returncode == 0
    shown = govcloud("spec", "show", str(out), "--json")
    assert shown.returncode == 0
    summary = json.loads(shown.stdout)
    assert summary["regions"]["village"] == 17342
    assert summary["departments"]["count"] == 59
    human = govcloud("spec", "show", str(out))
    assert "17,342" in human.stdout and "59" in human.stdout


def test_lab_spec_in_examples_is_the_generated_one() -> None:
    committed = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
    assert committed.read_text(encoding="utf-8") == dump(generate("lab"))


def test_default_spec_comes_from_the_environment(tmp_path: Path) -> None:
    import os

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n", encoding="utf-8")
    env = {**os.environ, "GOVCLOUD_SPEC": str(bad)}
    result = govcloud("spec", "validate", env=env)
    assert result.returncode == 2
    assert str(bad) in result.stderr


BROKEN = {
    "malformed.yaml": ("name: lab\nregions: {52: [\n", "malformed YAML: line 3"),
    "empty.yaml": ("", "the file is empty"),
    "list.yaml": ("- a\n- b\n", "expected a mapping at the top level, got list"),
    "tab.yaml": ("name: lab\n\tregions: x\n", "malformed YAML"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_exit_2_naming_the_file(tmp_path: Path, name: str) -> None:
    text, expected = BROKEN[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = govcloud("spec", "validate", str(path))
    assert result.returncode == 2
    assert expected in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_broken_spec_json_lists_every_problem(tmp_path: Path) -> None:
    raw = generate("lab")
    raw["regions"]["52"]["cities"][0]["code"] = "5301"
    raw["datacenter"]["power"]["ups"]["redundancy"] = "N"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = govcloud("spec", "validate", str(path), "--json")
    assert result.returncode == 2
    doc = json.loads(result.stdout)  # JSON only on stdout
    paths = {p["path"] for p in doc["problems"]}
    assert {"regions.52.cities[0].code", "datacenter.power.ups.redundancy"} <= paths
    assert doc["ok"] is False


def test_directory_spec_merges_sections_and_refuses_duplicates(tmp_path: Path) -> None:
    raw = generate("lab")
    (tmp_path / "10-regions.yaml").write_text(
        yaml.safe_dump({"name": raw["name"], "regions": raw["regions"]}, allow_unicode=True)
    )
    rest = {k: v for k, v in raw.items() if k not in ("name", "regions")}
    (tmp_path / "20-rest.yml").write_text(yaml.safe_dump(rest, allow_unicode=True))
    assert govcloud("spec", "validate", str(tmp_path)).returncode == 0
    (tmp_path / "30-again.yaml").write_text(yaml.safe_dump({"name": "other"}))
    result = govcloud("spec", "validate", str(tmp_path))
    assert result.returncode == 2
    assert "30-again.yaml: name: defined twice, also in" in result.stderr


def test_missing_spec_and_bad_options(tmp_path: Path) -> None:
    missing = govcloud("spec", "show", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    bad_profile = govcloud("spec", "generate", "--profile", "atlantis")
    assert bad_profile.returncode == 2 and "--profile: expected one of lab, guizhou" in (
        bad_profile.stderr
    )


def test_help_explains_each_command() -> None:
    top = govcloud("--help")
    assert top.returncode == 0 and "spec" in top.stdout and "Exit codes" in top.stdout
    sub = govcloud("spec", "validate", "--help")
    assert "every problem" in sub.stdout and "GOVCLOUD_SPEC" in sub.stdout
