"""The capacity plan: hand-checked sizing, the spec's load, the costs file and its bad input."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from govcloud.errors import InputError
from govcloud.spec.generate import generate
from govcloud.spec.load import parse
from loadtests import capacity as cap

pytestmark = pytest.mark.unit

LN20 = math.log(20)  # the 95th percentile of an exponential is ln(20) / rate


def costs(**over: Any) -> cap.Costs:
    base: dict[str, Any] = {
        "hall_ms": 5.0,
        "postgresql_ms": 1.0,
        "nginx_ms": 0.5,
        "locust_ms": 2.0,
        "measured_at": "test",
        "measured_where": "test",
        "source": "test",
    }
    return cap.Costs(**{**base, **over})


def demand(peak: float = 100.0, mix: dict[str, float] | None = None) -> cap.Demand:
    mix = mix or {"province": 0.25, "city": 0.0, "county": 0.75, "township": 0.0, "village": 0.0}
    return cap.Demand(peak_rps=peak, surge_multiple=8.0, level_mix=mix, basis="test")


def sizes(**over: Any) -> cap.Sizes:
    return cap.Sizes(
        **{"utilisation": 0.5, "replica_cpu": 1.0, "node_cores": 8, "min_replicas": 2, **over}
    )


# -- the prediction ----------------------------------------------------------------------------


def test_held_rate_by_hand() -> None:
    # 0.5 CPU at 4.1 ms: mu = 500 / 4.1 = 121.95/s; p95 500 ms takes ln20 / 0.5 = 5.99/s off
    one = cap.held_rate(1, 0.5, 4.1, 500)
    assert one == pytest.approx(500 / 4.1 - LN20 / 0.5)
    assert one == pytest.approx(115.96, abs=0.01)
    assert cap.held_rate(2, 0.5, 4.1, 500) == pytest.approx(2 * one)  # bench (b)'s ideal: 2.0x
    # at p95 200 ms: 121.95 - 14.98 = 106.97/s per replica
    assert cap.held_rate(2, 0.5, 4.1, 200) == pytest.approx(213.94, abs=0.01)


def test_held_rate_one_process_uses_one_core() -> None:
    # a limit of 2 CPU: the replica's one process still uses 1 core: mu = 200/s at 5 ms
    assert cap.held_rate(1, 2.0, 5.0, 200) == pytest.approx(200 - LN20 / 0.2)
    assert cap.held_rate(1, 2.0, 5.0, 200) == cap.held_rate(1, 1.0, 5.0, 200)


def test_held_rate_cannot_meet_the_slo() -> None:
    # 0.05 CPU at 5 ms serves 10/s; a p95 of 100 ms needs a margin of 29.96/s: nothing held
    assert cap.held_rate(3, 0.05, 5.0, 100) == 0.0
    with pytest.raises(ValueError):
        cap.held_rate(1, 0.0, 5.0, 100)


def test_replica_rate_is_the_lower_of_utilisation_and_slo() -> None:
    # 60 % of 121.95/s = 73.17/s, below the SLO's 115.96/s
    assert cap.replica_rate(0.5, 4.1, 0.6, 500) == pytest.approx(0.6 * 500 / 4.1)
    # 90 % would be 109.76/s, but p95 200 ms holds only 106.97/s
    assert cap.replica_rate(0.5, 4.1, 0.9, 200) == pytest.approx(500 / 4.1 - LN20 / 0.2)


# -- the plan ------------------------------------------------------------------------------------


def test_plan_by_hand() -> None:
    """Peak 100/s × 8 = 800/s: province 200/s, county 600/s. A replica of 1 CPU at 5 ms serves
    200/s, planned at 50 % = 100/s (the SLO of 1 s would allow 197/s)."""
    plan = cap.plan_capacity(demand(), costs(), sizes(), {lv: 1000.0 for lv in cap_levels()})
    by = {lp.level: lp for lp in plan.levels}
    prov, county = by["province"], by["county"]
    assert prov.surge_rps == pytest.approx(200) and county.surge_rps == pytest.approx(600)
    assert prov.replica_rps == pytest.approx(100)
    # province: 200 × 5 ms / 0.5 = 2 cores, 2 replicas; PostgreSQL 200 × 1 ms / 0.5 = 0.4
    assert prov.hall_cores == pytest.approx(2.0)
    assert prov.hall_replicas == 2
    assert prov.postgresql_cores == pytest.approx(0.4)
    assert prov.nginx_cores == pytest.approx(0.2)
    assert prov.locust_cores == pytest.approx(0.8)
    assert prov.node_cores == pytest.approx(2.4)
    assert prov.nodes == 2  # 2.4 cores fit one node of 8, but two replicas spread over two
    # county: 600/s → 6 replicas, 6 cores; PostgreSQL 1.2; nodes 7.2 of 8 → 1, spread → 2
    assert county.hall_replicas == 6
    assert county.hall_cores == pytest.approx(6.0)
    assert county.postgresql_cores == pytest.approx(1.2)
    assert county.node_cores == pytest.approx(7.2)
    assert county.nodes == 2
    # levels without load get nothing
    assert by["city"].hall_replicas == 0 and by["city"].nodes == 0
    t = plan.total
    assert t.surge_rps == pytest.approx(800)
    assert t.hall_replicas == 8
    assert t.node_cores == pytest.approx(9.6)
    assert t.nodes == 2  # 9.6 / 8 → 2
    assert t.nginx_cores == pytest.approx(0.8)
    assert t.locust_cores == pytest.approx(3.2)
    assert plan.edge_hosts == 1
    data = plan.as_dict()
    assert data["total"]["hall_replicas"] == 8
    json.dumps(data)  # serialisable for --json


def test_plan_node_size_and_minimum_replicas() -> None:
    plan = cap.plan_capacity(demand(), costs(), sizes(node_cores=4), {})
    assert plan.total.nodes == 3  # 9.6 cores / 4
    # a level with little load still gets the app spec's minimum
    small = cap.plan_capacity(demand(peak=1.0), costs(), sizes(min_replicas=3), {})
    by = {lp.level: lp for lp in small.levels}
    assert by["province"].surge_rps == pytest.approx(2.0)
    assert by["province"].hall_replicas == 3


def test_plan_the_slo_can_bind() -> None:
    # 0.2 CPU at 5 ms: mu = 40/s; p95 100 ms leaves 40 - 29.96 = 10.04/s, below 90 % (36/s)
    plan = cap.plan_capacity(
        demand(), costs(), sizes(replica_cpu=0.2, utilisation=0.9), {"province": 100.0}
    )
    prov = next(lp for lp in plan.levels if lp.level == "province")
    assert prov.replica_rps == pytest.approx(40 - LN20 / 0.1)
    assert prov.hall_replicas == math.ceil(200 / (40 - LN20 / 0.1))  # 20


def test_plan_refuses_impossible_sizes() -> None:
    with pytest.raises(InputError, match="--utilisation"):
        cap.plan_capacity(demand(), costs(), sizes(utilisation=0.0), {})
    with pytest.raises(InputError, match="--node-cores"):
        cap.plan_capacity(demand(), costs(), sizes(node_cores=1, replica_cpu=2.0), {})
    with pytest.raises(InputError, match="--replica-cpu"):  # cannot meet p95 at all
        cap.plan_capacity(demand(), costs(), sizes(replica_cpu=0.05), {"province": 100.0})


def test_default_costs_are_the_labs_figures() -> None:
    c = cap.DEFAULT_COSTS
    assert (c.hall_ms, c.locust_ms, c.postgresql_ms, c.nginx_ms) == (4.1, 1.4, 0.85, 0.3)
    assert c.server_ms == pytest.approx(5.25)  # locust is not part of the server
    assert cap.load_costs(None) is c


# -- the spec's load -----------------------------------------------------------------------------


def cap_levels() -> list[str]:
    return ["province", "city", "county", "township", "village"]


def lab_spec(mutate: Any = None) -> Any:
    data = copy.deepcopy(generate("lab"))
    data["load"] = {"peak_factor": 3.0, "surge_factor": 8.0}
    if mutate:
        mutate(data)
    return parse(data)


def test_demand_from_population() -> None:
    spec = lab_spec()
    d = cap.spec_demand(spec)
    # 38,560,000 residents × 0.041 = 1,580,960 requests a day; / 86,400 × 3 = 54.894/s
    assert d.population == 38_560_000
    assert d.daily_requests == pytest.approx(1_580_960)
    assert d.peak_rps == pytest.approx(54.894, abs=0.001)
    assert d.surge_rps == pytest.approx(439.16, abs=0.01)  # the surge profile's top: × 8
    assert d.level_mix["county"] == pytest.approx(0.4)  # the spec's olive-shaped default
    assert d.sites == {"province": 1, "city": 2, "county": 4, "township": 8, "village": 16}


def test_demand_given_rate_mix_and_factor() -> None:
    d = cap.spec_demand(lab_spec(), rate=50, surge_factor=6, level_mix="province=1,county=3")
    assert d.peak_rps == 50 and d.surge_rps == pytest.approx(300)
    assert d.level_mix["province"] == pytest.approx(0.25) and d.level_mix["city"] == 0.0
    assert d.population is None


def test_population_from_the_children() -> None:
    def strip(data: dict[str, Any]) -> None:
        data["regions"]["52"].pop("population")
        for i, city in enumerate(data["regions"]["52"]["cities"]):
            city["population"] = 1_000_000 * (i + 1)

    d = cap.spec_demand(lab_spec(strip), per_resident_day=0.1)
    assert d.population == 3_000_000  # two cities, 1 M and 2 M
    assert d.peak_rps == pytest.approx(3_000_000 * 0.1 / 86_400 * 3)


def test_no_population_asks_for_the_rate() -> None:
    def strip(data: dict[str, Any]) -> None:
        def walk(site: dict[str, Any]) -> None:
            site.pop("population", None)
            for key in ("cities", "counties", "townships", "villages"):
                for child in site.get(key, []):
                    if isinstance(child, dict):
                        walk(child)

        walk(data["regions"]["52"])

    with pytest.raises(InputError) as err:
        cap.spec_demand(lab_spec(strip))
    assert err.value.problems[0].path == "regions.52.population"
    assert "--rate" in err.value.problems[0].message


def test_bad_demand_options() -> None:
    spec = lab_spec()
    for kwargs, field in (
        ({"rate": 0}, "--rate"),
        ({"per_resident_day": -1}, "--per-resident"),
        ({"surge_factor": 0.5}, "--surge-factor"),
        ({"level_mix": "county=x"}, "--level-mix"),
    ):
        with pytest.raises(InputError) as err:
            cap.spec_demand(spec, **kwargs)
        assert err.value.problems[0].path == field


def test_sizes_from_the_spec_and_the_app_spec(tmp_path: Path) -> None:
    spec = lab_spec()
    app = tmp_path / "app.yaml"
    app.write_text(
        "name: hall\ndepartment: dsjj\nimage: registry.govcloud.local/dsjj/hall:1\n"
        "resources: {cpu: 250m, memory: 256Mi, cpu_limit: 750m}\n"
        "autoscale: {min: 3, max: 6}\n",
        encoding="utf-8",
    )
    s = cap.spec_sizes(spec, app_spec=app)
    assert s.replica_cpu == pytest.approx(0.75)  # the limit, not the request
    assert s.min_replicas == 3
    pool = spec.datacenter.pools.compute.vcpus
    computes = sum(1 for h in spec.datacenter.hosts if h.role == "compute")
    assert s.node_cores == pool // computes  # the lab: 32 vCPUs over 2 compute hosts = 16
    s = cap.spec_sizes(spec, replica_cpu=2.0, node_cores=4, app_spec=app)
    assert (s.replica_cpu, s.node_cores) == (2.0, 4)
    # a broken app spec is named when the replica's CPU comes from it, ignored when given
    app.write_text("name: [\n", encoding="utf-8")
    with pytest.raises(InputError):
        cap.spec_sizes(spec, app_spec=app)
    assert cap.spec_sizes(spec, replica_cpu=0.5, app_spec=app).min_replicas == 2


# -- the costs file ------------------------------------------------------------------------------


def good_file() -> dict[str, Any]:
    return {
        "format": "govcloud-cpu-costs",
        "version": 1,
        "measured": {"at": "2026-12-01", "where": "lab, hall pods"},
        "hall": {
            "classes": {
                "static": {"ms": 0.5, "share": 10},
                "page": {"ms": 3.0, "share": 20},
                "catalog": {"ms": 1.5, "share": 30},
                "login": {"ms": 40.0, "share": 2},
                "submit": {"ms": 6.0, "share": 13},
                "status": {"ms": 2.0, "share": 25},
            }
        },
        "postgresql": {"ms": 0.8},
        "nginx": {"ms": 0.25},
    }


def test_costs_file_by_class() -> None:
    c = cap.parse_costs(good_file(), "costs.json")
    # weighted mean: (0.5·10 + 3·20 + 1.5·30 + 40·2 + 6·13 + 2·25) / 100 = 318 / 100
    assert c.hall_ms == pytest.approx(3.18)
    assert c.classes["login"].share == pytest.approx(0.02)
    assert c.locust_ms is None and c.postgresql_ms == 0.8
    # the mixed figure given wins; shares are then optional
    data = good_file()
    data["hall"]["ms"] = 2.0
    for entry in data["hall"]["classes"].values():
        entry.pop("share")
    assert cap.parse_costs(data, "costs.json").hall_ms == 2.0


def test_costs_document_round_trip(tmp_path: Path) -> None:
    doc = cap.costs_document(
        at="2026-12-01T10:00Z",
        where="local hall",
        hall_ms=1.9,
        classes={k: 1.0 for k in cap.CLASSES},
    )
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    c = cap.load_costs(path)
    assert c.hall_ms == 1.9 and c.postgresql_ms == 0.85 and c.source == str(path)
    assert "postgresql, nginx" in doc["note"]


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda d: d["hall"]["classes"].pop("login"), "hall.classes.login", "missing class"),
        (lambda d: d["hall"]["classes"]["page"].update(ms=0), "hall.classes.page.ms", "above 0"),
        (lambda d: d["hall"]["classes"]["page"].update(ms=-1.5), "hall.classes.page.ms", "above 0"),
        (lambda d: d["hall"]["classes"]["page"].update(ms="3"), "hall.classes.page.ms", "number"),
        (
            lambda d: d["hall"]["classes"]["page"].update(share=-1),
            "hall.classes.page.share",
            ">= 0",
        ),
        (lambda d: d["hall"]["classes"]["page"].pop("share"), "hall.classes.page.share", "hall.ms"),
        (lambda d: d["hall"]["classes"].update(video={"ms": 1}), "hall.classes.video", "unknown"),
        (lambda d: d.pop("postgresql"), "postgresql", "missing"),
        (lambda d: d.update(nginx={"ms": 0}), "nginx.ms", "above 0"),
        (lambda d: d.update(locust={"ms": -2}), "locust.ms", "above 0"),
        (lambda d: d.update(hall={}), "hall", "missing"),
        (lambda d: d["measured"].pop("where"), "measured.where", "missing"),
        (lambda d: d.pop("measured"), "measured", "missing"),
        (lambda d: d.update(format="other"), "format", "govcloud-cpu-costs"),
        (lambda d: d.update(version=2), "version", "expected 1"),
        (lambda d: d.update(redis={"ms": 1}), "redis", "unknown field"),
    ],
)
def test_bad_costs_name_file_and_field(mutate: Any, field: str, words: str) -> None:
    data = good_file()
    mutate(data)
    with pytest.raises(InputError) as err:
        cap.parse_costs(data, "costs.json")
    problem = err.value.problems[0]
    assert problem.path == field
    assert problem.source == "costs.json"
    assert words in problem.message
    assert "costs.json" in err.value.render()


def test_malformed_costs_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "govcloud-cpu-costs", ', encoding="utf-8")
    with pytest.raises(InputError, match="not JSON") as err:
        cap.load_costs(broken)
    assert err.value.problems[0].source == str(broken)
    with pytest.raises(InputError, match="cannot read"):
        cap.load_costs(tmp_path / "absent.json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="JSON object"):
        cap.load_costs(listed)


# -- endpoint classes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("[county] PAGE GET /sites/{site}", "page"),
        ("[county] PAGE GET /items/{item}/apply", "page"),
        ("[county] PAGE POST /items/{item}/apply", "submit"),
        ("[county] PAGE POST /login", "login"),
        ("[village] ASSET GET /static/hall.css", "static"),
        ("[city] GET /api/sites/{site}/items", "catalog"),
        ("[city] GET /api/items/{item}", "catalog"),
        ("[city] GET /api/sites?parent=", "catalog"),
        ("[province] POST /api/login", "login"),
        ("[province] POST /api/accounts", "login"),
        ("[province] POST /api/cases", "submit"),
        ("[township] POST /api/staff/cases/{code}/approve", "submit"),
        ("[township] GET /api/cases/{code}", "status"),
        ("[township] GET /api/my/cases", "status"),
        ("[township] GET /api/staff/queue", "status"),
        ("[county] (dropped arrival)", None),
    ],
)
def test_endpoint_class(name: str, cls: str | None) -> None:
    assert cap.endpoint_class(name) == cls


# -- the report's section ------------------------------------------------------------------------


def run_config(tmp_path: Path, mode: str = "rate") -> None:
    mix = {"province": 0.25, "city": 0.0, "county": 0.75, "township": 0.0, "village": 0.0}
    cfg = {
        "mode": mode,
        "peak": 10.0,
        "points": [[0.0, 1.0], [0.5, 8.0], [1.0, 1.0]],
        "level_mix": mix,
        "slo": {lv: {"p95_ms": 500.0, "p99_ms": 1500.0, "error_ratio": 0.01} for lv in mix},
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg), encoding="utf-8")


def test_report_capacity_for_the_runs_load(tmp_path: Path) -> None:
    from loadtests.report import capacity_section, run_capacity

    run_config(tmp_path)
    costs = cap.costs_document(at="2026-12-01", where="bench", hall_ms=5.0)
    (tmp_path / "costs.json").write_text(json.dumps(costs), encoding="utf-8")
    plan = run_capacity(tmp_path, {})
    assert plan is not None and "error" not in plan
    # the open model's top: 10/s × 8 = 80/s; the costs file the bench left in the directory
    assert plan["total"]["surge_rps"] == pytest.approx(80)
    assert plan["costs"]["hall_ms"] == 5.0
    # 80/s × 5 ms / 0.6 = 0.667 hall cores
    assert plan["total"]["hall_cores"] == pytest.approx(0.667, abs=0.001)
    page = capacity_section(plan)
    assert "Capacity for this load" in page and "80.0 requests/s" in page


def test_report_capacity_closed_model_and_bad_costs(tmp_path: Path) -> None:
    from loadtests.report import capacity_section, run_capacity

    run_config(tmp_path, mode="users")
    per_level = {
        "province": [{"t": 0, "rps": 5.0}, {"t": 5, "rps": 7.0}],
        "county": [{"t": 0, "rps": 10.0}, {"t": 5, "rps": 20.0}],
    }
    plan = run_capacity(tmp_path, per_level)
    assert plan is not None
    assert plan["total"]["surge_rps"] == pytest.approx(27.0)  # the busiest bucket, 7 + 20
    (tmp_path / "costs.json").write_text("{", encoding="utf-8")
    bad = run_capacity(tmp_path, per_level)
    assert bad is not None and "costs.json" in bad["error"]
    assert "No capacity plan" in capacity_section(bad)
    assert run_capacity(tmp_path / "absent", {}) is None and capacity_section(None) == ""


@pytest.mark.parametrize(
    ("targets", "said"),
    [
        (["https://hall-1.zwfw.guizhou.gov.cn", "https://hall-2.zwfw.guizhou.gov.cn"],
         "went over HTTPS (2 of 2 targets)"),
        (["http://127.0.0.1:8080"], "went over plain HTTP (1 targets): no TLS cost"),
    ],
)  # fmt: skip
def test_report_states_what_tls_cost_at_the_edge(
    tmp_path: Path, targets: list[str], said: str
) -> None:
    from loadtests.report import tls_section

    run_config(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "targets": targets}))
    page = tls_section(tmp_path, {"server_ms": 2.5})
    assert said in page
    t = cap.EDGE_TLS
    # with and without TLS, the bench's figures; the share of the server's cost per request
    assert f"{t.https_us:g} µs of CPU per request over keep-alive HTTPS" in page
    assert f"{t.http_us:g} µs over plain HTTP ({t.https_us / t.http_us:.2f}x)" in page
    assert f"adds {(t.https_us - t.http_us) / 1000 / 2.5:.1%}" in page
    assert tls_section(tmp_path / "absent", None) == ""
