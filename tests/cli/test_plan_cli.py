"""`govcloud plan`, `net show`, `dc show` as users run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from govcloud.spec.generate import generate
from tests.cli.test_spec_cli import govcloud

pytestmark = pytest.mark.unit


def test_plan_writes_every_file_and_replans_identically(tmp_path: Path) -> None:
    out = tmp_path / "plan"
    first = govcloud("plan", "-o", str(out), "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert {
        "network.json",
        "acl.csv",
        "datacenter.json",
        "inventory.yml",
        "nftables/core.nft",
    } <= set(doc["files"])
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert govcloud("plan", "-o", str(out)).returncode == 0
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    inventory = yaml.safe_load((out / "inventory.yml").read_text())
    assert "bastion" in inventory["all"]["children"]


def test_plan_refuses_an_isolation_breach_with_exit_2(tmp_path: Path) -> None:
    raw = generate("lab")
    raw["network"]["links"] = [["public", "intranet"]]
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(raw, allow_unicode=True))
    result = govcloud("plan", str(spec), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "network.links[0]" in result.stderr and "中办发" in result.stderr
    assert not (tmp_path / "out" / "network.json").exists()  # nothing half-written


def test_undersized_data_center_exits_1_naming_the_chain(tmp_path: Path) -> None:
    raw = generate("lab")
    raw["datacenter"]["cooling"]["unit_kw"] = 1
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(raw, allow_unicode=True))
    result = govcloud("dc", "show", str(spec))
    assert result.returncode == 1
    planned = govcloud("plan", str(spec), "-o", str(tmp_path / "o"))
    assert planned.returncode == 1 and "cooling capacity" in planned.stderr


def test_net_show_json_lists_levels_and_zones() -> None:
    result = govcloud("net", "show", "--json")
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["levels"]["village"]["sites"] == 16
    assert {z["name"] for z in doc["zones"]} >= {"management", "intranet", "sites"}


def test_plan_of_the_lab_spec_warns_of_no_shadowed_rule(tmp_path: Path) -> None:
    """Each department's drop of SSH narrows its accept of every TCP port: that is a note in
    the JSON, never a warning that the accept is shadowed."""
    lab = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
    human = govcloud("plan", str(lab), "-o", str(tmp_path / "human"))
    assert human.returncode == 0, human.stderr
    assert "shadowed" not in human.stderr and "warning" not in human.stderr
    as_json = govcloud("plan", str(lab), "-o", str(tmp_path / "json"), "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["warnings"] == []
    narrowed = [n for n in doc["notes"] if "partly overlaps the earlier drop rule" in n]
    departments = yaml.safe_load(lab.read_text(encoding="utf-8"))["departments"]
    assert departments and len(narrowed) == len(departments)
