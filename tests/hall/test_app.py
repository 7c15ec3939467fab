"""The hall app over real HTTP and a real PostgreSQL: catalog, accounts, the case state machine,
staff actions and scopes, ratings, overdue warnings, probes, metrics, access logs, faults."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from clusters.apps.hall import schema
from clusters.apps.hall.app import FILE_CASE_SQL
from clusters.apps.hall.codes import make_case_code, valid_case_code
from clusters.apps.hall.devserver import LocalHall, LocalPostgres, http_json, run_hall

pytestmark = pytest.mark.integration


def _account(hall: LocalHall, kind: str = "citizen") -> str:
    status, body = http_json(
        "POST",
        hall.url + "/api/accounts",
        {
            "kind": kind,
            "login": f"t-{secrets.token_hex(6)}",
            "name": "测试",
            "password": "pw-12345678",
        },
    )
    assert status == 201, body
    token: str = body["token"]
    return token


def _staff(hall: LocalHall, site: str, *roles: str) -> str:
    status, body = http_json(
        "POST",
        hall.url + "/api/admin/staff-tokens",
        {"staff": f"s-{secrets.token_hex(3)}", "site": site, "roles": list(roles)},
        hall.admin_token,
    )
    assert status == 201, body
    token: str = body["token"]
    return token


def _item(hall: LocalHall, site: str) -> str:
    status, body = http_json("GET", f"{hall.url}/api/sites/{site}/items?limit=1")
    assert status == 200 and body["items"], body
    code: str = body["items"][0]["code"]
    return code


def _apply(hall: LocalHall, token: str, site: str = "520102") -> str:
    status, body = http_json("POST", hall.url + "/api/cases", {"item": _item(hall, site)}, token)
    assert status == 201, body
    code: str = body["code"]
    return code


def _act(hall: LocalHall, token: str, code: str, action: str) -> tuple[int, Any]:
    return http_json("POST", f"{hall.url}/api/staff/cases/{code}/{action}", {}, token)


def test_public_catalog_is_seeded_from_the_spec(hall: LocalHall, seeded: dict[str, int]) -> None:
    # the lab spec: 31 sites, 6 departments; the province lists every provincial item (215)
    assert seeded == {"departments": 6, "sites": 31, "items": 1513}
    status, site = http_json("GET", hall.url + "/api/sites/52")
    assert status == 200 and site["level"] == "province" and site["items"] == 215
    status, body = http_json("GET", hall.url + "/api/sites?parent=52&level=city")
    assert [s["code"] for s in body["sites"]] == ["5201", "5203"]
    status, page = http_json("GET", hall.url + "/api/sites/520102001001/items?limit=100")
    assert status == 200 and len(page["items"]) == 11  # 11 guides per village
    status, guide = http_json("GET", hall.url + "/api/items/" + page["items"][0]["code"])
    assert status == 200
    assert guide["materials"] and guide["steps"] and guide["basis"].startswith("1. 《")
    assert guide["time_limit_days"] <= guide["legal_limit_days"]
    status, body = http_json("GET", hall.url + "/api/items/nope-gat-A0001")
    assert status == 404 and "no item" in body["error"]
    status, body = http_json("GET", hall.url + "/api/sites/52x/items")
    assert status == 400 and "division code" in body["error"]


def test_everything_but_the_catalog_needs_a_token(hall: LocalHall) -> None:
    for method, path in [
        ("GET", "/api/me"),
        ("POST", "/api/cases"),
        ("GET", "/api/my/cases"),
        ("GET", "/api/staff/queue"),
        ("GET", "/api/supervision/overdue"),
        ("GET", "/metrics"),
        ("POST", "/api/admin/staff-tokens"),
    ]:
        status, body = http_json(method, hall.url + path, {} if method == "POST" else None)
        assert status == 401, (path, body)
    status, body = http_json("GET", hall.url + "/api/me", token="hall_a_forged")
    assert status == 401 and "unknown or expired" in body["error"]
    status, body = http_json("GET", hall.url + "/metrics", token=_account(hall))
    assert status == 403


def test_a_path_no_route_has_is_refused_as_json_and_counted(hall: LocalHall) -> None:
    citizen = _account(hall)
    status, body = http_json("GET", hall.url + "/api/nothing")
    assert status == 401 and "authentication required" in body["error"]  # a token first
    status, body = http_json("GET", hall.url + "/api/nothing", token=citizen)
    assert (status, body) == (404, {"error": "Not Found"})
    for method, path in [("DELETE", "/api/cases"), ("POST", "/healthz"), ("POST", "/")]:
        status, body = http_json(method, hall.url + path, token=citizen)  # another method's path
        assert (status, body) == (405, {"error": "Method Not Allowed"}), (method, path)
    status, text = http_json("GET", hall.url + "/metrics", token=hall.admin_token)
    assert 'hall_http_requests_total{route="unmatched",method="DELETE",status="405"}' in text
    assert 'hall_http_requests_total{route="unmatched",method="GET",status="404"}' in text


def test_login_with_password(hall: LocalHall) -> None:
    login = f"e-{secrets.token_hex(4)}"
    status, _ = http_json(
        "POST",
        hall.url + "/api/accounts",
        {"kind": "enterprise", "login": login, "name": "某公司", "password": "pw-12345678"},
    )
    assert status == 201
    status, body = http_json(
        "POST",
        hall.url + "/api/accounts",
        {"kind": "enterprise", "login": login, "name": "x", "password": "pw-12345678"},
    )
    assert status == 409 and body["field"] == "login"
    status, body = http_json(
        "POST", hall.url + "/api/login", {"login": login, "password": "wrong-pw"}
    )
    assert status == 401
    status, body = http_json(
        "POST", hall.url + "/api/login", {"login": login, "password": "pw-12345678"}
    )
    assert status == 200 and body["kind"] == "enterprise"
    status, me = http_json("GET", hall.url + "/api/me", token=body["token"])
    assert me["kind"] == "enterprise"
    status, body = http_json("POST", hall.url + "/api/accounts", {"login": "x", "name": "y"})
    assert status == 400 and body["field"] == "password"


def test_file_case_statement_makes_the_case_code_as_codes_does(pg: LocalPostgres) -> None:
    """The one-statement application computes the case code in SQL: it must equal
    ``make_case_code`` for every site length, date and sequence number (wrapping at 10^10)."""

    async def check() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            async with conn.transaction():
                # temporary stand-ins (pg_temp comes first in the search path)
                await conn.execute(
                    "CREATE TEMP TABLE items (code text PRIMARY KEY, site_code text NOT NULL);"
                    " CREATE TEMP SEQUENCE case_seq;"
                    " CREATE TEMP TABLE cases (id bigserial PRIMARY KEY, code text UNIQUE,"
                    " item_code text, site_code text, applicant_id bigint, state text,"
                    " form jsonb, created_at timestamptz NOT NULL DEFAULT now());"
                    " CREATE TEMP TABLE case_events (case_id bigint, actor text, action text,"
                    " to_state text)"
                )
                sites = ["52", "5201", "520102", "520102003", "520102003004", "999999999999"]
                for site in sites:
                    await conn.execute("INSERT INTO items VALUES ($1, $2)", f"{site}-x", site)
                seqs = [1, 9, 10, 1234567, 9_999_999_999, 10**10, 10**10 + 7, 98_765_432_109]
                n = 0
                for seq in seqs:
                    for site in sites:
                        for day in ("20240315", "20991231"):
                            await conn.execute("SELECT setval('case_seq', $1, false)", seq)
                            row = await conn.fetchrow(
                                FILE_CASE_SQL, f"{site}-x", day, 7, "{}", "citizen:7"
                            )
                            assert row is not None
                            assert row["code"] == make_case_code(site, day, seq), (site, seq)
                            assert row["site_code"] == site and row["state"] == "submitted"
                            assert valid_case_code(row["code"])
                            n += 1
                assert await conn.fetchval("SELECT count(*) FROM case_events") == n
                # an unknown item: no row, no number taken
                before = await conn.fetchval("SELECT last_value FROM case_seq")
                assert await conn.fetchrow(FILE_CASE_SQL, "nope", "20240315", 7, "{}", "x") is None
                assert await conn.fetchval("SELECT last_value FROM case_seq") == before
                raise _Rollback
        except _Rollback:
            pass
        finally:
            await conn.close()

    asyncio.run(check())


class _Rollback(Exception):
    pass


def test_case_lifecycle_accept_material_supplement_approve_rate(hall: LocalHall) -> None:
    citizen = _account(hall)
    clerk = _staff(hall, "520102", "clerk", "backoffice")
    code = _apply(hall, citizen)
    assert valid_case_code(code) and code.startswith("520102000000")
    status, queue = http_json("GET", hall.url + "/api/staff/queue", token=clerk)
    assert code in [c["code"] for c in queue["cases"]]

    status, body = _act(hall, clerk, code, "approve")  # not accepted yet
    assert status == 409 and "submitted" in body["error"]
    status, body = _act(hall, clerk, code, "accept")
    assert status == 200 and body["state"] == "in_progress" and body["deadline"]
    status, body = _act(hall, clerk, code, "request-material")
    assert body["state"] == "needs_material"
    status, body = http_json("POST", f"{hall.url}/api/cases/{code}/rating", {"score": 5}, citizen)
    assert status == 409  # not finished: cannot rate yet
    status, body = http_json(
        "POST", f"{hall.url}/api/cases/{code}/supplement", {"note": "补"}, citizen
    )
    assert status == 200 and body["state"] == "in_progress"
    status, body = _act(hall, clerk, code, "approve")
    assert status == 200 and body["state"] == "completed"
    status, body = http_json("POST", f"{hall.url}/api/cases/{code}/rating", {"score": 4}, citizen)
    assert status == 201
    status, body = http_json("POST", f"{hall.url}/api/cases/{code}/rating", {"score": 1}, citizen)
    assert status == 409 and "already rated" in body["error"]

    status, prog = http_json("GET", f"{hall.url}/api/cases/{code}", token=citizen)
    assert prog["state"] == "completed" and prog["state_label"] == "办结"
    assert [e["action"] for e in prog["events"]] == [
        "apply",
        "accept",
        "request-material",
        "supplement",
        "approve",
    ]
    status, ratings = http_json("GET", f"{hall.url}/api/sites/520102/ratings", token=clerk)
    assert ratings["counts"]["4"] >= 1 and ratings["total"] >= 1


def test_material_before_acceptance_returns_to_the_queue_and_return_is_final(
    hall: LocalHall,
) -> None:
    citizen = _account(hall)
    clerk = _staff(hall, "520102", "clerk")
    code = _apply(hall, citizen)
    assert _act(hall, clerk, code, "request-material")[1]["state"] == "needs_material"
    status, body = http_json("POST", f"{hall.url}/api/cases/{code}/supplement", {}, citizen)
    assert body["state"] == "submitted"  # never accepted: back to waiting for acceptance
    assert _act(hall, clerk, code, "return")[1]["state"] == "returned"
    status, body = _act(hall, clerk, code, "accept")
    assert status == 409
    status, body = _act(hall, clerk, code, "approve")  # a clerk without back-office rights
    assert status == 403 and "backoffice" in body["error"]


def test_scopes_other_sites_other_citizens_kiosk_and_hotline(hall: LocalHall) -> None:
    owner, stranger = _account(hall), _account(hall)
    code = _apply(hall, owner)
    other_clerk = _staff(hall, "520103", "clerk")
    status, body = _act(hall, other_clerk, code, "accept")
    assert status == 403 and "520102" in body["error"]
    status, _ = http_json("GET", f"{hall.url}/api/cases/{code}", token=stranger)
    assert status == 403
    kiosk = _staff(hall, "520303002", "kiosk")
    status, body = http_json("GET", f"{hall.url}/api/cases/{code}", token=kiosk)
    assert status == 200 and body["state"] == "submitted" and "events" not in body
    hotline = _staff(hall, "52", "hotline")
    status, body = http_json("GET", f"{hall.url}/api/cases/{code}", token=hotline)
    assert status == 200 and body["events"][0]["action"] == "apply"
    status, body = http_json("GET", f"{hall.url}/api/cases/123", token=hotline)
    assert status == 400 and "31 digits" in body["error"]
    bad_check = code[:-1] + str((int(code[-1]) + 1) % 10)
    status, _ = http_json("GET", f"{hall.url}/api/cases/{bad_check}", token=hotline)
    assert status == 400
    status, body = http_json("POST", hall.url + "/api/cases", {"item": "x"}, hotline)
    assert status == 403


def test_overdue_and_warning_for_the_supervision_office(hall: LocalHall, pg: LocalPostgres) -> None:
    citizen = _account(hall)
    clerk = _staff(hall, "520302", "clerk")
    late, soon = _apply(hall, citizen, "520302"), _apply(hall, citizen, "520302")
    for code in (late, soon):
        assert _act(hall, clerk, code, "accept")[0] == 200

    async def shift() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute(
                "UPDATE cases SET deadline = now() - interval '2 days' WHERE code = $1", late
            )
            await conn.execute(
                "UPDATE cases SET deadline = now() + interval '3 hours' WHERE code = $1", soon
            )
        finally:
            await conn.close()

    asyncio.run(shift())
    supervisor = _staff(hall, "5203", "supervisor")
    status, body = http_json("GET", hall.url + "/api/supervision/overdue", token=supervisor)
    assert status == 200
    assert late in [c["code"] for c in body["overdue"]]
    assert soon in [c["code"] for c in body["warning"]]
    assert late not in [c["code"] for c in body["warning"]]
    elsewhere = _staff(hall, "5201", "supervisor")
    status, body = http_json("GET", hall.url + "/api/supervision/overdue", token=elsewhere)
    assert late not in [c["code"] for c in body["overdue"]]  # another city's office


def test_probes_metrics_and_access_log(hall: LocalHall) -> None:
    assert http_json("GET", hall.url + "/healthz") == (200, {"status": "ok"})
    status, ready = http_json("GET", hall.url + "/readyz")
    assert status == 200 and ready["schema"] == schema.LATEST
    http_json("GET", hall.url + "/api/sites/52")
    status, text = http_json("GET", hall.url + "/metrics", token=hall.admin_token)
    assert status == 200
    assert 'hall_http_requests_total{route="site",method="GET",status="200"}' in text
    assert 'hall_http_request_duration_seconds_bucket{route="site",method="GET",le="+Inf"}' in text
    assert "hall_db_pool_size" in text
    time.sleep(1.3)  # the access log is flushed about once a second
    log = (hall.pg.root / f"access-{hall.port}.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines()]
    site = [r for r in records if r["path"] == "/api/sites/52"]
    assert site and site[-1]["status"] == 200 and site[-1]["route"] == "site"
    assert {"ts", "ms", "remote", "request_id", "caller"} <= set(site[-1])


def test_fault_switch_slows_one_route_at_one_level(no_faults: LocalHall) -> None:
    hall = no_faults
    status, body = http_json(
        "PUT", hall.url + "/api/admin/faults", {"faults": "site:300@county"}, hall.admin_token
    )
    assert status == 200 and body["faults"] == [
        {"route": "site", "delay_ms": 300, "level": "county"}
    ]

    def timed(path: str) -> float:
        start = time.perf_counter()
        assert http_json("GET", hall.url + path)[0] == 200
        return time.perf_counter() - start

    assert timed("/api/sites/520102") >= 0.3
    assert timed("/api/sites/5201") < 0.3
    status, body = http_json(
        "PUT", hall.url + "/api/admin/faults", {"faults": "site:abc"}, hall.admin_token
    )
    assert status == 400 and "route:delay_ms" in body["error"]


def test_migrations_and_seed_are_idempotent(hall: LocalHall, pg: LocalPostgres) -> None:
    out = json.loads(run_hall(["migrate"], hall.env()))
    assert out == {"applied": [], "schema": schema.LATEST}

    async def count() -> int:
        conn = await asyncpg.connect(pg.dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM items"))
        finally:
            await conn.close()

    before = asyncio.run(count())
    plan_path = pg.root / "seed-plan.json"
    out = json.loads(run_hall(["seed", str(plan_path)], hall.env()))
    assert out["items"] == 1513 and asyncio.run(count()) == before


def test_cli_refuses_bad_input_with_a_message(hall: LocalHall, tmp_path: Any) -> None:
    import subprocess
    import sys

    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"departments": [], "sites": [{"code": "52"}]}))
    proc = subprocess.run(
        [sys.executable, "-m", "clusters.apps.hall", "seed", str(bad)],
        env=hall.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "sites[0].name" in proc.stderr
    assert "Traceback" not in proc.stderr
    env = {**hall.env(), "HALL_STAFF_AUTH": "ldap"}
    proc = subprocess.run(
        [sys.executable, "-m", "clusters.apps.hall", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "HALL_STAFF_AUTH" in proc.stderr
    env = {**hall.env(), "HALL_DSN": "postgresql://hall@127.0.0.1:1/hall"}
    proc = subprocess.run(
        [sys.executable, "-m", "clusters.apps.hall", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "database" in proc.stderr and "Traceback" not in proc.stderr


def test_staff_token_command(hall: LocalHall) -> None:
    token = run_hall(
        ["staff-token", "--staff", "wang", "--site", "5203", "--roles", "supervisor"], hall.env()
    ).strip()
    assert token.startswith("hall_s_")
    status, me = http_json("GET", hall.url + "/api/me", token=token)
    assert status == 200
    assert me == {"kind": "staff", "id": "wang", "roles": ["supervisor"], "site": "5203"}


DEBIAN_PYTHON = "/usr/bin/python3"


def _debian_python_ready() -> bool:
    import subprocess

    if not os.path.exists(DEBIAN_PYTHON):
        return False
    probe = subprocess.run(
        [DEBIAN_PYTHON, "-c", "import aiohttp, asyncpg"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _debian_python_ready(),
    reason="Debian's python3-aiohttp and python3-asyncpg are not installed on this machine",
)
def test_runs_on_debian_packages_as_on_a_hall_host(
    pg: LocalPostgres, seeded: dict[str, int], tmp_path: Path
) -> None:
    """The package copied alone to a directory and run by Debian's python3 with Debian's
    aiohttp and asyncpg (bookworm: 3.8 and 0.27), as the systemd unit runs it."""
    import shutil

    src = Path(__file__).resolve().parents[2] / "clusters" / "apps" / "hall"
    shutil.copytree(src, tmp_path / "hall", ignore=shutil.ignore_patterns("__pycache__"))
    debian = LocalHall(
        pg,
        command=(DEBIAN_PYTHON, "-m", "hall"),
        extra_env={"PYTHONPATH": str(tmp_path), "PYTHONNOUSERSITE": "1", "VIRTUAL_ENV": ""},
    )
    debian.start()
    try:
        status, version = http_json("GET", debian.url + "/readyz")
        assert status == 200 and version["schema"] == schema.LATEST
        citizen = _account(debian)
        clerk = _staff(debian, "5203", "clerk", "backoffice")
        code = _apply(debian, citizen, "5203")
        assert _act(debian, clerk, code, "accept")[1]["state"] == "in_progress"
        assert _act(debian, clerk, code, "approve")[1]["state"] == "completed"
        # the case and its timeline in one query (an array of records, decoded by asyncpg 0.27)
        status, case = http_json("GET", f"{debian.url}/api/cases/{code}", token=citizen)
        assert status == 200 and [e["action"] for e in case["events"]] == [
            "apply",
            "accept",
            "approve",
        ]
        assert case["events"][1]["from_state"] == "submitted"
        assert case["events"][1]["to_state"] == "in_progress"
        for _ in range(2):  # the second answer from the read cache, the same
            status, page = http_json("GET", f"{debian.url}/api/sites/5203/items?limit=3")
            assert status == 200 and len(page["items"]) == 3
        assert http_json("DELETE", debian.url + "/api/cases", token=citizen)[0] == 405
        status, text = http_json("GET", debian.url + "/metrics", token=debian.admin_token)
        assert "hall_read_cache_hits_total 1" in text
        assert 'route="act",method="POST",status="200"} 2' in text
    finally:
        debian.stop()


def test_connections_the_database_ended_are_replaced_without_a_failed_request(
    hall: LocalHall, pg: LocalPostgres
) -> None:
    """As after a restart or a restore: the server ends every connection of the hall (the
    idle ones the app holds for its next queries among them); the next requests are served on
    new connections, none fails."""
    for _ in range(20):  # the app now holds idle connections
        assert http_json("GET", hall.url + "/api/sites/52")[0] == 200

    async def end_them() -> int:
        conn = await asyncpg.connect(pg.dsn)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    pg.database,
                )
            )
        finally:
            await conn.close()

    assert asyncio.run(end_them()) >= 1
    time.sleep(0.5)  # the app's event loop sees the connections close
    statuses = [http_json("GET", hall.url + "/api/sites/52")[0] for _ in range(20)]
    assert statuses == [200] * 20, statuses
    assert _staff(hall, "52", "clerk").startswith("hall_")  # a write, too
