"""Pure parts of the hall: codes, configuration, faults, metrics text, the seed plan."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from clusters.apps.hall.app import HOT_ROUTES, Config, Hall, dumps, parse_faults
from clusters.apps.hall.codes import (
    level_of_path,
    make_case_code,
    site_level,
    site_of_case_code,
    valid_case_code,
)
from clusters.apps.hall.observe import Metrics
from clusters.apps.hall.seed import check_plan, item_rows
from clusters.hallseed import guide_counts, seed_plan
from govcloud.spec import Spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "site",
    ["52", "5201", "520102", "520102001", "520102001002", "520181", "520102010"],
)
def test_case_code_round_trip(site: str) -> None:
    code = make_case_code(site, "20240315", 1234567)
    assert len(code) == 31 and valid_case_code(code)
    assert site_of_case_code(code) == site
    assert level_of_path({"code": code}) == site_level(site)
    for i in range(len(code)):  # any single changed digit breaks the check digit
        changed = code[:i] + str((int(code[i]) + 3) % 10) + code[i + 1 :]
        assert not valid_case_code(changed)


def test_levels_from_codes() -> None:
    assert [site_level(c) for c in ("52", "5201", "520102", "520102001", "520102001001")] == [
        "province",
        "city",
        "county",
        "township",
        "village",
    ]
    assert site_level("5") is None and site_level("52a") is None and site_level("5201020") is None
    assert level_of_path({"item": "520102-gat-A0001"}) == "county"


def test_config_from_env_names_the_bad_variable() -> None:
    assert Config.from_env({}).port == 8080
    with pytest.raises(ValueError, match="HALL_PORT"):
        Config.from_env({"HALL_PORT": "eighty"})
    with pytest.raises(ValueError, match="HALL_OPENBAO_ADDR"):
        Config.from_env({"HALL_STAFF_AUTH": "openbao"})
    with pytest.raises(ValueError, match="HALL_SCRYPT_N"):
        Config.from_env({"HALL_SCRYPT_N": "1000"})
    with pytest.raises(ValueError, match="HALL_FAULTS"):
        Config.from_env({"HALL_FAULTS": "guide:10@town"})
    with pytest.raises(ValueError, match="HALL_LOOP"):
        Config.from_env({"HALL_LOOP": "trio"})


def test_the_event_loop_is_uvloop_when_installed_and_asyncio_when_asked() -> None:
    """uvloop is in the image, not in this test environment (or it is: both are checked)."""
    import asyncio
    import importlib.util

    from clusters.apps.hall.app import install_loop

    policy = asyncio.get_event_loop_policy()
    try:
        assert install_loop("asyncio") == "asyncio"
        have = importlib.util.find_spec("uvloop") is not None
        assert install_loop("auto") == ("uvloop" if have else "asyncio")
        if not have:
            with pytest.raises(ValueError, match="HALL_LOOP=uvloop"):
                install_loop("uvloop")
    finally:
        asyncio.set_event_loop_policy(policy)


def test_the_hot_routes_are_tried_first_and_a_path_no_route_has_last() -> None:
    app = Hall(Config()).make_app()
    names = [resource.name for resource in app.router.resources()]
    assert names[: len(HOT_ROUTES)] == list(HOT_ROUTES)
    assert names[-1] == "unmatched" and len(names) == len(set(names))
    assert {"healthz", "page_home", "admin_faults_set", "page_overdue"} <= set(names)


def test_times_in_json_keep_their_own_zone_though_kept_written() -> None:
    utc = dt.datetime(2024, 3, 15, 1, 30, 5, 120000, tzinfo=dt.UTC)
    cst = utc.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert utc == cst  # the same instant: one must not answer for the other
    for first, second in ((utc, cst), (cst, utc)):
        assert json.loads(dumps({"a": first, "b": second})) == {
            "a": first.isoformat(),
            "b": second.isoformat(),
        }
    naive = utc.replace(tzinfo=None)
    assert dumps([utc, naive, dt.date(2024, 3, 15)]) == (
        '["2024-03-15T01:30:05.120000+00:00","2024-03-15T01:30:05.120000","2024-03-15"]'
    )
    assert dumps({"名称": "事项"}) == '{"名称":"事项"}'  # as written, compact


def test_faults_parse() -> None:
    faults = parse_faults("guide:400@county, apply:50")
    assert [(f.route, f.delay_ms, f.level) for f in faults] == [
        ("guide", 400, "county"),
        ("apply", 50, None),
    ]
    assert parse_faults("") == []


def test_metrics_histogram_is_cumulative() -> None:
    m = Metrics()
    for s in (0.001, 0.02, 0.02, 3.0):
        m.observe("guide", "GET", 200, s)
    m.observe("guide", "GET", 404, 0.001)
    text = m.render()
    assert 'hall_http_requests_total{route="guide",method="GET",status="200"} 4' in text
    assert (
        'hall_http_request_duration_seconds_bucket{route="guide",method="GET",le="0.005"} 2' in text
    )
    assert (
        'hall_http_request_duration_seconds_bucket{route="guide",method="GET",le="0.025"} 4' in text
    )
    assert (
        'hall_http_request_duration_seconds_bucket{route="guide",method="GET",le="2.5"} 4' in text
    )
    assert (
        'hall_http_request_duration_seconds_bucket{route="guide",method="GET",le="+Inf"} 5' in text
    )
    assert 'hall_http_request_duration_seconds_count{route="guide",method="GET"} 5' in text


def test_guizhou_seed_plan_has_the_reported_sizes(guizhou_raw: dict) -> None:  # type: ignore[type-arg]
    plan = seed_plan(Spec.model_validate(guizhou_raw))
    counts = guide_counts(plan)
    assert counts["province"] == 1573  # 1,337 administrative + 236 public-service items
    grassroots = counts["township"] + counts["village"]
    assert abs(grassroots - 256_419) / 256_419 < 0.01  # Guizhou's township and village guides
    levels = [s["level"] for s in plan["sites"]]
    assert levels.count("township") == 1521 and levels.count("village") == 17342
    check_plan(plan)


def test_guides_are_deterministic_and_complete(lab_raw: dict) -> None:  # type: ignore[type-arg]
    plan = seed_plan(Spec.model_validate(lab_raw))
    first = list(item_rows(plan))
    again = list(item_rows(plan))
    assert first == again and len(first) == sum(guide_counts(plan).values())
    assert len({r[0] for r in first}) == len(first)  # unique item codes
    code, site, dept, _kind, _name, basis, *_, legal, promised, _fee, _online = first[0]
    assert code.startswith(f"{site}-{dept}-") and promised <= legal and len(basis) > 80


def test_check_plan_names_the_problem() -> None:
    with pytest.raises(ValueError, match=r"sites\[1\]\.parent"):
        check_plan(
            {
                "departments": [],
                "sites": [
                    {"code": "52", "name": "a", "level": "province", "kind": "k"},
                    {"code": "5201", "name": "b", "level": "city", "kind": "k", "parent": "53"},
                ],
            }
        )
    with pytest.raises(ValueError, match=r"items\[0\]\.dept"):
        check_plan(
            {
                "departments": [],
                "sites": [
                    {
                        "code": "52",
                        "name": "a",
                        "level": "province",
                        "kind": "k",
                        "items": [{"dept": "x", "kind": "administrative", "count": 1}],
                    }
                ],
            }
        )
