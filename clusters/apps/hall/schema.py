"""The hall's PostgreSQL schema as numbered migrations.

Each migration runs once, in its own transaction, under an advisory lock (two hall hosts starting
together do not race); every statement is also written to be harmless when repeated, so a
half-recorded migration can be re-run. ``schema_migrations`` records what was applied.
"""

from __future__ import annotations

from typing import Any

#: (version, name, SQL)
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "catalog",
        """
        CREATE TABLE IF NOT EXISTS sites (
            code      text PRIMARY KEY,
            name      text NOT NULL,
            level     text NOT NULL CHECK (level IN
                        ('province','city','county','township','village')),
            parent    text REFERENCES sites(code),
            kind      text NOT NULL,
            windows   integer NOT NULL DEFAULT 1,
            hours     text NOT NULL DEFAULT '09:00-17:00'
        );
        CREATE INDEX IF NOT EXISTS sites_parent ON sites (parent);
        CREATE INDEX IF NOT EXISTS sites_level ON sites (level);
        CREATE TABLE IF NOT EXISTS departments (
            code text PRIMARY KEY,
            name text NOT NULL
        );
        CREATE TABLE IF NOT EXISTS items (
            code             text PRIMARY KEY,
            site_code        text NOT NULL REFERENCES sites(code),
            dept             text NOT NULL REFERENCES departments(code),
            kind             text NOT NULL CHECK (kind IN ('administrative','public_service')),
            name             text NOT NULL,
            basis            text NOT NULL,
            conditions       text NOT NULL,
            materials        jsonb NOT NULL,
            steps            jsonb NOT NULL,
            legal_limit_days integer NOT NULL,
            time_limit_days  integer NOT NULL,
            fee              text NOT NULL,
            online           boolean NOT NULL DEFAULT true
        );
        CREATE INDEX IF NOT EXISTS items_site ON items (site_code, dept, kind, code);
        """,
    ),
    (
        2,
        "accounts and tokens",
        """
        CREATE TABLE IF NOT EXISTS accounts (
            id            bigserial PRIMARY KEY,
            kind          text NOT NULL CHECK (kind IN ('citizen','enterprise')),
            login         text NOT NULL UNIQUE,
            name          text NOT NULL,
            password_hash text NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS sessions (
            token_hash bytea PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
        CREATE TABLE IF NOT EXISTS staff_tokens (
            token_hash bytea PRIMARY KEY,
            staff     text NOT NULL,
            roles     text[] NOT NULL,
            site_code text NOT NULL REFERENCES sites(code),
            label     text NOT NULL DEFAULT '',
            expires_at timestamptz NOT NULL
        );
        """,
    ),
    (
        3,
        "cases, events, ratings",
        """
        CREATE SEQUENCE IF NOT EXISTS case_seq;
        CREATE TABLE IF NOT EXISTS cases (
            id                    bigserial PRIMARY KEY,
            code                  text NOT NULL UNIQUE,
            item_code             text NOT NULL REFERENCES items(code),
            site_code             text NOT NULL REFERENCES sites(code),
            applicant_id          bigint NOT NULL REFERENCES accounts(id),
            state                 text NOT NULL CHECK (state IN
                ('submitted','in_progress','needs_material','returned','completed')),
            created_at            timestamptz NOT NULL DEFAULT now(),
            updated_at            timestamptz NOT NULL DEFAULT now(),
            accepted_at           timestamptz,
            deadline              timestamptz,
            material_requested_at timestamptz,
            finished_at           timestamptz,
            form                  jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX IF NOT EXISTS cases_queue ON cases (site_code, state, created_at);
        CREATE INDEX IF NOT EXISTS cases_applicant ON cases (applicant_id, created_at);
        CREATE INDEX IF NOT EXISTS cases_open_deadline ON cases (deadline)
            WHERE state IN ('in_progress','needs_material');
        CREATE TABLE IF NOT EXISTS case_events (
            id         bigserial PRIMARY KEY,
            case_id    bigint NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
            at         timestamptz NOT NULL DEFAULT now(),
            actor      text NOT NULL,
            action     text NOT NULL,
            from_state text,
            to_state   text NOT NULL,
            comment    text NOT NULL DEFAULT ''
        );
        CREATE INDEX IF NOT EXISTS case_events_case ON case_events (case_id, at);
        CREATE TABLE IF NOT EXISTS ratings (
            case_id bigint PRIMARY KEY REFERENCES cases(id) ON DELETE CASCADE,
            score   smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
            comment text NOT NULL DEFAULT '',
            at      timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
    (
        4,
        "catalog version",
        """
        CREATE TABLE IF NOT EXISTS catalog_version (
            id         boolean PRIMARY KEY DEFAULT true CHECK (id),
            version    bigint NOT NULL DEFAULT 0,
            changed_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO catalog_version (id) VALUES (true) ON CONFLICT (id) DO NOTHING;
        """,
    ),
    (
        5,
        "catalog version on every write",
        # Every statement writing a catalog table bumps the version, once per transaction (a
        # transaction-local setting marks it done; an upsert fires its INSERT and its UPDATE
        # trigger at once): the seed's writes and plain SQL alike, so the halls' read caches
        # drop what they hold for any committed change (cache.py).
        """
        CREATE OR REPLACE FUNCTION catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('hall.catalog_changed', true) IS DISTINCT FROM 'yes' THEN
                UPDATE catalog_version SET version = version + 1, changed_at = now();
                PERFORM set_config('hall.catalog_changed', 'yes', true);
            END IF;
            RETURN NULL;
        END
        $$;
        """
        + "".join(
            f"""
        DROP TRIGGER IF EXISTS catalog_changed ON {table};
        CREATE TRIGGER catalog_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} FOR EACH STATEMENT
            WHEN (current_setting('hall.catalog_changed', true) IS DISTINCT FROM 'yes')
            EXECUTE FUNCTION catalog_changed();
        """
            for table in ("departments", "sites", "items")
        ),
    ),
]

LATEST = MIGRATIONS[-1][0]
_LOCK_KEY = 0x6A0_11A1  # advisory lock id for migrations


async def migrate(conn: Any) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied (none: up to date)."""
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


async def current_version(conn: Any) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
