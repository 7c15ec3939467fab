"""The hall's read cache of the public catalog: what it keeps, for how long, when it lets go
(unit tests), and on a real hall over PostgreSQL: a cached read makes no database round trip, any
write to the catalog bumps its version and so drops it, ``HALL_READ_CACHE_S=0`` turns it off;
pooled connections go back
without asyncpg's reset round trip yet an open transaction is still rolled back; the cheap
access-log line and the histogram (unit)."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from clusters.apps.hall.app import Config, PoolConnection
from clusters.apps.hall.cache import ReadCache
from clusters.apps.hall.devserver import LocalHall, LocalPostgres, http_json, run_hall
from clusters.apps.hall.observe import BUCKETS, AccessLog, Metrics

SITE = "520102"

# -- unit -----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_values_expire_and_misses_are_not_kept() -> None:
    cache = ReadCache(1)
    calls: list[str] = []

    async def load(value: Any) -> Any:
        calls.append(str(value))
        return value

    async def scenario() -> None:
        assert await cache.through("a", lambda: load("A")) == "A"
        assert await cache.through("a", lambda: load("other")) == "A"  # kept
        assert await cache.through("gone", lambda: load(None)) is None
        assert await cache.through("gone", lambda: load(None)) is None  # a miss is asked again
        assert await cache.through(None, lambda: load("q1")) == "q1"  # key None: not kept
        assert await cache.through(None, lambda: load("q2")) == "q2"
        cache.data["a"] = (time.monotonic() - 0.01, "A")  # its time is up
        assert await cache.through("a", lambda: load("A2")) == "A2"

    asyncio.run(scenario())
    assert calls == ["A", "None", "None", "q1", "q2", "A2"]
    assert cache.hits == 1


@pytest.mark.unit
def test_switched_off_it_keeps_nothing() -> None:
    cache = ReadCache(0)
    n = [0]

    async def load() -> int:
        n[0] += 1
        return n[0]

    async def scenario() -> list[int]:
        return [await cache.through("k", load) for _ in range(3)]

    assert asyncio.run(scenario()) == [1, 2, 3]
    cache.put("k", 1)
    assert cache.data == {} and cache.get("k") is None


@pytest.mark.unit
def test_it_is_bounded_dropping_the_oldest_first() -> None:
    cache = ReadCache(60, size=10)
    for i in range(25):
        cache.put(i, f"v{i}")
    assert len(cache.data) <= 10
    assert cache.get(24) == "v24" and cache.get(0) is None


@pytest.mark.unit
def test_a_new_catalog_version_drops_everything() -> None:
    cache = ReadCache(60)
    assert cache.saw_version(3) is False  # the first look sets the version
    cache.put("k", "v")
    assert cache.saw_version(3) is False and cache.get("k") == "v"
    assert cache.saw_version(4) is True and cache.get("k") is None and cache.clears == 1


@pytest.mark.unit
def test_a_read_loading_while_the_cache_is_dropped_is_not_kept() -> None:
    cache = ReadCache(60)

    async def load_across_a_drop() -> str:
        cache.clear()  # a new catalog version seen while this read was at the database
        return "from before the change"

    async def load() -> str:
        return "current"

    async def scenario() -> tuple[str, str]:
        first = await cache.through("k", load_across_a_drop)
        return first, await cache.through("k", load)

    assert asyncio.run(scenario()) == ("from before the change", "current")
    since = cache.generation
    cache.clear()
    cache.put("rendered", "<p>old</p>", since)  # content built from data read before the drop
    cache.put("fresh", "<p>new</p>", cache.generation)
    assert cache.get("rendered") is None and cache.get("fresh") == "<p>new</p>"


@pytest.mark.unit
def test_the_cache_setting() -> None:
    assert Config.from_env({}).read_cache_s == 300
    assert Config.from_env({"HALL_READ_CACHE_S": "0"}).read_cache_s == 0
    for bad in ("-1", "3601", "ten"):
        with pytest.raises(ValueError, match="HALL_READ_CACHE_S"):
            Config.from_env({"HALL_READ_CACHE_S": bad})


@pytest.mark.unit
def test_the_access_log_line_is_one_json_object_whatever_the_path() -> None:
    log = AccessLog("off")
    log.stream = io.StringIO()
    hostile = '/api/sites/"}\n{"x":1\\中文\u2028'
    log.request("10.0.0.1", "GET", hostile, "site", 404, 0.0123456, None, None)
    log.request(None, "POST", "/api/cases", "apply", 201, 0.5, "citizen:7", "req-1")
    lines = log.stream.getvalue().split("\n")  # JSON lines end at "\n" only (not at U+2028)
    assert len(lines) == 3 and lines[-1] == ""
    first, second = (json.loads(line) for line in lines[:2])
    assert first["path"] == hostile and first["status"] == 404 and first["ms"] == 12.35
    assert first["caller"] is None and re.fullmatch(r"[0-9a-f]{16}", first["request_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["ts"])
    assert second["remote"] is None and second["caller"] == "citizen:7"
    assert second["request_id"] == "req-1"


@pytest.mark.unit
def test_the_histogram_puts_each_duration_in_its_first_bucket() -> None:
    m = Metrics()
    for seconds in (0.001, BUCKETS[0], 0.0051, 0.3, 99.0):
        m.observe("r", "GET", 200, seconds)
    h = m.hist[("r", "GET")]
    assert h[0] == 2 and h[1] == 1 and h[BUCKETS.index(0.3)] == 1
    assert sum(h[: len(BUCKETS)]) == 4 and h[-1] == 5  # 99 s: only +Inf


# -- a real hall -------------------------------------------------------------------------------


def _sql(pg: LocalPostgres, query: str, *args: Any) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(pg.dsn)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def _metric(hall: LocalHall, name: str) -> float:
    status, text = http_json("GET", hall.url + "/metrics", token=hall.admin_token)
    assert status == 200
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert m, name
    return float(m.group(1))


@pytest.fixture
def halls(pg: LocalPostgres, seeded: dict[str, int]) -> Iterator[dict[str, LocalHall]]:
    """A hall that keeps reads for 5 minutes (only the catalog version drops them) and one with
    the cache off, on the tests' database."""
    started: dict[str, LocalHall] = {}
    try:
        for name, seconds in (("cached", "300"), ("off", "0")):
            started[name] = LocalHall(pg, extra_env={"HALL_READ_CACHE_S": seconds}).start()
        yield started
    finally:
        for h in started.values():
            h.stop()


def _without_triggers(pg: LocalPostgres, query: str, *args: Any) -> None:
    """A write that fires no trigger (a session in replica mode, as a replication or a restore
    with triggers off writes): the catalog's version stays."""

    async def go() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute("SET session_replication_role = replica")
            await conn.execute(query, *args)
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.mark.integration
def test_cached_reads_skip_the_database_until_the_catalog_changes(
    halls: dict[str, LocalHall], pg: LocalPostgres
) -> None:
    cached, off = halls["cached"], halls["off"]
    status, page = http_json("GET", f"{cached.url}/api/sites/{SITE}/items?limit=5")
    assert status == 200 and page["items"]
    code, name = page["items"][0]["code"], page["items"][0]["name"]
    for h in (cached, off):  # warm: guide (API and page) and the catalog page
        assert http_json("GET", f"{h.url}/api/items/{code}")[1]["name"] == name
        assert name in http_json("GET", f"{h.url}/items/{code}")[1]
    hits = _metric(cached, "hall_read_cache_hits_total")
    version = _sql(pg, "SELECT version FROM catalog_version")
    hidden, changed = name + "（未见）", name + "（已修订）"
    _without_triggers(pg, "UPDATE items SET name = $2 WHERE code = $1", code, hidden)
    try:
        # the catalog's version stayed: the caching hall answers from memory, the other from
        # the table
        assert _sql(pg, "SELECT version FROM catalog_version") == version
        assert http_json("GET", f"{cached.url}/api/items/{code}")[1]["name"] == name
        assert http_json("GET", f"{cached.url}/api/sites/{SITE}/items?limit=5")[1] == page
        assert hidden not in http_json("GET", f"{cached.url}/items/{code}")[1]
        assert _metric(cached, "hall_read_cache_hits_total") >= hits + 3
        assert http_json("GET", f"{off.url}/api/items/{code}")[1]["name"] == hidden
        assert hidden in http_json("GET", f"{off.url}/items/{code}")[1]
        # plain SQL, as a seed writes: a new catalog version, seen within about a second
        _sql(pg, "UPDATE items SET name = $2 WHERE code = $1 RETURNING code", code, changed)
        deadline = time.monotonic() + 5
        while http_json("GET", f"{cached.url}/api/items/{code}")[1]["name"] != changed:
            assert time.monotonic() < deadline, "a write to the catalog did not drop the cache"
            time.sleep(0.2)
        assert changed in http_json("GET", f"{cached.url}/items/{code}")[1]
        assert http_json("GET", f"{cached.url}/api/sites/{SITE}/items?limit=5")[1] != page
    finally:
        _sql(pg, "UPDATE items SET name = $2 WHERE code = $1 RETURNING code", code, name)


@pytest.mark.integration
def test_every_write_to_the_catalog_bumps_its_version_once_a_transaction(
    hall: LocalHall, pg: LocalPostgres
) -> None:
    def version() -> int:
        return int(_sql(pg, "SELECT version FROM catalog_version"))

    before = version()
    run_hall(["seed", str(pg.root / "seed-plan.json")], hall.env())
    assert version() == before + 1  # the seed's many statements: one transaction, one bump
    _sql(pg, "UPDATE departments SET name = name WHERE false RETURNING code")
    assert version() == before + 2  # a statement that wrote no row: bumped too (per statement)

    async def rolled_back() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("UPDATE sites SET hours = hours")
            await conn.execute("UPDATE items SET fee = fee WHERE code = ''")
            await tx.rollback()
        finally:
            await conn.close()

    asyncio.run(rolled_back())
    assert version() == before + 2


@pytest.mark.integration
def test_a_new_item_and_an_unknown_one_are_not_hidden_by_the_cache(
    halls: dict[str, LocalHall], pg: LocalPostgres
) -> None:
    cached = halls["cached"]
    code = f"{SITE}-gat-C{int(time.time() * 1000) % 10**6:06d}"
    assert http_json("GET", f"{cached.url}/api/items/{code}")[0] == 404
    _sql(
        pg,
        "INSERT INTO items (code, site_code, dept, kind, name, basis, conditions, materials,"
        " steps, legal_limit_days, time_limit_days, fee) VALUES ($1, $2, 'gat',"
        " 'administrative', '缓存测试事项', '', '', '[]'::jsonb, '[]'::jsonb, 10, 5, '')"
        " RETURNING code",
        code,
        SITE,
    )
    try:
        status, guide = http_json("GET", f"{cached.url}/api/items/{code}")
        assert status == 200 and guide["name"] == "缓存测试事项"  # the 404 was not kept
    finally:
        _sql(pg, "DELETE FROM items WHERE code = $1 RETURNING code", code)


@pytest.mark.integration
def test_a_released_connection_skips_the_reset_query_but_not_the_rollback(
    pg: LocalPostgres, seeded: dict[str, int]
) -> None:
    async def scenario() -> tuple[list[str], bool, int]:
        pool = await asyncpg.create_pool(
            pg.dsn, min_size=1, max_size=1, connection_class=PoolConnection
        )
        sent: list[str] = []
        try:
            async with pool.acquire() as conn:
                conn.add_query_logger(lambda q: sent.append(q.query))
                await conn.fetchval("SELECT 1")
            first = list(sent)  # what went to the server up to and with the release
            async with pool.acquire() as conn:  # the same connection: max_size=1
                await conn.execute("BEGIN")  # left open, as a cancelled request might
                await conn.execute("CREATE TEMP TABLE t_reset (x int)")
                await conn.execute("INSERT INTO t_reset VALUES (1)")
            async with pool.acquire() as conn:
                in_tx = conn.is_in_transaction()
                left = await conn.fetchval("SELECT count(*) FROM pg_class WHERE relname='t_reset'")
        finally:
            await pool.close()
        return first, in_tx, int(left)

    sent, in_tx, left = asyncio.run(scenario())
    assert sent == ["SELECT 1"]  # no RESET ALL / UNLISTEN / advisory unlock on release
    assert not in_tx and left == 0  # the open transaction was rolled back


def _writes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text(encoding="ascii").splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw in /proc/<pid>/io")


@pytest.mark.integration
def test_the_access_log_on_standard_output_is_written_in_blocks(
    pg: LocalPostgres, seeded: dict[str, int]
) -> None:
    """A pod logs to standard output, often with PYTHONUNBUFFERED=1: the access log keeps a
    buffer of its own, so 300 requests cost a handful of write calls, and every line arrives."""
    # asyncio's loop answers with send(2), which /proc's write count leaves out; uvloop's
    # with write(2), which it counts: on asyncio's, the count is the log's writes alone
    env = {"HALL_ACCESS_LOG": "-", "PYTHONUNBUFFERED": "1", "HALL_LOOP": "asyncio"}
    hall = LocalHall(pg, extra_env=env).start()
    try:
        assert hall.proc is not None and hall.log_path is not None
        before = _writes(hall.proc.pid)
        for _ in range(300):
            assert http_json("GET", hall.url + "/healthz")[0] == 200
        time.sleep(1.5)  # flushed about once a second
        written = _writes(hall.proc.pid) - before
        lines = [
            json.loads(line)
            for line in hall.log_path.read_text(encoding="utf-8").splitlines()
            if line.startswith('{"ts"')
        ]
    finally:
        hall.stop()
    assert sum(1 for r in lines if r["route"] == "healthz") >= 300
    assert written < 30, written
