"""The e-licence library and the exchange on a store of 2 million licences (Guizhou holds about
2.01 million), ratios in one run.

- lookup by holder and type through the exchange (token → department from OpenBao, grant,
  audit record, the library, PostgreSQL) against the same query straight from the database
  (the floor): p95 latency and server CPU per lookup (the processes that serve: exchange,
  library, OpenBao, PostgreSQL; the floor: PostgreSQL), with the exchange's short token cache
  (the default) and without it (an OpenBao lookup on every call);
- the e-seal: sealing by OpenBao transit plus offline verification, per licence, against a
  local ed25519 signature and verification of the same bytes (python ``cryptography``); and a
  whole issue through the library (validate, seal, insert, event).

The store is seeded with COPY (seeded rows carry a placeholder seal of a real seal's length:
sealing 2 million rows through OpenBao would measure nothing the seal figures do not). The
seeded database is kept as a dump under ``$GOVCLOUD_CACHE`` and restored on later runs.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import Result, process_cpu
from clusters.apps.elicence.devserver import LocalApp, LocalBao, Services
from clusters.apps.elicence.ids import make_citizen_id, make_credit_code
from clusters.apps.elicence.seal import Transit, verify
from clusters.apps.hall.devserver import LocalPostgres, http_json, pg_bindir
from govcloud.paths import cache_dir
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC
from security.openbao.client import Bao, Endpoint
from security.openbao.seals import (
    EXCHANGE_POLICY,
    LIBRARY_POLICY,
    apply_seals,
    enrol_department_apps,
    exchange_grants,
    licence_types,
)

LICENCES = int(os.environ.get("BENCH_ELICENCE_LICENCES", "2000000"))
SECONDS = 6.0
CLIENTS = 8
SEALS = 300
ISSUES = 100
DUMP_VERSION = 1
CITIZEN_TYPES = (
    ("id-card", "gat", "居民身份证"),
    ("household-register", "gat", "居民户口簿"),
    ("marriage-certificate", "mzt", "结婚证"),
    ("birth-certificate", "wjw", "出生医学证明"),
    ("social-security-card", "rst", "社会保障卡"),
)
DIVISIONS = ("520102", "520103", "520302", "520303")
PLACEHOLDER_SEAL = "seed:v0:" + base64.b64encode(bytes(64)).decode()
READER = "dsjj"  # reads id-card, business-licence, marriage and birth certificates
READ_TYPES = ("id-card", "business-licence", "marriage-certificate", "birth-certificate")


# -- the store -----------------------------------------------------------------------------


def licence_row(i: int) -> tuple[str, str, str, str]:
    """(number, type, issuer, holder) of seeded licence ``i``: nine in ten a citizen's (about
    three licences per citizen), one in ten an enterprise's business licence."""
    if i % 10 == 9:
        return (
            f"scjgj-business-licence-seed-{i:010d}",
            "business-licence",
            "scjgj",
            make_credit_code(DIVISIONS[i % 4], i),
        )
    code, issuer, _ = CITIZEN_TYPES[i % 5]
    n = i // 3
    born = f"{1950 + n % 60}{1 + n % 12:02d}{1 + n % 28:02d}"
    return (
        f"{issuer}-{code}-seed-{i:010d}",
        code,
        issuer,
        make_citizen_id(DIVISIONS[n % 4], born, n % 1000),
    )


def _records(n: int, issued: dt.datetime) -> Iterator[tuple[Any, ...]]:
    names = {c: name for c, _, name in CITIZEN_TYPES} | {"business-licence": "营业执照"}
    at = issued.isoformat()
    for i in range(n):
        number, code, issuer, holder = licence_row(i)
        payload = (
            f'{{"data":{{}},"holder":{{"id":"{holder}","name":"持证人{i % 997}"}},'
            f'"issued_at":"{at}","issuer":"{issuer}","number":"{number}","type":"{code}",'
            f'"type_name":"{names[code]}","valid_until":null}}'
        ).encode()
        yield (number, code, issuer, holder, payload, PLACEHOLDER_SEAL, issued)


async def _sql(dsn: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for stmt in statements:
            await conn.execute(stmt)
    finally:
        await conn.close()


DROP_INDEXES = (
    "DROP INDEX IF EXISTS licences_holder",
    "ALTER TABLE licences DROP CONSTRAINT IF EXISTS licences_number_key",
)


def _build_indexes(n: int) -> tuple[str, ...]:
    return (
        "ALTER TABLE licences ADD CONSTRAINT licences_number_key UNIQUE (number)",
        "CREATE INDEX licences_holder ON licences (holder_id, type_code)",
        f"SELECT setval('licence_number_seq', {n + 1})",
        "SELECT setval('licences_id_seq', (SELECT max(id) FROM licences))",
        "ANALYZE licences",
    )


async def _copy(dsn: str, n: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "licences",
            records=_records(n, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
            columns=["number", "type_code", "issuer", "holder_id", "payload", "seal", "issued_at"],
        )
    finally:
        await conn.close()


def _pg(pg: LocalPostgres, tool: str, *args: str) -> None:
    cmd = [*pg._as, str(pg_bindir() / tool), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user]
    subprocess.run([*cmd, *args], check=True, capture_output=True, timeout=1800)


def prepare_store(services: Services, n: int) -> tuple[str, float]:
    """Seed (or restore from the cached dump) ``n`` licences: (how, seconds)."""
    pg = services.pg
    dump = cache_dir() / "bench" / f"elicence-{n}-v{DUMP_VERSION}.dump"
    start = time.perf_counter()
    asyncio.run(_sql(pg.dsn, *DROP_INDEXES))
    if dump.exists():
        tmp = pg.root / "restore.dump"  # readable by the cluster's user
        tmp.write_bytes(dump.read_bytes())
        os.chmod(tmp, 0o644)
        _pg(pg, "pg_restore", "-d", pg.database, "--data-only", "-t", "licences", str(tmp))
        tmp.unlink()
        how = "restored"
    else:
        asyncio.run(_copy(pg.dsn, n))
        tmp = pg.root / "seed.dump"
        _pg(pg, "pg_dump", "-Fc", "-Z", "1", "-t", "licences", "-f", str(tmp), pg.database)
        dump.parent.mkdir(parents=True, exist_ok=True)
        dump.write_bytes(tmp.read_bytes())
        tmp.unlink()
        how = "seeded"
    asyncio.run(_sql(pg.dsn, *_build_indexes(n)))
    return how, time.perf_counter() - start


# -- CPU of the serving processes ----------------------------------------------------------


def _postgres_pids(pg: LocalPostgres) -> set[int]:
    master = int((pg.root / "data" / "postmaster.pid").read_text().split()[0])
    pids = {master}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.add(int(entry))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU used by a set of processes since the meter started; processes that appear later
    (new database connections) count from zero. ``pids`` is asked again at the end."""

    def __init__(self, pids: Callable[[], set[int]]) -> None:
        self.pids = pids
        self.start = {p: process_cpu(p) for p in pids()}

    def used(self) -> float:
        return sum(process_cpu(p) - self.start.get(p, 0.0) for p in self.pids())


def _p95(samples: list[float]) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.95))] * 1000 if s else 0.0


# -- drivers -------------------------------------------------------------------------------


def _keys(n: int, count: int = 4000) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 7
    while len(out) < count:
        i = (i * 1103515245 + 12345) % n
        _, code, _, holder = licence_row(i)
        if code in READ_TYPES:
            out.append((code, holder))
    return out


async def _drive_exchange(
    url: str, token: str, keys: list[tuple[str, str]], cases: list[str], seconds: float
) -> tuple[list[float], int, int]:
    import aiohttp

    latencies: list[float] = []
    failed = found = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:

        async def client(k: int) -> None:
            nonlocal failed, found
            i = k
            while time.monotonic() < stop:
                code, holder = keys[i % len(keys)]
                t0 = time.perf_counter()
                async with session.get(
                    f"{url}/api/licences",
                    params={"type": code, "holder": holder},
                    headers={"X-Case-Code": cases[i % len(cases)]},
                ) as resp:
                    body = await resp.json()
                latencies.append(time.perf_counter() - t0)
                if resp.status != 200:
                    failed += 1
                elif body["licences"]:
                    found += 1
                i += CLIENTS

        await asyncio.gather(*(client(k) for k in range(CLIENTS)))
    return latencies, failed, found


async def _drive_database(
    dsn: str, keys: list[tuple[str, str]], seconds: float, pg: LocalPostgres
) -> tuple[list[float], int, float]:
    """(latencies, lookups that found a licence, PostgreSQL CPU seconds) over one warm pool."""
    import asyncpg

    latencies: list[float] = []
    found = 0
    pool = await asyncpg.create_pool(dsn, min_size=CLIENTS, max_size=CLIENTS)
    try:

        async def client(k: int, stop: float, record: bool) -> None:
            nonlocal found
            i = k
            while time.monotonic() < stop:
                code, holder = keys[i % len(keys)]
                t0 = time.perf_counter()
                rows = await pool.fetch(
                    "SELECT number, payload, seal FROM licences"
                    " WHERE holder_id = $1 AND type_code = $2 AND status = 'valid' ORDER BY id",
                    holder,
                    code,
                )
                if record:
                    latencies.append(time.perf_counter() - t0)
                    found += bool(rows)
                i += CLIENTS

        warm = time.monotonic() + 1.0
        await asyncio.gather(*(client(k, warm, False) for k in range(CLIENTS)))
        meter = CpuMeter(lambda: _postgres_pids(pg))
        stop = time.monotonic() + seconds
        await asyncio.gather(*(client(k, stop, True) for k in range(CLIENTS)))
        cpu = meter.used()
    finally:
        await pool.close()
    return latencies, found, cpu


def _case_codes(count: int) -> list[str]:
    from clusters.apps.exchange.app import valid_case_code

    out = []
    for seq in range(count):
        body = f"520102000000{20261201:08d}{seq:010d}"
        out.append(next(body + d for d in "0123456789" if valid_case_code(body + d)))
    return out


# -- seal ----------------------------------------------------------------------------------


async def _transit_seals(addr: str, token: str, payload: bytes, n: int) -> list[str]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        transit = Transit(session, addr, token)
        return [await transit.sign("gat", payload, token) for _ in range(n)]


def run() -> Result:
    spec = load_spec(LAB_SPEC)
    work = Path(tempfile.mkdtemp(prefix="govcloud-bench-elicence-"))
    pg = LocalPostgres(user="elicence", database="elicence").start()
    bao = LocalBao().start()
    services: list[Services] = []
    apps: list[LocalApp] = []
    try:
        root = Bao(Endpoint(bao.addr), bao.root_token)
        tokens = enrol_department_apps(root, [d.code for d in spec.departments])
        apply_seals(root, spec)
        lib_token = root.create_token([LIBRARY_POLICY], ttl="4h")
        grants = exchange_grants(spec)
        cached = Services.create(
            pg, bao, grants, lib_token, root.create_token([EXCHANGE_POLICY], ttl="4h"), work
        ).start(licence_types(spec))
        services.append(cached)
        how, store_s = prepare_store(cached, LICENCES)
        uncached = LocalApp(
            "clusters.apps.exchange",
            "EXCHANGE",
            {
                **cached.exchange.env_extra,
                "EXCHANGE_OPENBAO_TOKEN": root.create_token([EXCHANGE_POLICY], ttl="4h"),
                "EXCHANGE_AUDIT_LOG": str(work / "exchange-nocache.jsonl"),
                "EXCHANGE_TOKEN_CACHE_SECONDS": "0",
            },
        ).start()
        apps.append(uncached)

        keys = _keys(LICENCES)
        cases = _case_codes(100)
        serving = [
            p.pid
            for p in (bao.proc, cached.library.proc, cached.exchange.proc, uncached.proc)
            if p is not None
        ]
        figures: dict[str, float | int | str] = {"licences": LICENCES, "store": how,
                                                  "store_s": round(store_s, 1)}  # fmt: skip

        lat, found_db, cpu_db = asyncio.run(_drive_database(pg.dsn, keys, SECONDS, pg))
        floor_cpu = cpu_db / len(lat)
        figures |= {
            "db_lookups": len(lat),
            "db_p95_ms": round(_p95(lat), 2),
            "db_cpu_ms_per_lookup": round(floor_cpu * 1000, 3),
        }
        db_p95 = _p95(lat)
        failures = 0
        ok_found = found_db == len(lat)
        for label, app in (("exchange", cached.exchange), ("exchange_nocache", uncached)):
            url = app.url
            asyncio.run(_drive_exchange(url, tokens[READER], keys, cases, 1.0))
            exchange_pid = app.proc.pid if app.proc else 0
            parts = {
                "exchange": CpuMeter(lambda pid=exchange_pid: {pid}),  # type: ignore[misc]
                "library": CpuMeter(lambda: set(serving[1:2])),
                "openbao": CpuMeter(lambda: set(serving[:1])),
                "postgres": CpuMeter(lambda: _postgres_pids(pg)),
            }
            lat, failed, found = asyncio.run(
                _drive_exchange(url, tokens[READER], keys, cases, SECONDS)
            )
            used = {k: m.used() / len(lat) * 1000 for k, m in parts.items()}
            cpu = sum(used.values()) / 1000
            figures[f"{label}_cpu_ms_by_process"] = ", ".join(
                f"{k} {v:.3f}" for k, v in used.items()
            )
            failures += failed
            ok_found &= found == len(lat) - failed
            figures |= {
                f"{label}_lookups": len(lat),
                f"{label}_p95_ms": round(_p95(lat), 2),
                f"{label}_cpu_ms_per_lookup": round(cpu * 1000, 3),
                f"{label}_p95_vs_db": round(_p95(lat) / db_p95, 1) if db_p95 else 0,
                f"{label}_cpu_vs_db": round(cpu / floor_cpu, 1) if floor_cpu else 0,
            }
        audited = int(
            subprocess.run(["wc", "-l", str(cached.audit_file)], capture_output=True, text=True,
                           check=True).stdout.split()[0]
        )  # fmt: skip

        # the seal: OpenBao transit + offline verification against local ed25519
        from cryptography.hazmat.primitives.asymmetric import ed25519

        payload = next(r for r in _records(1, dt.datetime.now(dt.UTC)))[4]
        _, keyset = http_json("GET", cached.library.url + "/api/seal-keys")
        key = keyset["keys"]["gat"]
        meter = CpuMeter(lambda: set(serving[:1]))  # OpenBao
        t0 = time.perf_counter()
        seals = asyncio.run(_transit_seals(bao.addr, tokens["gat"], payload, SEALS))
        seal_ms = (time.perf_counter() - t0) / SEALS * 1000
        seal_cpu_ms = meter.used() / SEALS * 1000
        t0 = time.perf_counter()
        verified = all(verify(payload, s, key) for s in seals)
        verify_ms = (time.perf_counter() - t0) / SEALS * 1000
        tampered = bytearray(payload)
        tampered[len(tampered) // 2] ^= 1
        tamper_caught = not verify(bytes(tampered), seals[0], key)
        local = ed25519.Ed25519PrivateKey.generate()
        public = local.public_key()
        t0 = time.perf_counter()
        sigs = [local.sign(payload) for _ in range(SEALS)]
        local_sign_ms = (time.perf_counter() - t0) / SEALS * 1000
        t0 = time.perf_counter()
        for sig in sigs:
            public.verify(sig, payload)
        local_verify_ms = (time.perf_counter() - t0) / SEALS * 1000

        auth = f"Bearer {tokens['gat']}"
        meter = CpuMeter(lambda: _postgres_pids(pg) | set(serving))
        t0 = time.perf_counter()
        issued = 0
        for i in range(ISSUES):
            status, _ = _post(
                cached.library.url + "/api/licences",
                {"type": "id-card", "holder": make_citizen_id("520102", "20000101", i % 1000),
                 "holder_name": "压测", "data": {"n": i}},
                auth,
            )  # fmt: skip
            issued += status == 201
        issue_ms = (time.perf_counter() - t0) / ISSUES * 1000
        issue_cpu_ms = meter.used() / ISSUES * 1000
        figures |= {
            "payload_bytes": len(payload),
            "seal_transit_ms": round(seal_ms, 3),
            "seal_transit_openbao_cpu_ms": round(seal_cpu_ms, 3),
            "verify_offline_ms": round(verify_ms, 3),
            "local_sign_ms": round(local_sign_ms, 3),
            "local_verify_ms": round(local_verify_ms, 3),
            "seal_verify_vs_local": round(
                (seal_ms + verify_ms) / (local_sign_ms + local_verify_ms), 1
            ),
            "issue_ms": round(issue_ms, 2),
            "issue_cpu_ms": round(issue_cpu_ms, 2),
            "exchange_failures": failures,
        }
        lookups = int(figures["exchange_lookups"]) + int(figures["exchange_nocache_lookups"])
        return Result(
            "elicence",
            figures,
            {
                f"the store holds {LICENCES:,} licences": _count(pg.dsn) >= LICENCES,
                "every lookup found its licence, none failed": ok_found and failures == 0,
                "every exchange lookup is in its audit log": audited
                >= int(figures["exchange_lookups"])
                and lookups > 0,
                "every transit seal verifies offline": verified,
                "a changed byte fails verification": tamper_caught,
                "every issue through the library succeeded": issued == ISSUES,
            },
        )
    finally:
        for app in apps:
            app.stop()
        for svc in services:
            svc.stop()
        bao.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def _post(url: str, body: dict[str, Any], auth: str) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": auth},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _count(dsn: str) -> int:
    import asyncpg

    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM licences"))
        finally:
            await conn.close()

    return asyncio.run(go())


if __name__ == "__main__":
    print(run())
