"""The e-licence library's PostgreSQL schema, as numbered migrations (the hall's pattern: each
runs once, in its own transaction, under an advisory lock).

Sized for millions of licences: a licence is found by holder and type through one b-tree
(``licences_holder``), by number through its unique index; events (issued, revoked) by licence.
A licence's sealed bytes are kept as sealed (``payload``), so a seal verifies against exactly
what was signed.
"""

from __future__ import annotations

from typing import Any

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "licence types, licences, events",
        """
        CREATE TABLE IF NOT EXISTS licence_types (
            code    text PRIMARY KEY,
            name    text NOT NULL,
            issuer  text NOT NULL,
            holder  text NOT NULL CHECK (holder IN ('citizen','enterprise'))
        );
        CREATE SEQUENCE IF NOT EXISTS licence_number_seq;
        CREATE TABLE IF NOT EXISTS licences (
            id            bigserial PRIMARY KEY,
            number        text NOT NULL UNIQUE,
            type_code     text NOT NULL REFERENCES licence_types(code),
            issuer        text NOT NULL,
            holder_id     text NOT NULL,
            status        text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid','revoked')),
            payload       bytea NOT NULL,
            seal          text NOT NULL,
            issued_at     timestamptz NOT NULL DEFAULT now(),
            revoked_at    timestamptz,
            revoke_reason text
        );
        CREATE INDEX IF NOT EXISTS licences_holder ON licences (holder_id, type_code);
        CREATE TABLE IF NOT EXISTS licence_events (
            id         bigserial PRIMARY KEY,
            licence_id bigint NOT NULL REFERENCES licences(id),
            at         timestamptz NOT NULL DEFAULT now(),
            actor      text NOT NULL,
            action     text NOT NULL CHECK (action IN ('issued','revoked')),
            detail     jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX IF NOT EXISTS licence_events_licence ON licence_events (licence_id, at);
        """,
    ),
]

LATEST = MIGRATIONS[-1][0]
_LOCK_KEY = 0x0E11CE  # advisory lock id for migrations


async def migrate(conn: Any) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied."""
    applied: list[int] = []
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
                    " ON CONFLICT (version) DO NOTHING",
                    version,
                    name,
                )
            applied.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied


async def load_types(conn: Any, types: list[dict[str, str]]) -> int:
    """Upsert licence types (code, name, issuer, holder): the spec's ``licences`` as data."""
    for t in types:
        if t.get("holder") not in ("citizen", "enterprise"):
            raise ValueError(
                f"licence type {t.get('code')!r}: holder must be citizen or enterprise"
            )
    await conn.executemany(
        "INSERT INTO licence_types (code, name, issuer, holder) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (code) DO UPDATE SET name = excluded.name, issuer = excluded.issuer,"
        " holder = excluded.holder",
        [(t["code"], t["name"], t["issuer"], t["holder"]) for t in types],
    )
    return len(types)
