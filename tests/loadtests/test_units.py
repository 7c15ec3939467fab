"""Pure parts of the load suites: profiles, curves, options, the gate, the timeline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from locust.stats import RequestStats

from govcloud.errors import InputError
from govcloud.spec import Spec
from loadtests.config import (
    LevelSlo,
    curve_at,
    parse_duration,
    read_profiles,
    resolve_points,
)
from loadtests.gate import evaluate
from loadtests.run import RunOptions, build_config, parse_mix, parse_slo, sites_by_level
from loadtests.timeline import Timeline, percentile

pytestmark = pytest.mark.unit

SLO = {
    lv: LevelSlo(500, 1500, 0.01) for lv in ("province", "city", "county", "township", "village")
}


def test_profiles_file_is_valid_and_surge_is_a_multiple_of_the_peak() -> None:
    data = read_profiles()
    assert {"workday", "surge", "soak"} <= set(data["profiles"])
    surge = resolve_points(data["profiles"]["surge"]["points"], 8.0)
    assert max(v for _, v in surge) == 8.0 and surge[0][1] == 1.0
    workday = resolve_points(data["profiles"]["workday"]["points"], 8.0)
    assert max(v for _, v in workday) == 1.0  # the peak is the morning peak


def test_bad_profile_file_names_the_point(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"profiles": {"x": {"points": [[0, 1], [0.5, -1], [1, 1]]}}}))
    with pytest.raises(ValueError, match=r"profiles\.x\.points\[1\]"):
        read_profiles(path)
    path.write_text(yaml.safe_dump({"profiles": {"x": {"points": [[0.2, 1], [1, 1]]}}}))
    with pytest.raises(ValueError, match="start at t=0"):
        read_profiles(path)


def test_curve_interpolates_and_clamps() -> None:
    pts = [(0.0, 0.0), (0.5, 10.0), (1.0, 10.0)]
    assert curve_at(pts, 0.25) == 5.0
    assert curve_at(pts, 0.75) == 10.0
    assert curve_at(pts, -1) == 0.0 and curve_at(pts, 2) == 10.0


def test_durations() -> None:
    assert parse_duration("60s") == 60 and parse_duration("15m") == 900
    assert parse_duration("2h") == 7200 and parse_duration("90") == 90
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")


def test_slo_overrides() -> None:
    out = parse_slo(["p95=300", "county:p99=800,village:err=0.05"], SLO)
    assert out["city"].p95_ms == 300 and out["county"].p95_ms == 300
    assert out["county"].p99_ms == 800 and out["city"].p99_ms == 1500
    assert out["village"].error_ratio == 0.05 and out["county"].error_ratio == 0.01
    assert SLO["city"].p95_ms == 500  # the base is not changed
    with pytest.raises(InputError, match="unknown level"):
        parse_slo(["town:p95=1"], SLO)
    with pytest.raises(InputError, match="p95=MS"):
        parse_slo(["p90=1"], SLO)
    with pytest.raises(InputError, match="out of range"):
        parse_slo(["err=2"], SLO)


def test_level_mix_override_is_normalised() -> None:
    base = {"province": 0.08, "city": 0.2, "county": 0.4, "township": 0.22, "village": 0.1}
    mix = parse_mix("county=3,city=1", base)
    assert mix == {"province": 0, "city": 0.25, "county": 0.75, "township": 0, "village": 0}
    assert parse_mix(None, base) == pytest.approx(base)
    with pytest.raises(InputError, match="level=weight"):
        parse_mix("county", base)


def test_config_from_the_spec(lab_raw: dict) -> None:  # type: ignore[type-arg]
    lab_raw["load"]["slo"] = {"county": {"p95_ms": 250, "p99_ms": 900, "error_ratio": 0.02}}
    spec = Spec.model_validate(lab_raw)
    cfg = build_config(
        RunOptions(spec=spec, profile="surge", rate=75.0, duration="30s"),
        ["http://a", "http://b"],
        Path("."),
    )
    assert cfg.mode == "rate" and cfg.duration_s == 30
    assert cfg.load_at(15) == pytest.approx(600)  # 75/s daily peak x surge factor 8
    assert cfg.slo["county"].p95_ms == 250 and cfg.slo["city"].p95_ms == 500
    assert cfg.sites["village"] == sorted(sites_by_level(spec)["village"])
    assert {cfg.url_of(s) for s in cfg.sites["village"]} == {"http://a", "http://b"}
    assert cfg.url_of("520102") == cfg.url_of("520102")  # stable
    with pytest.raises(InputError, match="--users/--rate"):
        build_config(RunOptions(spec=spec, users=5, rate=5), ["http://a"], Path("."))
    with pytest.raises(InputError, match="unknown profile"):
        build_config(RunOptions(spec=spec, profile="lunch"), ["http://a"], Path("."))


def _stats(rows: list[tuple[str, str, float, bool]]) -> RequestStats:
    stats = RequestStats()
    for method, name, ms, failed in rows:
        stats.log_request(method, name, ms, 100)
        if failed:
            stats.log_error(method, name, "boom")
    return stats


def test_gate_passes_within_limits() -> None:
    rows = [("GET", "[county] GET /api/items/{item}", 20.0, False)] * 100
    rows += [("GET", "[village] GET /api/items/{item}", 30.0, False)] * 100
    result = evaluate(_stats(rows), SLO, 50)
    assert result.ok and set(result.levels) == {"county", "village"}


def test_gate_names_the_level_and_the_slow_endpoint() -> None:
    rows = [("GET", "[county] GET /api/items/{item}", 900.0, False)] * 60
    rows += [("GET", "[county] GET /api/sites/{site}/items", 10.0, False)] * 100
    rows += [("GET", "[city] GET /api/items/{item}", 10.0, False)] * 100
    result = evaluate(_stats(rows), SLO, 50)
    assert not result.ok
    texts = [str(b) for b in result.breaches]
    assert any(t.startswith("county (all endpoints): p95") for t in texts)
    assert any(t.startswith("county · GET /api/items/{item}: p95 900 ms > 500 ms") for t in texts)
    assert not any(b.level == "city" for b in result.breaches)
    assert not any("sites/{site}" in t for t in texts)


def test_gate_names_the_worst_endpoint_below_min_requests() -> None:
    rows = [("GET", "[township] GET /api/items/{item}", 2000.0, False)] * 10
    rows += [("GET", "[township] GET /api/cases/{code}", 10.0, False)] * 10
    result = evaluate(_stats(rows), SLO, 50)
    assert any(
        b.endpoint == "GET /api/items/{item}" and b.level == "township" for b in result.breaches
    )


def test_gate_error_ratio_and_empty_run() -> None:
    rows = [("GET", "[village] GET /api/items/{item}", 1.0, True)] * 5
    rows += [("GET", "[village] GET /api/items/{item}", 1.0, False)] * 95
    result = evaluate(_stats(rows), SLO, 50)
    assert [b.metric for b in result.breaches if b.endpoint is None] == ["error_ratio"]
    assert "error ratio 5.00% > 1.00%" in str(result.breaches[0])
    empty = evaluate(RequestStats(), SLO, 50)
    assert not empty.ok and "no requests" in str(empty.breaches[0])


def test_timeline_buckets_merge_and_percentiles() -> None:
    a, b = Timeline(5), Timeline(5)
    for i in range(100):
        a.on_request("[county] GET /x", float(i + 1), None, now=1000.0)
    b.on_request("[county] GET /x", 5000.0, Exception("x"), now=1003.0)
    b.on_request("[city] GET /x", 10.0, None, now=1007.0)
    a.merge(b.drain())
    rows = a.rows()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("county", 1000, 101, 1),
        ("city", 1005, 1, 0),
    ]
    assert percentile(dict(rows[0][4]), 0.5) == 51
    assert percentile(dict(rows[0][4]), 0.999) == 5000
    assert b.drain() == []


def test_registration_is_tried_again_after_a_gateway_error_under_a_new_login() -> None:
    """A local HTTP server stands in for the edge: its first answer is a 502 (the pod was
    lost), then it registers; a 400 is not tried again."""
    import http.server
    import json
    import threading

    from govcloud.errors import OperationError
    from loadtests.run import register_accounts

    seen: list[str] = []
    answers = [502, 201, 400]

    class Edge(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body["login"])
            status = answers.pop(0)
            data = json.dumps({"token": "t"} if status == 201 else {"error": "x"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Edge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        got = register_accounts([url], {}, {"citizen": 1})
        assert [a["login"] for a in got["citizen"]] == [seen[1]] and seen[0] != seen[1]
        with pytest.raises(OperationError, match="400"):
            register_accounts([url], {}, {"citizen": 1})
        assert len(seen) == 3
    finally:
        server.shutdown()
