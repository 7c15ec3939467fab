"""What TLS to the database costs the hall (issue 17): CPU per query with TLS against without.

The hall's pods reach PostgreSQL over TLS only (verify-full against the PKI's root). Encryption
runs in the app's process (asyncpg over Python's ssl) and in PostgreSQL's backend. One local
PostgreSQL serves both ways (``LocalPostgres.serve_tls``, a certificate for 127.0.0.1 from a CA
made here); one asyncpg connection each way, kept open as the pool keeps them, runs the same
queries in turn: a small one (a status read's size) and a catalog-sized one (50 rows). The
figures are CPU microseconds per query of this process and of the connection's backend
(``/proc/<pid>/stat``), TLS over plain in the same run, with asyncio's standard event loop and
with uvloop's (the hall's, as its image runs it).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import asyncpg

from bench.common import Result, process_cpu
from clusters.apps.hall.app import db_tls_context
from clusters.apps.hall.devserver import LocalPostgres
from govcloud.toolchain import pki as files

QUERIES = 4000
ROUNDS = 3  # plain and TLS alternate, best of three each
SMALL = "SELECT $1::int + 1 AS n, now() AS at"
CATALOG = (
    "SELECT g AS id, repeat('办', 24) AS name FROM generate_series(1, 50) AS g WHERE $1::int > 0"
)


async def _measure(conn: Any, backend: int, query: str) -> tuple[float, float]:
    """CPU µs per query of this process and of the backend, best of the rounds."""
    best_client = best_server = float("inf")
    for _ in range(ROUNDS):
        c0, s0 = time.process_time(), process_cpu(backend)
        for i in range(QUERIES):
            await conn.fetch(query, i + 1)
        best_client = min(best_client, (time.process_time() - c0) / QUERIES * 1e6)
        best_server = min(best_server, (process_cpu(backend) - s0) / QUERIES * 1e6)
    return best_client, best_server


async def _compare(dsn: str, ctx: ssl.SSLContext) -> dict[str, float]:
    plain = await asyncpg.connect(dsn + "?sslmode=disable")
    tls = await asyncpg.connect(dsn, ssl=ctx)
    out: dict[str, float] = {}
    try:
        assert await tls.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        pids = [await c.fetchval("SELECT pg_backend_pid()") for c in (plain, tls)]
        for label, query in (("small", SMALL), ("catalog", CATALOG)):
            for way, conn, pid in (("plain", plain, pids[0]), ("tls", tls, pids[1])):
                client, server = await _measure(conn, pid, query)
                out[f"{label}_{way}_client_us"] = round(client, 1)
                out[f"{label}_{way}_server_us"] = round(server, 1)
    finally:
        await plain.close()
        await tls.close()
    return out


def run() -> Result:
    from clusters.apps.hall.app import install_loop

    result = Result("db_tls")
    pg = LocalPostgres().start()
    policy = asyncio.get_event_loop_policy()
    figures: dict[str, float] = {}
    try:
        ca_key, ca = files.make_ca("bench root")
        key, cert = files.issue(
            ca_key,
            ca,
            files.CertRequest("db", "db", ip_addresses=("127.0.0.1",), server=True),
        )
        pg.serve_tls(files.cert_pem(cert), files.key_pem(key))
        ctx = db_tls_context(files.cert_pem(ca).decode())
        assert ctx is not None
        for loop in ("asyncio", "uvloop"):  # the standard loop, then the hall's (its image's)
            install_loop(loop)
            figures.update(
                {f"{loop}_{k}": v for k, v in asyncio.run(_compare(pg.dsn, ctx)).items()}
            )
            asyncio.set_event_loop_policy(policy)
    finally:
        asyncio.set_event_loop_policy(policy)
        pg.stop()
    result.figures.update(figures)
    ratios: dict[str, float] = {}
    for loop in ("asyncio", "uvloop"):
        for label in ("small", "catalog"):
            both = {
                way: figures[f"{loop}_{label}_{way}_client_us"]
                + figures[f"{loop}_{label}_{way}_server_us"]
                for way in ("plain", "tls")
            }
            ratios[f"{loop}_{label}"] = round(both["tls"] / both["plain"], 2)
            result.figures[f"{loop}_{label}_tls_over_plain"] = ratios[f"{loop}_{label}"]
            result.figures[f"{loop}_{label}_tls_extra_us"] = round(both["tls"] - both["plain"], 1)
            result.checks[f"{loop}, {label}: both ends' CPU was measured"] = min(both.values()) > 0
    # TLS on a kept connection is symmetric encryption of a few hundred bytes: on the hall's
    # loop it may cost the pair of processes at most half again per query
    result.checks["uvloop: TLS costs at most 1.5x plain per query (small and catalog)"] = all(
        ratios[f"uvloop_{label}"] <= 1.5 for label in ("small", "catalog")
    )
    return result
