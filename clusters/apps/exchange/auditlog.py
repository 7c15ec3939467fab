"""The exchange's append-only record of reads: who read whose data, why (the case code) and
when, allowed or refused.

Each record goes to a PostgreSQL table that refuses UPDATE, DELETE and TRUNCATE (a trigger) and,
when a file is configured, as one JSON line to that file (what ``govcloud audit`` reads). A read
whose record cannot be written is refused: no data leaves without its record (fail closed).

Holder identifiers are not written in clear: a masked form (the division code and the last two
characters) and a SHA-256 digest, which an officer who holds the number can recompute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import IO, Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchange_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    caller        text NOT NULL,
    caller_entity text NOT NULL,
    owner         text NOT NULL,
    service       text NOT NULL,
    type_code     text NOT NULL,
    holder_masked text NOT NULL,
    holder_digest text NOT NULL,
    case_code     text NOT NULL,
    decision      text NOT NULL CHECK (decision IN ('served','refused')),
    status        integer NOT NULL,
    reason        text NOT NULL,
    licences      text[] NOT NULL DEFAULT '{}',
    ms            real NOT NULL
);
CREATE INDEX IF NOT EXISTS exchange_log_case ON exchange_log (case_code);
CREATE INDEX IF NOT EXISTS exchange_log_caller ON exchange_log (caller, at);
CREATE INDEX IF NOT EXISTS exchange_log_holder ON exchange_log (holder_digest);
CREATE OR REPLACE FUNCTION exchange_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'exchange_log is append-only';
END $$;
CREATE OR REPLACE TRIGGER exchange_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON exchange_log
    FOR EACH STATEMENT EXECUTE FUNCTION exchange_log_append_only();
"""
_LOCK_KEY = 0x0E8C4A


def mask(holder: str) -> str:
    if len(holder) < 10:
        return "*" * len(holder)
    return holder[:6] + "*" * (len(holder) - 8) + holder[-2:]


def digest(holder: str) -> str:
    return hashlib.sha256(holder.strip().upper().encode()).hexdigest()


@dataclass
class Record:
    caller: str  # the calling department ("-" when it could not be identified)
    caller_entity: str
    owner: str  # the department whose data was asked for ("-" when unknown)
    type_code: str
    holder: str
    case_code: str
    decision: str  # served | refused
    status: int
    reason: str
    licences: list[str] = field(default_factory=list)
    ms: float = 0.0
    service: str = "e-licence"
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        holder = d.pop("holder")
        d["at"] = self.at.isoformat(timespec="milliseconds")
        d["holder_masked"] = mask(holder)
        d["holder_digest"] = digest(holder)
        return {"kind": "exchange-read", **d}


class AuditLog:
    def __init__(self, pool: Any, path: str = "") -> None:
        self.pool = pool
        self.path = path
        self._file: IO[str] | None = None

    async def setup(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
            try:
                await conn.execute(SCHEMA)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        if self.path:
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    async def write(self, r: Record) -> None:
        """Record ``r`` in the table, then the file; raises when either fails."""
        await self.pool.execute(
            "INSERT INTO exchange_log (at, caller, caller_entity, owner, service, type_code,"
            " holder_masked, holder_digest, case_code, decision, status, reason, licences, ms)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            r.at,
            r.caller,
            r.caller_entity,
            r.owner,
            r.service,
            r.type_code,
            mask(r.holder),
            digest(r.holder),
            r.case_code,
            r.decision,
            r.status,
            r.reason,
            r.licences,
            r.ms,
        )
        if self._file is not None:
            self._file.write(json.dumps(r.as_json(), ensure_ascii=False) + "\n")
            self._file.flush()
