"""The load suites and the hall on this machine.

1. Suite efficiency: requests per CPU-second of the locust process, our suite (persona class
   with catch_response checks, per-level names, the timeline listener, the shape, the gate)
   against a bare ``FastHttpUser`` loop, both hitting the same endpoint (the public catalog of one
   county) of the same hall in the same run. Goal (issue 9): at least 70 %.
2. The hall's sustained rate: the open model at rising arrival rates with the mixed workload of
   all personas and levels; the highest rate held with p95 <= 200 ms and no errors. Reported,
   not checked: the issue's goal (600 requests/s) is for the lab's hall hosts; here the app,
   PostgreSQL, locust and everything else running on the machine share its cores.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Result
from clusters.apps.hall.devserver import LocalHall, LocalPostgres
from clusters.hallseed import seed_plan
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC
from loadtests.config import CONFIG_ENV
from loadtests.run import RunOptions, build_config
from loadtests.run import run as run_loadtest

ENDPOINT = "/api/sites/520102/items"
SECONDS = 10
USERS = 8

# CPU of the locust process from test start to test stop (startup and imports excluded)
CPU_METER = """
import os as _os
import time as _time

from locust import events as _events

_cpu = {}


@_events.test_start.add_listener
def _cpu_start(**_kw):
    _cpu["start"] = _time.process_time()


@_events.test_stop.add_listener
def _cpu_stop(**_kw):
    with open(_os.environ["BENCH_CPU_FILE"], "w") as fh:
        fh.write(str(_time.process_time() - _cpu["start"]))
"""

BARE = (
    CPU_METER
    + f'''
from locust import FastHttpUser, constant, task


class Bare(FastHttpUser):
    wait_time = constant(0)

    @task
    def catalog(self):
        self.client.get("{ENDPOINT}")
'''
)

OURS = (
    CPU_METER
    + """
from loadtests.locustfile import *  # noqa: F401,F403  the suite: shape, timeline, gate
from loadtests.personas import Kiosk


class CatalogKiosk(Kiosk):
    tasks = [Kiosk.browse_catalog]


del Kiosk
"""
)


def _locust(locustfile: Path, url: str, report: Path, env: dict[str, str], shape: bool) -> float:
    """Run locust; return requests per CPU-second of its process."""
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary"]
    cmd += ["--csv", str(report / "stats"), "-H", url, "--loglevel", "ERROR"]
    if not shape:
        cmd += ["-u", str(USERS), "-r", str(USERS), "-t", f"{SECONDS}s"]
    cpu_file = report / "cpu.txt"
    cpu_file.unlink(missing_ok=True)
    subprocess.run(
        cmd,
        env={**env, "BENCH_CPU_FILE": str(cpu_file)},
        capture_output=True,
        timeout=SECONDS + 60,
        check=False,
    )
    cpu = float(cpu_file.read_text())
    with open(report / "stats_stats.csv", newline="") as fh:
        total = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return int(total["Request Count"]) / cpu


def _efficiency(hall: LocalHall, tmp: Path) -> dict[str, float]:
    spec = load_spec(LAB_SPEC)
    opts = RunOptions(spec=spec, duration=f"{SECONDS}s", users=USERS, think="0-0")
    cfg = build_config(opts, [hall.url], tmp / "ours")
    cfg.sites = {lv: (["520102"] if lv == "county" else []) for lv in cfg.sites}
    cfg.level_mix = {lv: (1.0 if lv == "county" else 0.0) for lv in cfg.level_mix}
    cfg.personas = {p: (1.0 if p == "kiosk" else 0.0) for p in cfg.personas}
    cfg.points = [(0.0, 1.0), (1.0, 1.0)]
    for d in ("bare", "ours"):
        (tmp / d).mkdir(exist_ok=True)
    cfg.report_dir = str(tmp / "ours")
    (tmp / "config.json").write_text(cfg.to_json())
    (tmp / "bare.py").write_text(BARE)
    (tmp / "ours.py").write_text(OURS)
    env = dict(os.environ)
    env[CONFIG_ENV] = str(tmp / "config.json")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    bare, ours = [], []
    for _ in range(2):  # alternate, keep the best of each: the machine is shared
        bare.append(_locust(tmp / "bare.py", hall.url, tmp / "bare", env, shape=False))
        ours.append(_locust(tmp / "ours.py", hall.url, tmp / "ours", env, shape=True))
    gate = json.loads((tmp / "ours" / "gate.json").read_text())
    assert gate["levels"]["county"]["requests"] > 0
    return {
        "bare_req_per_cpu_s": round(max(bare)),
        "ours_req_per_cpu_s": round(max(ours)),
        "efficiency": round(max(ours) / max(bare), 3),
    }


def _sustained(hall: LocalHall, tmp: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    spec = load_spec(LAB_SPEC)
    steps = []
    best: dict[str, Any] = {"rate": 0, "rps": 0.0, "p95_ms": None}
    for rate in (50, 100, 150, 200, 300):
        result = run_loadtest(
            RunOptions(
                spec=spec,
                profile="soak",
                target=hall.url,
                rate=float(rate),
                duration="15s",
                admin_token=hall.admin_token,
                report_dir=tmp / f"rate-{rate}",
                slo=["p95=200"],
                echo=lambda _t: None,
                locust_output=False,
            )
        )
        p95 = max(f["p95_ms"] for f in result["levels"].values())
        step = {"rate": rate, "rps": result["rps"], "p95_ms": p95, "failures": result["failures"]}
        steps.append(step)
        if result["failures"] == 0 and p95 <= 200:
            best = step
        else:
            break
    return best, steps


def run_bench() -> Result:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pg = LocalPostgres().start()
        try:
            hall = LocalHall(pg, extra_env={"HALL_ACCESS_LOG": "off", "HALL_DB_POOL": "20"})
            hall.seed(seed_plan(load_spec(LAB_SPEC)))
            hall.start()
            try:
                eff = _efficiency(hall, tmp)
                best, steps = _sustained(hall, tmp)
            finally:
                hall.stop()
        finally:
            pg.stop()
    figures: dict[str, float | int | str] = {
        **eff,
        "cores": os.cpu_count() or 0,
        "sustained_rate": best["rate"],
        "sustained_rps": best["rps"],
        "sustained_p95_ms": best["p95_ms"] if best["p95_ms"] is not None else "n/a",
        "steps": json.dumps(steps),
    }
    return Result(
        "load suite and hall (local)",
        figures,
        {
            "suite at least 70% of a bare FastHttpUser loop per core": eff["efficiency"] >= 0.7,
        },
    )


def run() -> Result:
    return run_bench()
