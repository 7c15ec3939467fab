"""The online hall on the lab's hall hosts (issue 9, lab part): hall.yml converges and a second
run changes nothing; its secrets stay on the controller; the hall answers on the planned path
(from the hall LANs, not from a department's office) with the catalog seeded from the spec; a
workday load test from a hall LAN passes its gate and writes the report; a stopped hall host
fails the gate on the error ratio, not a hang.

Run with GOVCLOUD_KEEP_LAB=1 (the lab is shared): pytest -m integration tests/hall/test_lab_hall.py
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from clusters.apps.hall.devserver import http_json
from infra.hosts.apply import HALL_SEED_PLAN, hall_secrets_dir
from infra.hosts.runner import RunResult, run_playbook
from infra.lab.lab import Lab
from loadtests.labsource import host_pid, network_namespace, source_pid
from loadtests.run import RunOptions, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HALLS = ("hall-1", "hall-2")


@pytest.fixture(scope="module")
def halls(configured_lab: tuple[Any, Any]) -> tuple[Any, RunResult]:
    """The hall play applied to the configured lab, with that run's result."""
    target, _ = configured_lab
    first = run_playbook("hall.yml", target.inventory, target.connection)
    assert first.ok, [f.__dict__ for f in first.failures]
    return target, first


def _urls(target: Any) -> dict[str, str]:
    return {h.name: f"http://{h.address}" for h in target.plan.hosts if h.role == "hall"}


def _wait_ready(target: Any, host: str, seconds: float = 120) -> None:
    url = _urls(target)[host]
    spec = target.plan.spec
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        with network_namespace(source_pid(spec, "probe-province"), "probe-province"):
            try:
                status, body = http_json("GET", url + "/readyz", timeout=3)
                if status == 200:
                    return
                last = (status, body)
            except OSError as exc:
                last = exc
        time.sleep(2)
    raise AssertionError(f"{host} not ready after {seconds:.0f} s: {last}")


def test_the_hall_play_converges_and_a_second_run_changes_nothing(
    halls: tuple[Any, RunResult],
) -> None:
    target, first = halls
    assert set(first.hosts) == set(HALLS)
    second = run_playbook("hall.yml", target.inventory, target.connection)
    assert second.ok, [f.__dict__ for f in second.failures]
    assert second.changed == 0, {h.host: h.changed for h in second.hosts.values() if h.changed}


def test_secrets_are_generated_on_the_controller_and_kept_out_of_git(
    halls: tuple[Any, RunResult],
) -> None:
    secrets = hall_secrets_dir()
    assert secrets.stat().st_mode & 0o777 == 0o700
    for name in ("admin-token", "metrics-token", "db-password"):
        path = secrets / name
        assert path.stat().st_mode & 0o777 == 0o600, name
        assert len(path.read_text().split()[0]) >= 32
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(path)], cwd=Path(__file__).parents[2], check=False
        )
        assert ignored.returncode == 0, f"{path} is not ignored by git"
    # on a hall host the secrets are in the settings file only, readable by the service account
    lab = Lab(halls[0].plan.spec.name)
    env_file = "/etc/govcloud/hall/hall.env"
    mode = lab.exec("hall-1", ["stat", "-c", "%a %U:%G", env_file]).stdout.split()
    assert mode == ["640", "root:govcloud-hall"]


def test_the_hall_answers_on_the_planned_path_with_the_seeded_catalog(
    halls: tuple[Any, RunResult],
) -> None:
    target, _ = halls
    spec = target.plan.spec
    plan = json.loads((target.plan_dir / HALL_SEED_PLAN).read_text(encoding="utf-8"))
    expected = {s["code"]: sum(b["count"] for b in s["items"]) for s in plan["sites"]}
    # from the province hall's LAN (through the core router) and a village station's (through
    # the city router too): flow halls-to-online-hall
    for source in ("probe-province", "probe-village"):
        with network_namespace(source_pid(spec, source), source):
            for host, url in _urls(target).items():
                status, body = http_json("GET", url + "/readyz", timeout=5)
                assert (status, body["status"]) == (200, "ready"), (source, host, body)
                for code, count in expected.items():
                    status, site = http_json("GET", f"{url}/api/sites/{code}", timeout=5)
                    assert status == 200 and site["items"] == count, (source, host, code, site)
                status, page = http_json("GET", f"{url}/api/sites/52/items?limit=5", timeout=5)
                assert status == 200 and len(page["items"]) == 5
                # the catalog is public; everything else wants a token
                status, _ = http_json("GET", f"{url}/api/my/cases", timeout=5)
                assert status == 401
    # a department's office has no flow to the halls: the hall host's own ruleset drops it
    with network_namespace(host_pid(spec, "probe-gat"), "probe-gat"):
        host = next(iter(_urls(target).values())).removeprefix("http://")
        with pytest.raises(OSError), socket.create_connection((host, 80), timeout=2):
            pass


def test_a_workday_run_from_a_hall_lan_passes_its_gate_and_writes_the_report(
    halls: tuple[Any, RunResult], tmp_path: Path
) -> None:
    target, _ = halls
    result = run(
        RunOptions(
            spec=target.plan.spec,
            profile="workday",
            target="lab",
            duration="30s",
            report_dir=tmp_path,
            echo=lambda _t: None,
            locust_output=False,
        )
    )
    assert result["ok"], result["breaches"]
    assert all(f["requests"] > 0 for f in result["levels"].values()), result["levels"]
    assert result["failures"] == 0
    for name in ("report.html", "locust.html", "timeline.csv", "stats_stats.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    for name in ("latency.png", "throughput.png", "errors.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "10.255.1.10" in html and "10.255.1.11" in html


def test_a_stopped_hall_host_fails_on_the_error_ratio_not_a_hang(
    halls: tuple[Any, RunResult], tmp_path: Path
) -> None:
    target, _ = halls
    lab = Lab(target.plan.spec.name)
    victim = lab.container("hall-2")
    lab.lxc.stop(victim, kill=True)
    try:
        started = time.monotonic()
        result = run(
            RunOptions(
                spec=target.plan.spec,
                profile="workday",
                target="lab",
                users=8,
                duration="10s",
                think="0.2-0.5",
                report_dir=tmp_path,
                echo=lambda _t: None,
                locust_output=False,
            )
        )
        assert time.monotonic() - started < 120
    finally:
        lab.lxc.start(victim)
        _wait_ready(target, "hall-2")
    assert not result["ok"]
    assert result["requests"] > 0 and 0 < result["failures"] < result["requests"]
    assert any("error ratio" in b for b in result["breaches"]), result["breaches"]
    assert (tmp_path / "report.html").is_file()
