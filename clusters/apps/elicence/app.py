"""The e-licence library (电子证照库): an aiohttp service over PostgreSQL (asyncpg).

Runs on Debian bookworm's packages (python3-aiohttp, python3-asyncpg, python3-cryptography).

=======  ===============================  =============================================
method   path                             who
=======  ===============================  =============================================
GET      /healthz, /readyz                anyone (no data)
GET      /api/types                       anyone: the licence types and their issuers
GET      /api/seal-keys                   anyone: each issuer's public seal key
POST     /api/licences                    the issuing department (its OpenBao token)
POST     /api/licences/{number}/revoke    the issuing department (its OpenBao token)
GET      /api/licences?holder=&type=      the exchange (reader token): valid licences
GET      /api/licences/{number}           the exchange: one licence (410 when revoked)
GET      /api/licences/{number}/history   the exchange: what happened to it
=======  ===============================  =============================================

Issuing and revoking sign with the caller's own OpenBao token against the type's issuer key, so
OpenBao decides who may seal for a department; a caller that cannot is refused with nothing
written. A malformed holder identifier is refused (400) and logged before anything is read or
written.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import IO, Any

import aiohttp
import asyncpg
from aiohttp import web

from . import schema
from .ids import BadIdentifier, check_holder
from .seal import SealError, Transit, canonical

MAX_DATA = 16 * 1024  # bytes of a licence's own fields


@dataclass
class Config:
    dsn: str = "postgresql:///elicence"
    host: str = "127.0.0.1"
    port: int = 8444
    openbao_addr: str = "http://127.0.0.1:8200"
    openbao_token: str = ""  # the library's own token: reads public seal keys only
    transit_mount: str = "transit"
    reader_token: str = ""  # what the exchange presents to read
    pool_size: int = 10
    log: str = "-"

    @classmethod
    def from_env(cls, env: Any = None) -> Config:
        e = os.environ if env is None else env
        c = cls()
        c.dsn = e.get("ELICENCE_DSN", c.dsn)
        c.host = e.get("ELICENCE_HOST", c.host)
        c.openbao_addr = e.get("ELICENCE_OPENBAO_ADDR", c.openbao_addr)
        c.openbao_token = e.get("ELICENCE_OPENBAO_TOKEN", c.openbao_token)
        c.transit_mount = e.get("ELICENCE_TRANSIT_MOUNT", c.transit_mount)
        c.reader_token = e.get("ELICENCE_READER_TOKEN", c.reader_token)
        c.log = e.get("ELICENCE_LOG", c.log)
        for name, attr in (("ELICENCE_PORT", "port"), ("ELICENCE_DB_POOL", "pool_size")):
            raw = e.get(name)
            if raw:
                try:
                    setattr(c, attr, int(raw))
                except ValueError:
                    raise ValueError(f'{name}: expected an integer, got "{raw}"') from None
        if not c.reader_token:
            raise ValueError("ELICENCE_READER_TOKEN: required (the exchange's read credential)")
        return c


class Refusal(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


class Library:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.pool: Any = None
        self.session: aiohttp.ClientSession | None = None
        self.transit: Transit | None = None
        self.types: dict[str, dict[str, str]] = {}
        self._log: IO[str] = sys.stdout

    # -- lifecycle -------------------------------------------------------------------------

    def build(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=64 * 1024)
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/readyz", self.readyz)
        r.add_get("/api/types", self.list_types)
        r.add_get("/api/seal-keys", self.seal_keys)
        r.add_post("/api/licences", self.issue)
        r.add_get("/api/licences", self.lookup)
        r.add_get("/api/licences/{number}", self.one)
        r.add_get("/api/licences/{number}/history", self.history)
        r.add_post("/api/licences/{number}/revoke", self.revoke)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        return app

    async def start(self, _app: web.Application) -> None:
        if self.config.log not in ("", "-"):
            self._log = open(self.config.log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.pool = await asyncpg.create_pool(
            self.config.dsn, min_size=1, max_size=self.config.pool_size
        )
        async with self.pool.acquire() as conn:
            await schema.migrate(conn)
        await self.reload_types()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.transit = Transit(
            self.session,
            self.config.openbao_addr,
            self.config.openbao_token,
            self.config.transit_mount,
        )

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()
        if self.pool is not None:
            await self.pool.close()
        if self._log is not sys.stdout:
            self._log.close()

    async def reload_types(self) -> None:
        rows = await self.pool.fetch("SELECT code, name, issuer, holder FROM licence_types")
        self.types = {r["code"]: dict(r) for r in rows}

    # -- middleware: errors as JSON, one log line per refusal -------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        start = time.monotonic()
        try:
            return await handler(request)
        except Refusal as r:
            body: dict[str, Any] = {"error": r.message}
            if r.field:
                body["field"] = r.field
            self.log_line(request, r.status, r.message, r.field, start)
            return web.json_response(body, status=r.status)

    def log_line(
        self, request: web.Request, status: int, error: str, field: str | None, start: float
    ) -> None:
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "method": request.method,
            "path": request.path,
            "status": status,
            "error": error,
            "field": field,
            "ms": round((time.monotonic() - start) * 1000, 2),
        }
        self._log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._log.flush()

    # -- helpers ---------------------------------------------------------------------------

    def _reader(self, request: web.Request) -> None:
        token = _bearer(request)
        if not hmac.compare_digest(token.encode(), self.config.reader_token.encode()):
            raise Refusal(401, "a reader token is required (reads go through the exchange)")

    def _type(self, code: Any, field: str = "type") -> dict[str, str]:
        t = self.types.get(code) if isinstance(code, str) else None
        if t is None:
            raise Refusal(404, f"unknown licence type {code!r}", field)
        return t

    @staticmethod
    def _holder(kind: str, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise Refusal(400, "expected the holder's identifier as a string", field)
        try:
            return check_holder(kind, value)
        except BadIdentifier as exc:
            raise Refusal(400, f"malformed holder identifier: {exc}", field) from None

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise Refusal(400, "expected a JSON object") from None
        if not isinstance(body, dict):
            raise Refusal(400, "expected a JSON object")
        return body

    async def _seal(self, issuer: str, payload: bytes, token: str) -> str:
        assert self.transit is not None
        try:
            return await self.transit.sign(issuer, payload, token)
        except SealError as exc:
            if exc.status in (401, 403):
                raise Refusal(
                    403, f"only the issuing department ({issuer}) may seal this licence"
                ) from None
            raise Refusal(503, f"the seal service failed: {exc.message}") from None

    # -- routes ----------------------------------------------------------------------------

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        try:
            await self.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError):
            return web.json_response({"ok": False, "error": "database"}, status=503)
        return web.json_response({"ok": True, "types": len(self.types)})

    async def list_types(self, _request: web.Request) -> web.Response:
        return web.json_response({"types": sorted(self.types.values(), key=lambda t: t["code"])})

    async def seal_keys(self, _request: web.Request) -> web.Response:
        assert self.transit is not None
        out = {}
        for issuer in sorted({t["issuer"] for t in self.types.values()}):
            try:
                out[issuer] = await self.transit.public_keys(issuer)
            except SealError as exc:
                raise Refusal(503, f"the seal service failed: {exc.message}") from None
        return web.json_response({"keys": out})

    async def issue(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        if not token:
            raise Refusal(401, "the issuing department's OpenBao token is required")
        body = await self._json(request)
        t = self._type(body.get("type"))
        holder = self._holder(t["holder"], body.get("holder"), "holder")
        name = body.get("holder_name")
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise Refusal(400, "expected the holder's name (1-100 characters)", "holder_name")
        data = body.get("data", {})
        if not isinstance(data, dict) or len(json.dumps(data, ensure_ascii=False)) > MAX_DATA:
            raise Refusal(400, f"expected an object of at most {MAX_DATA} bytes", "data")
        valid_until = body.get("valid_until")
        if valid_until is not None:
            try:
                dt.date.fromisoformat(str(valid_until))
            except ValueError:
                raise Refusal(400, "expected a date (YYYY-MM-DD)", "valid_until") from None
        seq = await self.pool.fetchval("SELECT nextval('licence_number_seq')")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        number = f"{t['issuer']}-{t['code']}-{now:%Y%m%d}-{seq:010d}"
        record = {
            "number": number,
            "type": t["code"],
            "type_name": t["name"],
            "issuer": t["issuer"],
            "holder": {"id": holder, "name": name},
            "data": data,
            "issued_at": now.isoformat(),
            "valid_until": valid_until,
        }
        payload = canonical(record)
        seal = await self._seal(t["issuer"], payload, token)
        async with self.pool.acquire() as conn, conn.transaction():
            lid = await conn.fetchval(
                "INSERT INTO licences (number, type_code, issuer, holder_id, payload, seal,"
                " issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                number,
                t["code"],
                t["issuer"],
                holder,
                payload,
                seal,
                now,
            )
            await conn.execute(
                "INSERT INTO licence_events (licence_id, actor, action, detail)"
                " VALUES ($1, $2, 'issued', $3)",
                lid,
                t["issuer"],
                json.dumps({"seal": seal}),
            )
        return web.json_response(_licence(number, "valid", payload, seal), status=201)

    async def revoke(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        if not token:
            raise Refusal(401, "the issuing department's OpenBao token is required")
        body = await self._json(request)
        reason = body.get("reason")
        if not isinstance(reason, str) or not 0 < len(reason) <= 500:
            raise Refusal(400, "expected the reason (1-500 characters)", "reason")
        number = request.match_info["number"]
        row = await self.pool.fetchrow(
            "SELECT id, issuer, status FROM licences WHERE number = $1", number
        )
        if row is None:
            raise Refusal(404, f"no licence {number}")
        if row["status"] == "revoked":
            raise Refusal(409, f"licence {number} is already revoked")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        notice = canonical({"revoked": number, "reason": reason, "at": now.isoformat()})
        seal = await self._seal(row["issuer"], notice, token)  # proves the issuer revokes
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE licences SET status = 'revoked', revoked_at = $2, revoke_reason = $3"
                " WHERE id = $1 AND status = 'valid'",
                row["id"],
                now,
                reason,
            )
            if done != "UPDATE 1":
                raise Refusal(409, f"licence {number} is already revoked")
            await conn.execute(
                "INSERT INTO licence_events (licence_id, actor, action, detail)"
                " VALUES ($1, $2, 'revoked', $3)",
                row["id"],
                row["issuer"],
                json.dumps({"reason": reason, "notice": notice.decode(), "seal": seal}),
            )
        return web.json_response({"number": number, "status": "revoked", "seal": seal})

    async def lookup(self, request: web.Request) -> web.Response:
        self._reader(request)
        t = self._type(request.query.get("type"))
        holder = self._holder(t["holder"], request.query.get("holder"), "holder")
        rows = await self.pool.fetch(
            "SELECT number, payload, seal FROM licences"
            " WHERE holder_id = $1 AND type_code = $2 AND status = 'valid' ORDER BY id",
            holder,
            t["code"],
        )
        return web.json_response(
            {
                "type": t["code"],
                "issuer": t["issuer"],
                "licences": [_licence(r["number"], "valid", r["payload"], r["seal"]) for r in rows],
            }
        )

    async def one(self, request: web.Request) -> web.Response:
        self._reader(request)
        number = request.match_info["number"]
        row = await self.pool.fetchrow(
            "SELECT status, payload, seal, revoked_at FROM licences WHERE number = $1", number
        )
        if row is None:
            raise Refusal(404, f"no licence {number}")
        if row["status"] == "revoked":
            raise Refusal(410, f"licence {number} was revoked on {row['revoked_at']:%Y-%m-%d}")
        return web.json_response(_licence(number, "valid", row["payload"], row["seal"]))

    async def history(self, request: web.Request) -> web.Response:
        self._reader(request)
        number = request.match_info["number"]
        rows = await self.pool.fetch(
            "SELECT e.at, e.actor, e.action, e.detail FROM licence_events e"
            " JOIN licences l ON l.id = e.licence_id WHERE l.number = $1 ORDER BY e.at, e.id",
            number,
        )
        if not rows:
            raise Refusal(404, f"no licence {number}")
        return web.json_response(
            {
                "number": number,
                "events": [
                    {
                        "at": r["at"].isoformat(),
                        "actor": r["actor"],
                        "action": r["action"],
                        "detail": json.loads(r["detail"]),
                    }
                    for r in rows
                ],
            }
        )


def _bearer(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else ""


def _licence(number: str, status: str, payload: bytes, seal: str) -> dict[str, Any]:
    """A licence as served: the sealed bytes as text (verify exactly these) and the seal."""
    return {"number": number, "status": status, "payload": bytes(payload).decode(), "seal": seal}


def build(config: Config) -> web.Application:
    return Library(config).build()
