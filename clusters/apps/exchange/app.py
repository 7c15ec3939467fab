"""The data-sharing exchange (数据共享交换平台): the one gateway through which a department's app
reads another department's data, the e-licence library first.

=======  ==============================  ===================================================
method   path                            who
=======  ==============================  ===================================================
GET      /healthz, /readyz               anyone (no data)
GET      /api/licences?holder=&type=     a department app: ``Authorization: Bearer <its
                                         OpenBao token>``, ``X-Case-Code: <case code>``
=======  ==============================  ===================================================

Every call is decided and recorded: the caller's department comes from OpenBao (token → entity
→ groups, :mod:`.identity`), the grant from the spec (:mod:`.grants`), the reason is the case
code (一件一码: 31 digits with a Luhn check digit, as the hall makes them), and the record goes
to the append-only log (:mod:`.auditlog`) before any data is returned.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from .auditlog import AuditLog, Record
from .grants import Grants
from .identity import Resolver, Unidentified

_CASE_CODE = re.compile(r"^\d{31}$")


def valid_case_code(code: str) -> bool:
    if not _CASE_CODE.match(code):
        return False
    total = 0
    for i, ch in enumerate(reversed(code)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass
class Config:
    dsn: str = "postgresql:///exchange"
    host: str = "127.0.0.1"
    port: int = 9443
    openbao_addr: str = "http://127.0.0.1:8200"
    openbao_token: str = ""  # the exchange's own token: token lookup, entity and group reads
    grants: str = ""  # the grants file written from the spec
    elicence_url: str = "http://127.0.0.1:8444"
    elicence_token: str = ""  # the reader token the library expects
    audit_file: str = ""  # JSON-lines copy of the log (what `govcloud audit` reads)
    token_cache_seconds: float = 5.0
    pool_size: int = 10

    @classmethod
    def from_env(cls, env: Any = None) -> Config:
        e = os.environ if env is None else env
        c = cls()
        c.dsn = e.get("EXCHANGE_DSN", c.dsn)
        c.host = e.get("EXCHANGE_HOST", c.host)
        c.openbao_addr = e.get("EXCHANGE_OPENBAO_ADDR", c.openbao_addr)
        c.openbao_token = e.get("EXCHANGE_OPENBAO_TOKEN", c.openbao_token)
        c.grants = e.get("EXCHANGE_GRANTS", c.grants)
        c.elicence_url = e.get("EXCHANGE_ELICENCE_URL", c.elicence_url).rstrip("/")
        c.elicence_token = e.get("EXCHANGE_ELICENCE_TOKEN", c.elicence_token)
        c.audit_file = e.get("EXCHANGE_AUDIT_LOG", c.audit_file)
        try:
            c.port = int(e.get("EXCHANGE_PORT", c.port))
            c.pool_size = int(e.get("EXCHANGE_DB_POOL", c.pool_size))
            c.token_cache_seconds = float(
                e.get("EXCHANGE_TOKEN_CACHE_SECONDS", c.token_cache_seconds)
            )
        except ValueError as exc:
            raise ValueError(f"EXCHANGE_PORT / _DB_POOL / _TOKEN_CACHE_SECONDS: {exc}") from None
        for name, value in (
            ("EXCHANGE_OPENBAO_TOKEN", c.openbao_token),
            ("EXCHANGE_GRANTS", c.grants),
            ("EXCHANGE_ELICENCE_TOKEN", c.elicence_token),
        ):
            if not value:
                raise ValueError(f"{name}: required")
        return c


class Exchange:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.grants = Grants.load(config.grants)
        self.pool: Any = None
        self.session: aiohttp.ClientSession | None = None
        self.resolver: Resolver | None = None
        self.log: AuditLog | None = None

    def build(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/api/licences", self.licences)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        return app

    async def start(self, _app: web.Application) -> None:
        self.pool = await asyncpg.create_pool(
            self.config.dsn, min_size=1, max_size=self.config.pool_size
        )
        self.log = AuditLog(self.pool, self.config.audit_file)
        await self.log.setup()
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10),
            connector=aiohttp.TCPConnector(limit=64),
        )
        self.resolver = Resolver(
            self.session,
            self.config.openbao_addr,
            self.config.openbao_token,
            self.config.token_cache_seconds,
        )

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()
        if self.log is not None:
            self.log.close()
        if self.pool is not None:
            await self.pool.close()

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _request: web.Request) -> web.Response:
        try:
            await self.pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError):
            return web.json_response({"ok": False, "error": "database"}, status=503)
        return web.json_response({"ok": True})

    async def licences(self, request: web.Request) -> web.Response:
        start = time.monotonic()
        assert self.resolver is not None and self.session is not None
        type_code = request.query.get("type", "")
        holder = request.query.get("holder", "")
        case = request.headers.get("X-Case-Code", "").strip()
        owner = self.grants.issuer(type_code) or "-"
        rec = Record(
            caller="-",
            caller_entity="-",
            owner=owner,
            type_code=type_code[:64],
            holder=holder[:64],
            case_code=case[:64],
            decision="refused",
            status=0,
            reason="",
        )

        async def refuse(status: int, reason: str) -> web.Response:
            rec.status, rec.reason = status, reason
            return await self._finish(rec, start, {"error": reason}, status)

        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not token:
            return await refuse(401, "the caller's OpenBao token is required (Bearer)")
        try:
            caller = await self.resolver.resolve(token)
        except Unidentified as exc:
            return await refuse(exc.status, exc.message)
        rec.caller, rec.caller_entity = caller.department, caller.entity
        if not valid_case_code(case):
            return await refuse(
                400, "X-Case-Code: expected the case code (一件一码, 31 digits with its check)"
            )
        if owner == "-":
            return await refuse(404, f"unknown licence type {type_code!r}")
        if not self.grants.allows(caller.department, type_code):
            return await refuse(
                403, f"department {caller.department} is not granted licence type {type_code}"
            )
        try:
            async with self.session.get(
                f"{self.config.elicence_url}/api/licences",
                params={"holder": holder, "type": type_code},
                headers={"Authorization": f"Bearer {self.config.elicence_token}"},
            ) as resp:
                status = resp.status
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            return await refuse(502, f"the e-licence library did not answer ({type(exc).__name__})")
        if status != 200:
            reason = str((body or {}).get("error", f"the library answered {status}"))
            return await refuse(status if 400 <= status < 500 else 502, reason)
        rec.decision, rec.status, rec.reason = "served", 200, "granted"
        rec.licences = [lic["number"] for lic in body.get("licences", [])]
        return await self._finish(rec, start, body, 200)

    async def _finish(
        self, rec: Record, start: float, body: dict[str, Any], status: int
    ) -> web.Response:
        assert self.log is not None
        rec.ms = round((time.monotonic() - start) * 1000, 3)
        try:
            await self.log.write(rec)
        except (OSError, asyncpg.PostgresError):
            return web.json_response(
                {"error": "the read could not be recorded, so it is refused"}, status=503
            )
        return web.json_response(body, status=status)


def build(config: Config) -> web.Application:
    return Exchange(config).build()
