"""`govcloud loadtest capacity` as users run it: a real process, its exit code and its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

# pinned load, so the figures do not follow edits of the lab spec's load section
PINNED = ["--rate", "100", "--surge-factor", "8", "--level-mix", "province=1,county=3"]


def govcloud(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govcloud", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def costs_file(path: Path, **over: Any) -> Path:
    data = {
        "format": "govcloud-cpu-costs",
        "version": 1,
        "measured": {"at": "2026-12-01", "where": "test"},
        "hall": {"ms": 5.0},
        "postgresql": {"ms": 1.0},
        "nginx": {"ms": 0.5},
        **over,
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_capacity_json_by_hand(tmp_path: Path) -> None:
    """800/s at the surge; a 1-CPU replica at 5 ms serves 200/s, 100/s at 50 %: province 200/s
    → 2 replicas, county 600/s → 6; PostgreSQL 800 × 1 ms / 0.5 = 1.6 cores; 9.6 cores on
    nodes of 4 → 3 nodes."""
    costs = costs_file(tmp_path / "costs.json")
    r = govcloud(
        "loadtest", "capacity", "--json", "--costs", str(costs), *PINNED,
        "--replica-cpu", "1000m", "--utilisation", "0.5", "--node-cores", "4",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is True
    by = {lp["level"]: lp for lp in out["levels"]}
    assert by["province"]["surge_rps"] == pytest.approx(200)
    assert by["province"]["hall_replicas"] == 2
    assert by["county"]["hall_replicas"] == 6
    assert out["total"]["hall_replicas"] == 8
    assert out["total"]["postgresql_cores"] == pytest.approx(1.6)
    assert out["total"]["node_cores"] == pytest.approx(9.6)
    assert out["total"]["nodes"] == 3
    assert out["costs"]["source"] == str(costs)
    assert out["sizes"]["replica_cpu"] == 1.0


def test_capacity_default_spec_and_table() -> None:
    r = govcloud("loadtest", "capacity", *PINNED)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    for word in ("province", "county", "total", "replicas", "nodes", "built-in", "4.1 ms"):
        assert word in text
    assert "prediction" in text
    j = govcloud("loadtest", "capacity", "--json", *PINNED)
    out = json.loads(j.stdout)
    # the built-in figures: 800/s × 4.1 ms / 0.6 = 5.47 hall cores
    assert out["total"]["hall_cores"] == pytest.approx(800 * 4.1 / 1000 / 0.6, abs=0.01)
    assert out["prediction"]["held_rps"]["2"] > out["prediction"]["held_rps"]["1"]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"hall": {"classes": {"page": {"ms": 1, "share": 1}}}}, "hall.classes.static"),
        ({"postgresql": {"ms": 0}}, "postgresql.ms"),
        ({"nginx": {"ms": -0.3}}, "nginx.ms"),
    ],
)
def test_bad_costs_exit_2_naming_file_and_field(
    tmp_path: Path, over: dict[str, Any], field: str
) -> None:
    costs = costs_file(tmp_path / "costs.json", **over)
    r = govcloud("loadtest", "capacity", "--costs", str(costs))
    assert r.returncode == 2
    assert str(costs) in r.stderr and field in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    j = govcloud("loadtest", "capacity", "--json", "--costs", str(costs))
    assert j.returncode == 2
    problem = json.loads(j.stdout)["problems"][0]
    assert problem["path"] == field and problem["source"] == str(costs)


def test_malformed_costs_and_options(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    r = govcloud("loadtest", "capacity", "--costs", str(broken))
    assert r.returncode == 2 and str(broken) in r.stderr and "not JSON" in r.stderr
    assert "Traceback" not in r.stderr
    for args, field in (
        (["--replica-cpu", "half"], "--replica-cpu"),
        (["--utilisation", "1.5"], "--utilisation"),
        (["--node-cores", "0"], "--node-cores"),
        (["--rate", "-5"], "--rate"),
    ):
        r = govcloud("loadtest", "capacity", *args)
        assert r.returncode == 2, args
        assert field in r.stderr and "Traceback" not in r.stderr
