"""The online service hall (网上办事大厅): an aiohttp service over PostgreSQL (asyncpg).

Runs on Debian bookworm's own packages (python3-aiohttp 3.8, python3-asyncpg 0.27) as well as on
current releases: no newer API is used.

Routes (every one authenticated with ``Authorization: Bearer <token>`` except the public catalog
and the liveness/readiness probes):

=======  =====================================  ==================  ===========================
method   path                                   route name          who
=======  =====================================  ==================  ===========================
GET      /healthz, /readyz                      healthz, readyz     anyone (no data)
GET      /metrics                               metrics             metrics/admin token
GET      /api/sites?parent=&level=              sites               public
GET      /api/sites/{site}                      site                public
GET      /api/sites/{site}/items                catalog             public
GET      /api/items/{item}                      guide               public
POST     /api/accounts                          register            anyone (creates an account)
POST     /api/login                             login               anyone
GET      /api/me                                me                  account or staff
POST     /api/cases                             apply               citizen / enterprise
GET      /api/my/cases                          my_cases            citizen / enterprise
GET      /api/cases/{code}                      progress            applicant, staff, kiosk
POST     /api/cases/{code}/supplement           supplement          applicant
POST     /api/cases/{code}/rating               rate                applicant
GET      /api/staff/queue?state=                queue               clerk / backoffice
POST     /api/staff/cases/{code}/{action}       act                 clerk / backoffice
GET      /api/supervision/overdue               overdue             supervisor
GET      /api/sites/{site}/ratings              ratings             staff of the region
POST     /api/admin/staff-tokens                admin_staff_token   admin token
GET/PUT  /api/admin/faults                      admin_faults        admin token
=======  =====================================  ==================  ===========================

The citizens' and staff's web pages (server-rendered HTML, routes named ``page_*``, and
``/static/*``) are in ``pages.py``; they share the operations below with the JSON API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hmac
import json
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from . import schema
from .auth import (
    ACCOUNT_PREFIX,
    STAFF_PREFIX,
    STAFF_ROLES,
    Authenticator,
    Caller,
    LocalStaffTokens,
    OpenBaoStaff,
    StaffAuthenticator,
    check_password,
    hash_password,
    new_token,
)
from .auth import digest as digest_of
from .cache import ReadCache
from .codes import (
    ACTIONS,
    FINAL_STATES,
    LEVELS,
    STATE_LABELS,
    STATES,
    level_of_path,
    site_level,
    valid_case_code,
)
from .observe import AccessLog, Metrics
from .tls import server_tls_context

PUBLIC_ROUTES = frozenset({"healthz", "readyz", "sites", "site", "catalog", "guide"})
OPEN_ROUTES = frozenset({"register", "login"})  # no token needed: they issue one
STAFF_VIEW_ROLES = frozenset({"clerk", "backoffice", "supervisor", "hotline"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass
class Config:
    """Settings, from the environment (``HALL_*``); see ``from_env``."""

    dsn: str = "postgresql:///hall"
    #: TLS to the database, verified against HALL_DB_CA (the PKI's root, PEM) for the DSN's
    #: host; None: the DSN's own sslmode (a local socket in development)
    db_ssl: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    staff_auth: str = "local"  # local | openbao
    openbao_addr: str = ""
    openbao_ca: str | None = None
    admin_token: str = ""
    metrics_token: str = ""
    access_log: str = "-"
    pool_size: int = 10
    scrypt_n: int = 1 << 14
    session_hours: int = 8
    faults: str = ""
    warn_days: int = 1
    #: seconds the public catalog's hot reads are kept in the process at most (0: off): any
    #: write to the catalog drops them within about a second anyway (see cache.py)
    read_cache_s: int = 300
    #: the pages' cookies carry Secure; HALL_COOKIE_SECURE=0 drops it, allowed only on loopback
    #: (a plain-HTTP client there, e.g. a cookie jar that keeps Secure cookies to HTTPS)
    cookie_secure: bool = True
    #: named in every response's X-Served-By (HALL_INSTANCE, else the pod's HOSTNAME), so a load
    #: test through the edge can tell which replica served
    instance: str = ""
    #: the event loop: "auto" (uvloop when installed, as in the image: its C transports cost
    #: less CPU per request, TLS to the database most; bench db_tls), "uvloop" or "asyncio"
    loop: str = "auto"
    #: HTTPS served with HALL_TLS_CERT and HALL_TLS_KEY (PEM; tls.py); None: plain HTTP
    server_ssl: ssl.SSLContext | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        e = os.environ if env is None else env
        c = cls()
        c.dsn = e.get("HALL_DSN", c.dsn)
        c.db_ssl = db_tls_context(e.get("HALL_DB_CA", ""))
        c.server_ssl = server_tls_context(e.get("HALL_TLS_CERT", ""), e.get("HALL_TLS_KEY", ""))
        c.loop = e.get("HALL_LOOP", c.loop) or c.loop
        if c.loop not in ("auto", "uvloop", "asyncio"):
            raise ValueError(f'HALL_LOOP: expected "auto", "uvloop" or "asyncio", got "{c.loop}"')
        c.host = e.get("HALL_HOST", c.host)
        c.port = _int_env(e, "HALL_PORT", c.port)
        c.staff_auth = e.get("HALL_STAFF_AUTH", c.staff_auth)
        if c.staff_auth not in ("local", "openbao"):
            raise ValueError(
                f'HALL_STAFF_AUTH: expected "local" or "openbao", got "{c.staff_auth}"'
            )
        c.openbao_addr = e.get("HALL_OPENBAO_ADDR", c.openbao_addr)
        if c.staff_auth == "openbao" and not c.openbao_addr:
            raise ValueError("HALL_OPENBAO_ADDR: required when HALL_STAFF_AUTH=openbao")
        c.openbao_ca = e.get("HALL_OPENBAO_CACERT") or None
        c.admin_token = e.get("HALL_ADMIN_TOKEN", c.admin_token)
        c.metrics_token = e.get("HALL_METRICS_TOKEN", c.metrics_token)
        c.access_log = e.get("HALL_ACCESS_LOG", c.access_log)
        c.instance = e.get("HALL_INSTANCE") or e.get("HOSTNAME", "")
        c.pool_size = _int_env(e, "HALL_DB_POOL", c.pool_size)
        c.scrypt_n = _int_env(e, "HALL_SCRYPT_N", c.scrypt_n)
        if c.scrypt_n < 2 or c.scrypt_n & (c.scrypt_n - 1):
            raise ValueError(f"HALL_SCRYPT_N: expected a power of two, got {c.scrypt_n}")
        c.session_hours = _int_env(e, "HALL_SESSION_HOURS", c.session_hours)
        c.read_cache_s = _int_env(e, "HALL_READ_CACHE_S", c.read_cache_s)
        if not 0 <= c.read_cache_s <= 3600:
            raise ValueError(f"HALL_READ_CACHE_S: expected 0..3600 seconds, got {c.read_cache_s}")
        c.faults = e.get("HALL_FAULTS", c.faults)
        parse_faults(c.faults)  # fail at start on a malformed value
        secure = e.get("HALL_COOKIE_SECURE", "1").strip().lower()
        if secure not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f'HALL_COOKIE_SECURE: expected 1 or 0, got "{secure}"')
        c.cookie_secure = secure in ("1", "true", "yes")
        if not c.cookie_secure and c.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"HALL_COOKIE_SECURE=0 is for a hall on loopback only (HALL_HOST is {c.host})"
            )
        return c

    def db_options(self) -> dict[str, Any]:
        """asyncpg's connection options beyond the DSN: the verifying TLS context, if any."""
        return {"ssl": self.db_ssl} if self.db_ssl is not None else {}


def install_loop(choice: str) -> str:
    """Make ``choice`` (Config.loop) the event loop of what runs next; returns the one in use.
    "uvloop" without uvloop installed is an error naming HALL_LOOP."""
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError("HALL_LOOP=uvloop: uvloop is not installed (python3-uvloop)") from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def db_tls_context(ca_pem: str) -> ssl.SSLContext | None:
    """A client context that requires TLS 1.2+ and a server certificate chaining to ``ca_pem``
    for the name or address connected to (libpq's verify-full); None for an empty value."""
    if not ca_pem.strip():
        return None
    try:
        ctx = ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(
            f"HALL_DB_CA: expected PEM certificates, got an unreadable value ({exc})"
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _int_env(env: Any, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f'{name}: expected an integer, got "{raw}"') from None


# -- faults (for load-test drills) --------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    route: str
    delay_ms: int
    level: str | None = None  # only requests addressing a site of this level

    def as_dict(self) -> dict[str, Any]:
        return {"route": self.route, "delay_ms": self.delay_ms, "level": self.level}


def parse_faults(text: str) -> list[Fault]:
    """``route:delay_ms[@level]`` items, comma-separated: ``guide:400@county,apply:200``."""
    faults = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            route, rest = part.split(":", 1)
            delay, _, level = rest.partition("@")
            fault = Fault(route, int(delay), level or None)
        except ValueError:
            raise ValueError(
                f'HALL_FAULTS: expected "route:delay_ms[@level]", got "{part}"'
            ) from None
        if fault.level is not None and fault.level not in LEVELS:
            raise ValueError(f'HALL_FAULTS: unknown level "{fault.level}" in "{part}"')
        faults.append(fault)
    return faults


# -- helpers ------------------------------------------------------------------------------------


class Problem(Exception):
    """A refusal: the API answers ``message`` as JSON, the pages show ``zh`` (Chinese)."""

    def __init__(
        self, status: int, message: str, field: str | None = None, zh: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.zh = zh


@functools.lru_cache(maxsize=20_000)
def _iso(value: dt.datetime) -> str:
    return value.isoformat()


def _default(o: Any) -> Any:
    """JSON for what json does not know: times as ISO 8601. The database's times (UTC) are kept
    written (the same cases' times go out again and again; isoformat is a costly call); only
    UTC and naive ones, since equal times in other zones would print other offsets."""
    if isinstance(o, dt.datetime) and (o.tzinfo is dt.UTC or o.tzinfo is None):
        return _iso(o)
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    raise TypeError(type(o).__name__)


#: one encoder for every answer (json.dumps with options builds a new one each call)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def dumps(data: Any) -> str:
    return _ENCODER.encode(data)


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def reply_body(body: bytes) -> web.Response:
    """An answer already encoded (a cached public read)."""
    return web.Response(body=body, content_type="application/json", charset="utf-8")


class PoolConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query (a round trip on every
    release: close cursors, UNLISTEN, RESET ALL, advisory unlock). The hall's requests use none of
    those session features (migrations take their advisory lock on a connection of their own);
    an open transaction is still rolled back on release."""

    def get_reset_query(self) -> str:  # asyncpg >= 0.30
        return ""

    def _get_reset_query(self) -> str:  # asyncpg 0.27 (Debian bookworm)
        return ""


class QuickPool:
    """asyncpg's pool with a short list of idle connections in front of it.

    A query through asyncpg's ``Pool.fetch`` & co. acquires a connection and releases it
    through ``asyncio.shield`` (a task and two more turns of the event loop each time, with the
    pool's bookkeeping and timers). Here a query takes a connection this object holds idle,
    and when it succeeded with the connection idle again (open, no transaction), puts it back:
    no round trip to PostgreSQL and nothing else differs (the hall's connections carry no
    session state: ``PoolConnection``). Whatever else happens (an error, a cancellation, a
    closed connection) the connection goes back through asyncpg's own release, as before.

    At most ``keep`` connections are held so; the rest of the pool works as asyncpg's. A held
    connection goes back to asyncpg after ``MAX_USES`` queries (so its query limit and
    recycling still apply) and when it has been idle ``IDLE_S`` seconds (``trim``, called about
    once a second): an idle hall's connections are then closed by asyncpg as before.
    """

    MAX_USES = 10_000
    IDLE_S = 60.0

    def __init__(self, pool: Any, keep: int) -> None:
        self.pool = pool
        self.keep = keep
        self.idle: list[tuple[Any, int, float]] = []  # (connection, queries so far, idle since)

    @staticmethod
    def _usable(conn: Any) -> bool:
        """Open, and still this object's: a connection the server ended (a restart, a restore)
        is closed, and asyncpg detaches it from its proxy, which then refuses every call."""
        try:
            return not conn.is_closed()
        except asyncpg.InterfaceError:
            return False

    async def _run(self, method: str, query: str, args: tuple[Any, ...]) -> Any:
        conn = None
        while self.idle:
            conn, uses, _ = self.idle.pop()
            if self._usable(conn):
                break
            await self._give_back(conn)  # closed meanwhile: asyncpg reconnects its holder
            conn = None
        if conn is None:
            conn, uses = await self.pool.acquire(), 0
        try:
            result = await getattr(conn, method)(query, *args)
        except BaseException:
            await self._give_back(conn)
            raise
        uses += 1
        if (
            len(self.idle) < self.keep
            and uses < self.MAX_USES
            and self._usable(conn)
            and not conn.is_in_transaction()
        ):
            self.idle.append((conn, uses, time.monotonic()))
        else:
            await self.pool.release(conn)
        return result

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self._run("fetch", query, args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._run("fetchrow", query, args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._run("fetchval", query, args)

    async def execute(self, query: str, *args: Any) -> Any:
        return await self._run("execute", query, args)

    def acquire(self, *, timeout: float | None = None) -> Any:
        """A connection of asyncpg's pool (for a transaction): ``async with pool.acquire()``."""
        return self.pool.acquire(timeout=timeout)

    def get_size(self) -> int:
        return int(self.pool.get_size())

    def get_idle_size(self) -> int:
        return int(self.pool.get_idle_size()) + len(self.idle)

    async def trim(self, idle_s: float | None = None) -> None:
        """Give back to asyncpg the connections idle for ``idle_s`` seconds (all with 0)."""
        limit = time.monotonic() - (self.IDLE_S if idle_s is None else idle_s)
        old = [held for held in self.idle if held[2] <= limit]
        if old:
            self.idle = [held for held in self.idle if held[2] > limit]
            for conn, _, _ in old:
                await self._give_back(conn)

    async def _give_back(self, conn: Any) -> None:
        try:
            await self.pool.release(conn)
        except Exception:
            return  # a broken connection: asyncpg's pool has let it go already

    async def close(self) -> None:
        await self.trim(0)
        await self.pool.close()


async def body_of(request: web.Request) -> dict[str, Any]:
    """The request's JSON object. JSON travels as UTF-8 (RFC 8259): the body is decoded so,
    without reading a charset from the Content-Type (aiohttp before 3.9 parses that header
    with the email package: tens of microseconds a request)."""
    try:
        data = json.loads((await request.read()).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Problem(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "expected a JSON object as the body")
    return data


def text_field(
    data: dict[str, Any], name: str, *, max_len: int = 200, required: bool = True
) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise Problem(400, f"{name}: expected a non-empty string", name)
    if len(value) > max_len:
        raise Problem(400, f"{name}: at most {max_len} characters", name)
    return value.strip()


def int_query(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Problem(400, f"{name}: expected an integer, got {raw!r}", name) from None
    if not lo <= value <= hi:
        raise Problem(400, f"{name}: expected {lo}..{hi}, got {value}", name)
    return value


def in_scope(caller: Caller, site: str) -> bool:
    """Staff see their own site and the sites below it."""
    return site.startswith(caller.site)


CLERK_ROLES = frozenset({"clerk", "backoffice"})
SUPERVISOR_ROLES = frozenset({"supervisor"})


def applicant(c: Caller | None) -> Caller:
    """The caller, if a citizen or an enterprise (those who apply)."""
    if c is None or c.kind not in ("citizen", "enterprise"):
        raise Problem(403, "only citizens and enterprises apply", zh="请以个人或法人账号登录")
    return c


def staff_with(c: Caller | None, roles: frozenset[str]) -> Caller:
    """The caller, if staff with one of ``roles``."""
    if c is None or c.kind != "staff" or not c.roles & roles:
        names = "、".join(ROLE_LABELS.get(r, r) for r in sorted(roles))
        raise Problem(
            403,
            f"needs a staff token with role {' or '.join(sorted(roles))}",
            zh=f"需要以下岗位的工作人员登录：{names}",
        )
    return c


def case_code(code: str) -> str:
    if not valid_case_code(code):
        raise Problem(
            400,
            f"not a case code: {code!r} (31 digits with a check digit)",
            zh="办件编码应为 31 位数字（含校验位），请核对",
        )
    return code


EVENT_FIELDS = ("at", "actor", "action", "from_state", "to_state", "comment")
RATING_FIELDS = ("score", "comment", "at")

#: a new case in one statement: $1 item, $2 date (YYYYMMDD), $3 applicant, $4 form, $5 actor.
#: The code is ``codes.make_case_code(site, date, nextval)``: the site padded to 12 digits with
#: zeros, the date, the sequence number modulo 10^10 in 10 digits, then the Luhn check digit
#: (every second digit from the right doubled, its digits summed). No row: no such item (and no
#: number taken).
FILE_CASE_SQL = (
    "WITH n AS (SELECT site_code, rpad(site_code, greatest(12, length(site_code)), '0') || $2"
    " || lpad((nextval('case_seq') % 10000000000)::text, 10, '0') AS body"
    " FROM items WHERE code = $1),"
    " k AS (SELECT site_code, body || (10 - (SELECT sum(CASE WHEN x.i % 2 = 0"
    " THEN (2 * x.d) / 10 + (2 * x.d) % 10 ELSE x.d END)"
    " FROM (SELECT substr(body, length(body) - g.i, 1)::int AS d, g.i"
    " FROM generate_series(0, length(body) - 1) AS g(i)) AS x) % 10) % 10 AS code FROM n),"
    " c AS (INSERT INTO cases (code, item_code, site_code, applicant_id, state, form)"
    " SELECT code, $1, site_code, $3, 'submitted', $4::jsonb FROM k"
    " RETURNING id, code, state, created_at, site_code),"
    " e AS (INSERT INTO case_events (case_id, actor, action, to_state)"
    " SELECT id, $5, 'apply', 'submitted' FROM c)"
    " SELECT code, state, created_at, site_code FROM c"
)

ROLE_LABELS = {
    "clerk": "窗口人员",
    "backoffice": "后台审批人员",
    "supervisor": "电子监察人员",
    "hotline": "12345 热线",
    "kiosk": "自助终端",
}


#: (method, path, handler, route name); GET routes answer HEAD too
Route = tuple[str, str, Any, str]

#: the routes the load suite's mix requests most, most first: aiohttp before 3.10 (Debian
#: bookworm's is 3.8) tries an application's routes in the order they were added, each a
#: coroutine and a pattern, so these are added first (newer releases look a path up directly)
HOT_ROUTES = (
    "guide",
    "catalog",
    "progress",
    "page_site",
    "page_guide",
    "act",
    "page_my_cases",
    "page_case",
    "my_cases",
    "queue",
    "apply",
    "page_apply_form",
    "page_apply",
    "page_static",
    "sites",
)


def hot_first(route: Route) -> int:
    """Sort key: the hot routes in their order, then the rest as they come (a stable sort)."""
    name = route[3]
    return HOT_ROUTES.index(name) if name in HOT_ROUTES else len(HOT_ROUTES)


# -- the application ----------------------------------------------------------------------------


@dataclass
class Hall:
    config: Config
    pool: Any = None
    auth: Authenticator | None = None
    metrics: Metrics = field(default_factory=Metrics)
    log: AccessLog | None = None
    faults: list[Fault] = field(default_factory=list)
    pages: Any = None  # pages.Pages, made with the app
    cache: ReadCache = field(default_factory=lambda: ReadCache(0))
    _flusher: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, app: web.Application) -> None:
        conn = await asyncpg.connect(self.config.dsn, **self.config.db_options())
        try:
            await schema.migrate(conn)
        finally:
            await conn.close()
        self.pool = QuickPool(
            await asyncpg.create_pool(
                self.config.dsn,
                min_size=min(2, self.config.pool_size),
                max_size=self.config.pool_size,
                connection_class=PoolConnection,
                **self.config.db_options(),
            ),
            keep=max(1, self.config.pool_size // 2),
        )
        self.cache = ReadCache(self.config.read_cache_s)
        await self._check_catalog()
        staff: StaffAuthenticator
        if self.config.staff_auth == "openbao":
            staff = OpenBaoStaff(self.config.openbao_addr, self.config.openbao_ca)
        else:
            staff = LocalStaffTokens(self.pool)
        self.auth = Authenticator(self.pool, staff)
        self.log = AccessLog(self.config.access_log)
        self.faults = parse_faults(self.config.faults)
        self._flusher = asyncio.ensure_future(self._flush_loop())

    async def stop(self, app: web.Application) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        if self.log is not None:
            self.log.flush()
            self.log.close()
        if self.pool is not None:
            await self.pool.close()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.log is not None:
                self.log.flush()
            await self._check_catalog()
            await self.pool.trim()

    async def _check_catalog(self) -> None:
        """Drop the read cache when a seed changed the catalog (one small query a second)."""
        if not self.cache.enabled:
            return
        try:
            version = await self.pool.fetchval("SELECT version FROM catalog_version")
        except (TimeoutError, asyncpg.PostgresError, OSError):
            self.cache.clear()  # cannot tell: serve nothing old
            return
        self.cache.saw_version(int(version or 0))

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        if self.config.instance:
            app.on_response_prepare.append(self._served_by)
        from .pages import Pages  # the pages import this module

        self.pages = Pages(self)
        add = {"GET": app.router.add_get, "POST": app.router.add_post, "PUT": app.router.add_put}
        for method, path, handler, name in sorted(
            self.api_routes() + self.pages.routes(), key=hot_first
        ):
            add[method](path, self.served(handler, name), name=name)
        app.router.add_route(
            "*", "/{path:.*}", self.served(self.unmatched, "unmatched"), name="unmatched"
        )
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        return app

    def api_routes(self) -> list[Route]:
        return [
            ("GET", "/healthz", self.healthz, "healthz"),
            ("GET", "/readyz", self.readyz, "readyz"),
            ("GET", "/metrics", self.metrics_page, "metrics"),
            ("GET", "/api/sites", self.sites, "sites"),
            ("GET", "/api/sites/{site}", self.site, "site"),
            ("GET", "/api/sites/{site}/items", self.catalog, "catalog"),
            ("GET", "/api/sites/{site}/ratings", self.ratings, "ratings"),
            ("GET", "/api/items/{item}", self.guide, "guide"),
            ("POST", "/api/accounts", self.register, "register"),
            ("POST", "/api/login", self.login, "login"),
            ("GET", "/api/me", self.me, "me"),
            ("POST", "/api/cases", self.apply, "apply"),
            ("GET", "/api/my/cases", self.my_cases, "my_cases"),
            ("GET", "/api/cases/{code}", self.progress, "progress"),
            ("POST", "/api/cases/{code}/supplement", self.supplement, "supplement"),
            ("POST", "/api/cases/{code}/rating", self.rate, "rate"),
            ("GET", "/api/staff/queue", self.queue, "queue"),
            ("POST", "/api/staff/cases/{code}/{action}", self.act, "act"),
            ("GET", "/api/supervision/overdue", self.overdue, "overdue"),
            ("POST", "/api/admin/staff-tokens", self.admin_staff_token, "admin_staff_token"),
            ("GET", "/api/admin/faults", self.admin_faults, "admin_faults"),
            ("PUT", "/api/admin/faults", self.admin_faults, "admin_faults_set"),
        ]

    async def _served_by(self, _request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Served-By"] = self.config.instance

    # -- around every route: auth, faults, errors, metrics, access log -------------------------

    def served(self, handler: Any, route: str) -> Any:
        """``handler`` wrapped as route ``route`` is served: the caller authenticated (the web
        pages: cookies, CSRF, HTML errors), faults, refusals as JSON, the request counted and
        logged. In place of an aiohttp middleware, which before aiohttp 3.9 costs every request
        a chain of handler wrappers rebuilt and a context manager; a path no route has is served
        as the route "unmatched" (the catch-all, added last: ``unmatched``)."""
        page = route.startswith("page_")
        check = route not in PUBLIC_ROUTES and route not in OPEN_ROUTES

        async def serve(request: web.Request) -> web.StreamResponse:
            start = time.perf_counter()
            caller: Caller | None = None
            status = 500
            self.metrics.in_flight += 1
            try:
                if page:  # the web pages: cookies, HTML errors
                    response = await self.pages.serve(request, route, handler)
                    caller = request.get("caller")
                    status = response.status
                    return response
                try:
                    if check:
                        caller = await self._authenticate(request, route)
                    request["caller"] = caller
                    if self.faults:
                        await self.apply_faults(route, request)
                    response = await handler(request)
                except Problem as p:
                    body = {"error": p.message}
                    if p.field:
                        body["field"] = p.field
                    response = reply(body, p.status)
                except web.HTTPException as exc:
                    response = reply({"error": exc.reason}, exc.status)
                except (TimeoutError, asyncpg.PostgresConnectionError, OSError):
                    response = reply({"error": "the database is unavailable"}, 503)
                status = response.status
                return response
            finally:
                self.metrics.in_flight -= 1
                elapsed = time.perf_counter() - start
                self.metrics.observe(route, request.method, status, elapsed)
                if self.log is not None and self.log.stream is not None:
                    headers = request.headers
                    self.log.request(
                        headers.get("X-Real-IP") or request.remote,
                        request.method,
                        request.path,
                        route,
                        status,
                        elapsed,
                        caller.actor if caller else None,
                        headers.get("X-Request-Id"),
                    )

        return serve

    async def unmatched(self, request: web.Request) -> web.Response:
        """No route has this path and method: 405 when a route has the path, else 404."""
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource.name != "unmatched":
                allowed |= (await resource.resolve(request))[1]
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    async def _authenticate(self, request: web.Request, route: str) -> Caller | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, "authentication required: send Authorization: Bearer <token>")
        token = token.strip()
        if route.startswith("admin_") or route == "metrics":
            wanted = [self.config.admin_token]
            if route == "metrics":
                wanted.append(self.config.metrics_token)
            if any(w and hmac.compare_digest(token, w) for w in wanted):
                return Caller("admin", "admin")
            raise Problem(403, "this endpoint needs the admin token")
        assert self.auth is not None
        caller = await self.auth.resolve(token)
        if caller is None:
            raise Problem(401, "the token is unknown or expired")
        return caller

    async def apply_faults(self, route: str, request: web.Request) -> None:
        for fault in self.faults:
            if fault.route != route:
                continue
            if fault.level is not None and level_of_path(dict(request.match_info)) != fault.level:
                continue
            await asyncio.sleep(fault.delay_ms / 1000)

    # -- probes and metrics --------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return reply({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        try:
            async with self.pool.acquire(timeout=2) as conn:
                version = await schema.current_version(conn)
        except (TimeoutError, asyncpg.PostgresError, OSError) as exc:
            return reply({"status": "not ready", "reason": f"database: {exc}"}, 503)
        if version < schema.LATEST:
            return reply(
                {"status": "not ready", "reason": f"schema {version}, want {schema.LATEST}"}, 503
            )
        return reply({"status": "ready", "schema": version})

    async def metrics_page(self, request: web.Request) -> web.Response:
        extra = {
            "hall_db_pool_size": float(self.pool.get_size()),
            "hall_db_pool_idle": float(self.pool.get_idle_size()),
            "hall_process_cpu_seconds_total": round(time.process_time(), 6),
        }
        if self.pages is not None:
            extra.update(self.pages.meter.as_metrics())
        extra.update(self.cache.as_metrics())
        return web.Response(
            text=self.metrics.render(extra), content_type="text/plain", charset="utf-8"
        )

    # -- the public catalog --------------------------------------------------------------------

    async def sites(self, request: web.Request) -> web.Response:
        parent = request.query.get("parent")
        level = request.query.get("level")
        if level is not None and level not in LEVELS:
            raise Problem(400, f"level: expected one of {', '.join(LEVELS)}", "level")
        limit = int_query(request, "limit", 100, 1, 1000)

        async def load() -> bytes:
            rows = await self.pool.fetch(
                "SELECT code, name, level, parent, kind FROM sites"
                " WHERE ($1::text IS NULL OR parent = $1) AND ($2::text IS NULL OR level = $2)"
                " ORDER BY code LIMIT $3",
                parent,
                level,
                limit,
            )
            return dumps({"sites": [dict(r) for r in rows]}).encode()

        return reply_body(await self.cache.through(("api-sites", parent, level, limit), load))

    async def site(self, request: web.Request) -> web.Response:
        code = request.match_info["site"]

        async def load() -> bytes | None:
            row = await self.pool.fetchrow(
                "SELECT s.*, (SELECT count(*) FROM items i WHERE i.site_code = s.code) AS items"
                " FROM sites s WHERE code = $1",
                code,
            )
            return None if row is None else dumps(dict(row)).encode()

        body = await self.cache.through(("api-site", code), load)
        if body is None:
            raise Problem(404, f"no site {code}")
        return reply_body(body)

    async def catalog(self, request: web.Request) -> web.Response:
        site = request.match_info["site"]
        kind = request.query.get("kind")
        limit = int_query(request, "limit", 20, 1, 100)
        offset = int_query(request, "offset", 0, 0, 1_000_000)
        dept, q = request.query.get("dept"), request.query.get("q")

        async def load() -> bytes:
            rows = await self.catalog_of(site, dept, kind, q, limit, offset)
            return dumps({"site": site, "offset": offset, "items": rows}).encode()

        key = None if q else ("api-catalog", site, dept, kind, limit, offset)
        return reply_body(await self.cache.through(key, load))

    async def catalog_of(
        self,
        site: str,
        dept: str | None,
        kind: str | None,
        q: str | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        """A page of a site's items, by code; ``q`` matches within the name."""
        if site_level(site) is None:
            raise Problem(
                400,
                f"site: expected a 2/4/6/9/12-digit division code, got {site!r}",
                zh="站点编码应为 2、4、6、9 或 12 位行政区划代码",
            )
        if kind is not None and kind not in ("administrative", "public_service"):
            raise Problem(
                400, "kind: expected administrative or public_service", "kind", zh="事项类型有误"
            )

        async def load() -> tuple[dict[str, Any], ...]:
            rows = await self.pool.fetch(
                "SELECT code, dept, kind, name, time_limit_days, online FROM items"
                " WHERE site_code = $1 AND ($2::text IS NULL OR dept = $2)"
                " AND ($3::text IS NULL OR kind = $3)"
                " AND ($4::text IS NULL OR name LIKE '%' || $4 || '%')"
                " ORDER BY code LIMIT $5 OFFSET $6",
                site,
                dept,
                kind,
                q,
                limit,
                offset,
            )
            return tuple(dict(r) for r in rows)

        key = None if q else ("catalog", site, dept, kind, limit, offset)
        rows = await self.cache.through(key, load)
        return [dict(r) for r in rows]  # the caller's own copies

    async def guide(self, request: web.Request) -> web.Response:
        code = request.match_info["item"]

        async def load() -> bytes:
            return dumps(await self.guide_of(code)).encode()

        return reply_body(await self.cache.through(("api-guide", code), load))

    async def guide_of(self, code: str) -> dict[str, Any]:
        """An item's guide (read-only: the dict may be shared through the read cache)."""

        async def load() -> dict[str, Any] | None:
            row = await self.pool.fetchrow(
                "SELECT i.*, d.name AS dept_name, s.name AS site_name, s.level"
                " FROM items i JOIN departments d ON d.code = i.dept"
                " JOIN sites s ON s.code = i.site_code"
                " WHERE i.code = $1",
                code,
            )
            if row is None:
                return None
            guide = dict(row)
            guide["materials"] = json.loads(guide["materials"])
            guide["steps"] = json.loads(guide["steps"])
            return guide

        guide = await self.cache.through(("guide", code), load)
        if guide is None:
            raise Problem(404, f"no item {code}", zh="没有这个事项")
        return guide

    # -- accounts --------------------------------------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        data = await body_of(request)
        kind = data.get("kind", "citizen")
        login = text_field(data, "login", max_len=64)
        name = text_field(data, "name", max_len=100)
        password = text_field(data, "password", max_len=200)
        account_id, token = await self.create_account(kind, login, name, password)
        return reply({"id": account_id, "kind": kind, "token": token}, 201)

    async def create_account(
        self, kind: Any, login: str, name: str, password: str
    ) -> tuple[int, str]:
        """A new account and its first session: (account id, session token)."""
        if kind not in ("citizen", "enterprise"):
            raise Problem(400, "kind: expected citizen or enterprise", "kind", zh="请选择账号类型")
        if len(password) < 8:
            raise Problem(
                400, "password: at least 8 characters", "password", zh="密码至少 8 个字符"
            )
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(None, hash_password, password, self.config.scrypt_n)
        try:
            account_id = await self.pool.fetchval(
                "INSERT INTO accounts (kind, login, name, password_hash) VALUES ($1,$2,$3,$4)"
                " RETURNING id",
                kind,
                login,
                name,
                hashed,
            )
        except asyncpg.UniqueViolationError:
            raise Problem(
                409, f"login {login!r} is taken", "login", zh="该登录名已被注册，请换一个"
            ) from None
        return int(account_id), await self._session(account_id)

    async def _session(self, account_id: int) -> str:
        token, digest = new_token(ACCOUNT_PREFIX)
        await self.pool.execute(
            "INSERT INTO sessions (token_hash, account_id, expires_at)"
            " VALUES ($1, $2, now() + make_interval(hours => $3))",
            digest,
            account_id,
            self.config.session_hours,
        )
        return token

    async def end_session(self, token: str) -> None:
        """Log out: an account session is deleted (staff tokens are not the hall's to end)."""
        if token.startswith(ACCOUNT_PREFIX):
            await self.pool.execute("DELETE FROM sessions WHERE token_hash = $1", digest_of(token))
        if self.auth is not None:
            self.auth.forget(token)

    async def login(self, request: web.Request) -> web.Response:
        data = await body_of(request)
        login = text_field(data, "login", max_len=64)
        password = text_field(data, "password", max_len=200)
        account_id, kind, token = await self.check_login(login, password)
        return reply({"id": account_id, "kind": kind, "token": token})

    async def check_login(self, login: str, password: str) -> tuple[int, str, str]:
        """(account id, kind, a new session token) for the right password."""
        row = await self.pool.fetchrow(
            "SELECT id, kind, password_hash FROM accounts WHERE login = $1", login
        )
        loop = asyncio.get_running_loop()
        ok = row is not None and await loop.run_in_executor(
            None, check_password, password, row["password_hash"]
        )
        if not ok or row is None:
            raise Problem(401, "wrong login or password", zh="登录名或密码不正确")
        token = await self._session(row["id"])
        return int(row["id"]), str(row["kind"]), token

    async def me(self, request: web.Request) -> web.Response:
        c: Caller = request["caller"]
        return reply({"kind": c.kind, "id": c.ident, "roles": sorted(c.roles), "site": c.site})

    # -- applications ----------------------------------------------------------------------------

    def _applicant(self, request: web.Request) -> Caller:
        return applicant(request["caller"])

    async def apply(self, request: web.Request) -> web.Response:
        c = self._applicant(request)
        data = await body_of(request)
        item_code = text_field(data, "item", max_len=80)
        form = data.get("form", {})
        if not isinstance(form, dict):
            raise Problem(400, "form: expected an object", "form")
        return reply(await self.file_case(c, item_code, form), 201)

    async def file_case(self, c: Caller, item_code: str, form: dict[str, Any]) -> dict[str, Any]:
        """A new application for an item: its case code (一件一码), state and site."""
        applicant(c)
        today = dt.date.today().strftime("%Y%m%d")
        # one round trip, atomic on its own: the item's site with a case number, the case code
        # (FILE_CASE_SQL computes it as codes.make_case_code does), the case and its first event
        row = await self.pool.fetchrow(
            FILE_CASE_SQL, item_code, today, c.account_id, dumps(form), c.actor
        )
        if row is None:
            raise Problem(404, f"no item {item_code}", "item", zh="没有这个事项")
        return {
            "code": row["code"],
            "state": row["state"],
            "created_at": row["created_at"],
            "item": item_code,
            "site": row["site_code"],
        }

    async def my_cases(self, request: web.Request) -> web.Response:
        c = self._applicant(request)
        limit = int_query(request, "limit", 20, 1, 100)
        return reply({"cases": await self.cases_of(c, limit)})

    async def cases_of(self, c: Caller, limit: int, names: bool = False) -> list[dict[str, Any]]:
        """An applicant's latest cases; ``names`` adds the item's and the site's names."""
        applicant(c)
        if names:
            sql = (
                "SELECT c.code, c.item_code AS item, c.site_code AS site, c.state, c.created_at,"
                " c.deadline, i.name AS item_name, s.name AS site_name FROM cases c"
                " JOIN items i ON i.code = c.item_code JOIN sites s ON s.code = c.site_code"
                " WHERE c.applicant_id = $1 ORDER BY c.created_at DESC LIMIT $2"
            )
        else:
            sql = (
                "SELECT code, item_code AS item, site_code AS site, state, created_at, deadline"
                " FROM cases WHERE applicant_id = $1 ORDER BY created_at DESC LIMIT $2"
            )
        rows = await self.pool.fetch(sql, c.account_id, limit)
        return [dict(r) for r in rows]

    def _code(self, request: web.Request) -> str:
        return case_code(request.match_info["code"])

    async def progress(self, request: web.Request) -> web.Response:
        out = await self.case_view(request["caller"], self._code(request))
        return reply(out)

    async def case_view(self, c: Caller, code: str, detail: bool = False) -> dict[str, Any]:
        """A case as its caller may see it: the applicant and staff of its region see the
        timeline too (``detail`` adds the form, the names and the rating), a kiosk the state."""
        # one round trip: the case, its timeline and (for the detail) its rating
        rating_sql = (
            ", (SELECT ROW(r.score, r.comment, r.at) FROM ratings r WHERE r.case_id = c.id)"
            " AS rating"
            if detail
            else ""
        )
        row = await self.pool.fetchrow(
            "SELECT c.id, c.code, c.state, c.site_code, c.item_code, c.applicant_id,"
            " c.created_at, c.accepted_at, c.deadline, c.finished_at, c.form,"
            " i.name AS item_name, s.name AS site_name,"
            " ARRAY(SELECT ROW(e.at, e.actor, e.action, e.from_state, e.to_state, e.comment)"
            " FROM case_events e WHERE e.case_id = c.id ORDER BY e.at, e.id) AS events"
            f"{rating_sql}"
            " FROM cases c JOIN items i ON i.code = c.item_code"
            " JOIN sites s ON s.code = c.site_code WHERE c.code = $1",
            code,
        )
        if row is None:
            raise Problem(404, f"no case {code}", zh="没有这个办件")
        full = (c.kind != "staff" and c.account_id == row["applicant_id"]) or (
            c.kind == "staff" and bool(c.roles & STAFF_VIEW_ROLES) and in_scope(c, row["site_code"])
        )
        if not full and not (c.kind == "staff" and "kiosk" in c.roles):
            raise Problem(403, "this case belongs to someone else", zh="这不是您的办件，无权查看")
        out = {
            "code": row["code"],
            "state": row["state"],
            "state_label": STATE_LABELS[row["state"]],
            "item": row["item_code"],
            "item_name": row["item_name"],
            "site": row["site_code"],
            "created_at": row["created_at"],
            "accepted_at": row["accepted_at"],
            "deadline": row["deadline"],
            "finished_at": row["finished_at"],
        }
        if full:
            out["events"] = [dict(zip(EVENT_FIELDS, e, strict=True)) for e in row["events"]]
        if full and detail:
            out["site_name"] = row["site_name"]
            out["form"] = json.loads(row["form"])
            out["mine"] = c.kind != "staff"
            rating = row["rating"]
            out["rating"] = dict(zip(RATING_FIELDS, rating, strict=True)) if rating else None
        return out

    async def supplement(self, request: web.Request) -> web.Response:
        code = self._code(request)
        c = self._applicant(request)
        data = await body_of(request)
        note = text_field(data, "note", max_len=500, required=False)
        return reply(await self.supplement_case(c, code, note))

    async def supplement_case(self, c: Caller, code: str, note: str) -> dict[str, Any]:
        applicant(c)
        # one statement (atomic on its own): the new state and its event
        row = await self.pool.fetchrow(
            "WITH u AS (UPDATE cases SET"
            " state = CASE WHEN accepted_at IS NULL THEN 'submitted' ELSE 'in_progress' END,"
            " deadline = deadline + (now() - material_requested_at),"
            " material_requested_at = NULL, updated_at = now()"
            " WHERE code = $1 AND applicant_id = $2 AND state = 'needs_material'"
            " RETURNING id, state, deadline),"
            " e AS (INSERT INTO case_events (case_id, actor, action, from_state, to_state, comment)"
            " SELECT id, $3, 'supplement', 'needs_material', state, $4 FROM u)"
            " SELECT state, deadline FROM u",
            code,
            c.account_id,
            c.actor,
            note,
        )
        if row is None:
            await self._why_not(self.pool, code, c, ("needs_material",))
        return {"code": code, "state": row["state"], "deadline": row["deadline"]}

    async def _why_not(self, conn: Any, code: str, c: Caller, states: tuple[str, ...]) -> None:
        row = await conn.fetchrow(
            "SELECT state, applicant_id, site_code FROM cases WHERE code = $1", code
        )
        if row is None:
            raise Problem(404, f"no case {code}", zh="没有这个办件")
        if c.kind == "staff":
            if row["site_code"] != c.site:
                raise Problem(
                    403,
                    f"case {code} is handled at site {row['site_code']}, not {c.site}",
                    zh="该办件不在您所在站点办理",
                )
        elif row["applicant_id"] != c.account_id:
            raise Problem(403, "this case belongs to someone else", zh="这不是您的办件")
        wanted = "或".join(STATE_LABELS[s] for s in states)
        raise Problem(
            409,
            f"case {code} is {row['state']}; this needs it to be {' or '.join(states)}",
            zh=f"办件当前为“{STATE_LABELS[row['state']]}”，此操作需要“{wanted}”",
        )

    async def rate(self, request: web.Request) -> web.Response:
        code = self._code(request)
        c = self._applicant(request)
        data = await body_of(request)
        comment = text_field(data, "comment", max_len=500, required=False)
        await self.rate_case(c, code, data.get("score"), comment)
        return reply({"code": code, "score": data["score"]}, 201)

    async def rate_case(self, c: Caller, code: str, score: Any, comment: str) -> None:
        """The applicant's rating (好差评) of a finished case, once."""
        applicant(c)
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise Problem(
                400,
                "score: expected an integer 1 (非常不满意) .. 5 (非常满意)",
                "score",
                zh="请选择 1 到 5 分的评价",
            )
        async with self.pool.acquire() as conn, conn.transaction():
            case_id = await conn.fetchval(
                "SELECT id FROM cases WHERE code = $1 AND applicant_id = $2"
                " AND state = ANY($3::text[])",
                code,
                c.account_id,
                list(FINAL_STATES),
            )
            if case_id is None:
                await self._why_not(conn, code, c, FINAL_STATES)
            inserted = await conn.fetchval(
                "INSERT INTO ratings (case_id, score, comment) VALUES ($1, $2, $3)"
                " ON CONFLICT (case_id) DO NOTHING RETURNING case_id",
                case_id,
                score,
                comment,
            )
        if inserted is None:
            raise Problem(409, f"case {code} is already rated", zh="该办件已经评价过了")

    # -- staff -----------------------------------------------------------------------------------

    def _staff(self, request: web.Request, roles: frozenset[str]) -> Caller:
        return staff_with(request["caller"], roles)

    async def queue(self, request: web.Request) -> web.Response:
        c = self._staff(request, CLERK_ROLES)
        state = request.query.get("state", "submitted")
        limit = int_query(request, "limit", 20, 1, 100)
        cases = await self.queue_of(c, state, limit)
        return reply({"site": c.site, "state": state, "cases": cases})

    async def queue_of(
        self, c: Caller, state: str, limit: int, names: bool = False
    ) -> list[dict[str, Any]]:
        """The oldest cases in a state at the caller's site; ``names`` adds the item's name."""
        staff_with(c, CLERK_ROLES)
        if state not in STATES:
            raise Problem(
                400, f"state: expected one of {', '.join(STATES)}", "state", zh="状态有误"
            )
        extra = (
            ", (SELECT name FROM items i WHERE i.code = item_code) AS item_name" if names else ""
        )
        rows = await self.pool.fetch(
            f"SELECT code, item_code AS item, state, created_at, deadline{extra} FROM cases"
            " WHERE site_code = $1 AND state = $2 ORDER BY created_at LIMIT $3",
            c.site,
            state,
            limit,
        )
        return [dict(r) for r in rows]

    async def act(self, request: web.Request) -> web.Response:
        code = self._code(request)
        action = request.match_info["action"]
        data = await body_of(request) if request.can_read_body else {}
        comment = text_field(data, "comment", max_len=500, required=False)
        c: Caller = request["caller"]
        return reply(await self.act_on(c, code, action, comment))

    async def act_on(self, c: Caller, code: str, action: str, comment: str) -> dict[str, Any]:
        """A staff action on a case of the caller's site (the state machine in ``ACTIONS``)."""
        if action not in ACTIONS:
            raise Problem(
                404,
                f"no action {action!r}; expected one of {', '.join(ACTIONS)}",
                zh="没有这个操作",
            )
        sources, target, roles = ACTIONS[action]
        staff_with(c, roles)
        sets = ["state = $4", "updated_at = now()"]
        if action == "accept":
            sets += [
                "accepted_at = now()",
                "deadline = now() + make_interval(days => (SELECT time_limit_days FROM items"
                " WHERE items.code = cases.item_code))",
            ]
        elif action == "request-material":
            sets.append("material_requested_at = now()")
        else:
            sets.append("finished_at = now()" if target in FINAL_STATES else "finished_at = NULL")
        # one statement (atomic on its own): the new state and its event
        row = await self.pool.fetchrow(
            f"WITH u AS (UPDATE cases SET {', '.join(sets)} FROM (SELECT state AS old FROM cases"
            " WHERE code = $1 FOR UPDATE) o"
            " WHERE code = $1 AND site_code = $2 AND state = ANY($3::text[])"
            " RETURNING id, o.old, state, deadline),"
            " e AS (INSERT INTO case_events (case_id, actor, action, from_state, to_state, comment)"
            " SELECT id, $5, $6, old, $4, $7 FROM u)"
            " SELECT state, deadline FROM u",
            code,
            c.site,
            list(sources),
            target,
            c.actor,
            action,
            comment,
        )
        if row is None:
            await self._why_not(self.pool, code, c, sources)
        return {"code": code, "state": row["state"], "deadline": row["deadline"]}

    async def overdue(self, request: web.Request) -> web.Response:
        c = self._staff(request, SUPERVISOR_ROLES)
        warn_days = int_query(request, "warn_days", self.config.warn_days, 0, 30)
        limit = int_query(request, "limit", 100, 1, 1000)
        overdue, warning = await self.overdue_of(c, warn_days, limit)
        return reply({"region": c.site, "overdue": overdue, "warning": warning})

    async def overdue_of(
        self, c: Caller, warn_days: int, limit: int, names: bool = False
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Cases in progress in the supervisor's region past their deadline, and those within
        ``warn_days`` of it (电子监察); ``names`` adds the site's and the item's names."""
        staff_with(c, SUPERVISOR_ROLES)
        extra = (
            ", (SELECT name FROM sites s WHERE s.code = site_code) AS site_name,"
            " (SELECT name FROM items i WHERE i.code = item_code) AS item_name"
            if names
            else ""
        )
        rows = await self.pool.fetch(
            "SELECT code, site_code AS site, item_code AS item, accepted_at, deadline,"
            f" deadline < now() AS overdue{extra} FROM cases"
            " WHERE state = 'in_progress' AND site_code LIKE $1 || '%'"
            " AND deadline < now() + make_interval(days => $2)"
            " ORDER BY deadline LIMIT $3",
            c.site,
            warn_days,
            limit,
        )
        overdue = [dict(r) for r in rows if r["overdue"]]
        warning = [dict(r) for r in rows if not r["overdue"]]
        return overdue, warning

    async def ratings(self, request: web.Request) -> web.Response:
        c = self._staff(request, STAFF_VIEW_ROLES)
        site = request.match_info["site"]
        if not in_scope(c, site):
            raise Problem(403, f"site {site} is outside your region {c.site}")
        rows = await self.pool.fetch(
            "SELECT r.score, count(*) AS n FROM ratings r JOIN cases k ON k.id = r.case_id"
            " WHERE k.site_code = $1 GROUP BY r.score ORDER BY r.score",
            site,
        )
        counts = {str(s): 0 for s in range(1, 6)}
        counts.update({str(r["score"]): r["n"] for r in rows})
        total = sum(counts.values())
        good = counts["4"] + counts["5"]
        return reply(
            {
                "site": site,
                "counts": counts,
                "total": total,
                "good_ratio": round(good / total, 4) if total else None,
                "bad": counts["1"] + counts["2"],
            }
        )

    # -- admin -----------------------------------------------------------------------------------

    async def admin_staff_token(self, request: web.Request) -> web.Response:
        data = await body_of(request)
        staff = text_field(data, "staff", max_len=64)
        site = text_field(data, "site", max_len=12)
        roles = data.get("roles")
        if (
            not isinstance(roles, list)
            or not roles
            or not all(isinstance(r, str) and r in STAFF_ROLES for r in roles)
        ):
            raise Problem(
                400, f"roles: expected a list of {', '.join(sorted(STAFF_ROLES))}", "roles"
            )
        days = data.get("days", 1)
        if not isinstance(days, int) or not 1 <= days <= 365:
            raise Problem(400, "days: expected an integer 1..365", "days")
        token = await issue_staff_token(self.pool, staff, roles, site, days)
        return reply({"token": token, "staff": staff, "roles": roles, "site": site}, 201)

    async def admin_faults(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            data = await body_of(request)
            spec = data.get("faults", "")
            if not isinstance(spec, str):
                raise Problem(400, 'faults: expected a string "route:delay_ms[@level],..."')
            try:
                self.faults = parse_faults(spec)
            except ValueError as exc:
                raise Problem(400, str(exc), "faults") from None
        return reply({"faults": [f.as_dict() for f in self.faults]})


async def issue_staff_token(pool: Any, staff: str, roles: list[str], site: str, days: int) -> str:
    if site_level(site) is None:
        raise Problem(400, f"site: expected a division code, got {site!r}", "site")
    exists = await pool.fetchval("SELECT 1 FROM sites WHERE code = $1", site)
    if not exists:
        raise Problem(404, f"no site {site} (seed the catalog first)", "site")
    token, digest = new_token(STAFF_PREFIX)
    await pool.execute(
        "INSERT INTO staff_tokens (token_hash, staff, roles, site_code, label, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, now() + make_interval(days => $6))",
        digest,
        staff,
        roles,
        site,
        "issued",
        days,
    )
    return token


def build(config: Config) -> web.Application:
    return Hall(config).make_app()
