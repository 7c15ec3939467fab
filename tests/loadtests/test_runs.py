"""Real locust runs against the real hall (PostgreSQL on loopback): the gate passes on a healthy
hall, fails naming level and endpoint on a slowed one, fails on the error ratio (not a hang) on a
stopped one; the open model keeps its offered rate, across worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clusters.apps.hall.devserver import LocalHall, LocalPostgres, http_json
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC
from loadtests.run import RunOptions, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _opts(hall: LocalHall, report: Path, **kw: object) -> RunOptions:
    base: dict[str, object] = {
        "spec": load_spec(LAB_SPEC),
        "profile": "workday",
        "target": hall.url,
        "admin_token": hall.admin_token,
        "report_dir": report,
        "echo": lambda _text: None,
        "locust_output": False,
    }
    base.update(kw)
    return RunOptions(**base)  # type: ignore[arg-type]


def test_closed_run_passes_its_gate_and_writes_the_report(
    no_faults: LocalHall, tmp_path: Path
) -> None:
    result = run(
        _opts(no_faults, tmp_path, users=15, duration="15s", think="0.2-0.6", sites_per_level=2)
    )
    assert result["ok"], result["breaches"]
    assert result["failures"] == 0 and result["requests"] > 150
    assert set(result["levels"]) == {"province", "city", "county", "township", "village"}
    for name in (
        "report.html",
        "latency.png",
        "throughput.png",
        "errors.png",
        "timeline.csv",
        "locust.html",
        "stats_stats.csv",
        "gate.json",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "SLO gate passed" in page and "county" in page
    header, *rows = (tmp_path / "timeline.csv").read_text().splitlines()
    assert header.startswith("t_s,level,requests") and len(rows) >= 5
    endpoints = {
        e["endpoint"] for e in json.loads((tmp_path / "gate.json").read_text())["endpoints"]
    }
    # every persona did its work: catalog, guides, applications, staff actions
    assert {"GET /api/sites/{site}/items", "GET /api/items/{item}", "POST /api/cases"} <= endpoints
    assert "POST /api/staff/cases/{code}/accept" in endpoints


def test_open_model_holds_the_offered_rate_over_two_processes(
    no_faults: LocalHall, tmp_path: Path
) -> None:
    result = run(_opts(no_faults, tmp_path, profile="soak", rate=40.0, duration="12s", processes=2))
    assert result["ok"], result["breaches"]
    # the soak curve sits at the peak after 2 % of the run: 40 requests/s offered. Worker
    # processes start a moment after the master's clock, so judge a full bucket mid-run.
    per_bucket: dict[str, float] = {}
    for line in (tmp_path / "timeline.csv").read_text().splitlines()[1:]:
        t, _level, n, *_ = line.split(",")
        per_bucket[t] = per_bucket.get(t, 0) + int(n) / 5
    mid = sorted(per_bucket, key=float)[1]
    assert 0.75 * 40 <= per_bucket[mid] <= 1.25 * 40, per_bucket


def test_slowed_endpoint_fails_the_gate_naming_level_and_endpoint(
    no_faults: LocalHall, tmp_path: Path
) -> None:
    hall = no_faults
    status, _ = http_json(
        "PUT", hall.url + "/api/admin/faults", {"faults": "guide:700@county"}, hall.admin_token
    )
    assert status == 200
    env = {**os.environ, "GOVCLOUD_HALL_ADMIN_TOKEN": hall.admin_token}
    cmd = [
        sys.executable,
        "-m",
        "govcloud",
        "loadtest",
        "run",
        "--target",
        hall.url,
        "--rate",
        "30",
        "--profile",
        "soak",
        "--duration",
        "15s",
        "--min-requests",
        "20",
        "--report",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "SLO gate FAILED" in out
    assert "county · GET /api/items/{item}: p95" in out
    gate = json.loads((tmp_path / "gate.json").read_text())
    assert {b["level"] for b in gate["breaches"]} == {"county"}
    assert all(b["endpoint"] in (None, "GET /api/items/{item}") for b in gate["breaches"])


def test_stopped_hall_fails_on_the_error_ratio_not_a_hang(
    pg: LocalPostgres, seeded: dict[str, int], tmp_path: Path
) -> None:
    gone = LocalHall(pg).start()
    gone.stop()
    started = time.monotonic()
    result = run(_opts(gone, tmp_path, users=8, duration="8s", think="0.2-0.5"))
    assert time.monotonic() - started < 60
    assert not result["ok"]
    assert result["requests"] > 0 and result["failures"] == result["requests"]
    assert any("error ratio 100.00% > 1.00%" in b for b in result["breaches"])


def test_citizens_in_a_browser_load_pages_and_assets_counted_apart(
    no_faults: LocalHall, tmp_path: Path
) -> None:
    result = run(
        _opts(no_faults, tmp_path, users=12, duration="12s", think="0.2-0.5", sites_per_level=2)
    )
    assert result["ok"], result["breaches"]
    gate = json.loads((tmp_path / "gate.json").read_text())
    kinds = gate["kinds"]
    assert set(kinds) == {"page", "asset", "api"}
    assert kinds["page"]["requests"] > 20 and kinds["page"]["failures"] == 0
    assert kinds["api"]["requests"] > kinds["page"]["requests"] / 4  # apps and staff tools
    # a browser fetches each asset once and then has it cached: far fewer than page loads
    assert 0 < kinds["asset"]["requests"] < kinds["page"]["requests"]
    endpoints = {e["endpoint"] for e in gate["endpoints"]}
    assert {"PAGE GET /sites/{site}", "PAGE GET /items/{item}"} <= endpoints
    assert "ASSET GET /static/hall.css" in endpoints
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Page loads and API calls" in page and "page loads" in page
