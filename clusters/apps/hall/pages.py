"""The hall's web pages: citizens find a site and an item, read its guide, register, apply,
follow their cases by code and rate them; window clerks work their queue; the supervision office
sees overdue cases. Server-rendered HTML (``views.py``), Chinese throughout; the pages share the
JSON API's operations (``app.Hall``), so both enforce the same rules.

Security of the pages:

- the session is a cookie (``HttpOnly``, ``Secure``, ``SameSite=Lax``) holding the same kind of
  token the API's ``Authorization`` header carries: an account session from the login form, or a
  staff member's token from the staff login (the staff authenticator the API uses);
- every form carries a CSRF token that must equal the CSRF cookie (double submit; the cookie is
  ``HttpOnly`` and, with Secure, ``__Host-`` prefixed); a POST from another site is refused
  whatever it carries (``Origin`` / ``Sec-Fetch-Site``);
- ``Content-Security-Policy`` allows scripts and styles from the hall itself only (no inline
  script or style), no framing, forms posting back to the hall only;
- everything shown is escaped by the renderer (``markup.py``).

``HALL_COOKIE_SECURE=0`` drops ``Secure`` (and the ``__Host-`` prefix) for a plain-HTTP client on
loopback; the hall refuses that setting on any other address. Browsers keep Secure cookies on
``http://127.0.0.1`` and ``http://localhost``, so browser tests need no such setting.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg
from aiohttp import web

from . import views
from .app import (
    CLERK_ROLES,
    ROLE_LABELS,
    SUPERVISOR_ROLES,
    Hall,
    Problem,
    Route,
    applicant,
    case_code,
    staff_with,
)
from .assets import ASSETS
from .auth import Caller
from .codes import ACTIONS, LEVELS, STATES, site_level
from .markup import Markup
from .views import View

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
PAGE_SIZE = 20
SITES_PAGE = 100
ZH_STATUS = {
    400: "请求有误，请检查后重试。",
    401: "请先登录。",
    403: "您无权访问此页面。",
    404: "您要找的页面不存在。",
    409: "办件状态已经变化，请刷新后再试。",
    503: "系统繁忙，请稍后再试。",
}


class RenderMeter:
    """Time spent turning data into HTML (the views), for the share of CPU rendering takes."""

    def __init__(self) -> None:
        self.renders = 0
        self.seconds = 0.0

    def as_metrics(self) -> dict[str, float]:
        return {
            "hall_page_renders_total": float(self.renders),
            "hall_page_render_seconds_total": round(self.seconds, 6),
        }


@dataclass
class PageRequest:
    caller: Caller | None
    token: str
    csrf: str
    new_csrf: bool
    elder: bool


#: a backslash or a control character (below 32): never part of a path to go on to
_UNSAFE_IN_PATH = re.compile(r"[\\\x00-\x1f]")


def safe_next(value: Any, default: str) -> str:
    """A local path to go on to after a form (never another site)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    if len(value) > 500 or _UNSAFE_IN_PATH.search(value):
        return default
    return value


def cookie_values(header: str, names: frozenset[str]) -> dict[str, str]:
    """The cookies named ``names`` in a Cookie header ("a=1; b=2"), the last of a name as
    http.cookies keeps it. The hall's own cookies only, read without parsing every cookie of
    the header the way http.cookies does (aiohttp before 3.9 reads request.cookies so: tens of
    microseconds a page); their values are tokens and flags (a quoted one is unquoted)."""
    found: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if eq and name in names:
            value = value.strip()
            if len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found[name] = value
    return found


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _str(form: Any, name: str, max_len: int = 500) -> str:
    value = form.get(name, "")
    return value.strip()[:max_len] if isinstance(value, str) else ""


class Pages:
    def __init__(self, hall: Hall) -> None:
        self.hall = hall
        secure = hall.config.cookie_secure
        prefix = "__Host-" if secure else ""
        self.session_cookie = f"{prefix}hall_session"
        self.csrf_cookie = f"{prefix}hall_csrf"
        self.elder_cookie = f"{prefix}hall_elder"
        self.cookie_names = frozenset({self.session_cookie, self.csrf_cookie, self.elder_cookie})
        self.meter = RenderMeter()
        self._depts: tuple[float, int, list[dict[str, Any]]] = (0.0, 0, [])

    def routes(self) -> list[Route]:
        return [
            ("GET", "/", self.home, "page_home"),
            ("GET", "/static/{name}", self.static, "page_static"),
            ("GET", "/favicon.ico", self.favicon, "page_favicon"),
            ("POST", "/mode", self.mode, "page_mode"),
            ("GET", "/levels/{level}", self.level, "page_level"),
            ("GET", "/sites/{site}", self.site, "page_site"),
            ("GET", "/items/{item}", self.guide, "page_guide"),
            ("GET", "/items/{item}/apply", self.apply_form, "page_apply_form"),
            ("POST", "/items/{item}/apply", self.apply, "page_apply"),
            ("GET", "/register", self.register_form, "page_register_form"),
            ("POST", "/register", self.register, "page_register"),
            ("GET", "/login", self.login_form, "page_login_form"),
            ("POST", "/login", self.login, "page_login"),
            ("POST", "/logout", self.logout, "page_logout"),
            ("GET", "/my/cases", self.my_cases, "page_my_cases"),
            ("GET", "/progress", self.lookup, "page_lookup"),
            ("GET", "/cases/{code}", self.case, "page_case"),
            ("POST", "/cases/{code}/supplement", self.supplement, "page_supplement"),
            ("POST", "/cases/{code}/rating", self.rate, "page_rate"),
            ("GET", "/staff", self.staff_home, "page_staff_home"),
            ("GET", "/staff/login", self.staff_login_form, "page_staff_login_form"),
            ("POST", "/staff/login", self.staff_login, "page_staff_login"),
            ("GET", "/staff/queue", self.queue, "page_queue"),
            ("GET", "/staff/cases/{code}", self.staff_case, "page_staff_case"),
            ("POST", "/staff/cases/{code}/{action}", self.act, "page_act"),
            ("GET", "/staff/overdue", self.overdue, "page_overdue"),
        ]

    # -- the request around every page: cookies, CSRF, errors, headers -------------------------

    async def serve(self, request: web.Request, route: str, handler: Any) -> web.StreamResponse:
        if route in ("page_static", "page_favicon"):
            response: web.StreamResponse = await handler(request)
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response
        cookies = cookie_values(request.headers.get("Cookie", ""), self.cookie_names)
        csrf = cookies.get(self.csrf_cookie, "")
        new_csrf = len(csrf) != 43  # token_urlsafe(32)
        if new_csrf:
            csrf = secrets.token_urlsafe(32)
        page = PageRequest(
            None,
            cookies.get(self.session_cookie, ""),
            csrf,
            new_csrf,
            cookies.get(self.elder_cookie) == "1",
        )
        request["page"] = page
        try:
            if page.token and self.hall.auth is not None:
                page.caller = await self.hall.auth.resolve(page.token)
            request["caller"] = page.caller
            if request.method == "POST":
                await self._check_form(request, page, new_csrf)
            if self.hall.faults:
                await self.hall.apply_faults(route, request)
            response = await handler(request)
        except Problem as p:
            message = p.zh or ZH_STATUS.get(p.status, "出错了，请稍后再试。")
            response = self.html(request, views.error_page(self.view(request), p.status, message))
            response.set_status(p.status)
        except web.HTTPException as exc:
            message = ZH_STATUS.get(exc.status, "出错了，请稍后再试。")
            response = self.html(request, views.error_page(self.view(request), exc.status, message))
            response.set_status(exc.status)
        except (TimeoutError, asyncpg.PostgresConnectionError, OSError):
            response = self.html(request, views.error_page(self.view(request), 503, ZH_STATUS[503]))
            response.set_status(503)
        response.headers.update(PAGE_HEADERS)
        if new_csrf:
            self._cookie(response, self.csrf_cookie, csrf, None)
        return response

    async def _check_form(self, request: web.Request, page: PageRequest, new_csrf: bool) -> None:
        site = request.headers.get("Sec-Fetch-Site")
        origin = request.headers.get("Origin")
        foreign = site == "cross-site" or (
            origin is not None and origin != "null" and urlsplit(origin).netloc != request.host
        )
        form = await request.post()
        sent = form.get("csrf")
        if (
            foreign
            or new_csrf
            or not isinstance(sent, str)
            or not hmac.compare_digest(sent.encode(), page.csrf.encode())
        ):
            raise Problem(
                403,
                "the form's CSRF token is missing or wrong",
                zh="表单已失效或来源不明，未予受理。请回到页面刷新后重新提交。",
            )

    def _cookie(
        self, response: web.StreamResponse, name: str, value: str, max_age: int | None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.hall.config.cookie_secure,
            httponly=True,
            samesite="Lax",
        )

    def _drop_cookie(self, response: web.StreamResponse, name: str) -> None:
        self._cookie(response, name, "", 0)

    def view(self, request: web.Request) -> View:
        page: PageRequest | None = request.get("page")
        c = page.caller if page else None
        done = request.query.get("done", "")
        path = request.path_qs
        if done:  # coming back (after the mode switch) shows no second "done" message
            rest = [(k, v) for k, v in request.query.items() if k != "done"]
            path = request.path + (f"?{urlencode(rest)}" if rest else "")
        return View(
            path=safe_next(path, "/"),
            csrf=page.csrf if page else "",
            elder=page.elder if page else False,
            who=c.kind if c else "",
            name=(c.ident if c.kind == "staff" else views.ACCOUNT_LABELS.get(c.kind, ""))
            if c
            else "",
            flash=views.DONE_LABELS.get(done, ""),
            crumbs=list(request.get("crumbs") or []),
        )

    def html(self, request: web.Request, page: Markup) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    def render(self, request: web.Request, fn: Any, *args: Any, **kwargs: Any) -> web.Response:
        """A view turned into the response, timed for the render meter."""
        start = time.perf_counter()
        page = fn(self.view(request), *args, **kwargs)
        self.meter.seconds += time.perf_counter() - start
        self.meter.renders += 1
        return self.html(request, page)

    def _login_first(self, request: web.Request, staff: bool = False) -> web.Response:
        where = "/staff/login" if staff else "/login"
        return see_other(f"{where}?{urlencode({'next': request.path_qs})}")

    # -- static assets and the display mode ----------------------------------------------------

    async def static(self, request: web.Request) -> web.Response:
        asset = ASSETS.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        etag = f'"{asset.digest}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable"}
        if request.query.get("v") != asset.digest:
            headers["Cache-Control"] = "public, max-age=300"
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=asset.body, content_type=asset.content_type, headers=headers)

    async def favicon(self, request: web.Request) -> web.Response:
        return see_other(ASSETS["icon.svg"].url)

    async def mode(self, request: web.Request) -> web.Response:
        form = await request.post()
        back = safe_next(form.get("back"), "/")
        response = see_other(back)
        if form.get("elder") == "1":
            self._cookie(response, self.elder_cookie, "1", 365 * 24 * 3600)
        else:
            self._drop_cookie(response, self.elder_cookie)
        return response

    # -- the catalog ---------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.Response:
        pool = self.hall.pool

        async def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
            levels, top = await asyncio.gather(
                pool.fetch("SELECT level, count(*) AS n FROM sites GROUP BY level"),
                pool.fetch(
                    "SELECT code, name, level FROM sites WHERE level IN ('province', 'city')"
                    " ORDER BY code LIMIT 200"
                ),
            )
            counts = {r["level"]: r["n"] for r in levels}
            rows = [{"level": lv, "n": counts.get(lv, 0)} for lv in LEVELS]
            return rows, [dict(r) for r in top], counts.get("county", 0)

        rows, top, counties = await self.hall.cache.through(("page-home",), load)
        return self.render(request, views.home, rows, top, counties)

    def _page_number(self, request: web.Request) -> int:
        raw = request.query.get("page", "1")
        if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
            raise Problem(400, "page: expected 1..10000", zh="页码有误")
        return int(raw)

    async def level(self, request: web.Request) -> web.Response:
        level = request.match_info["level"]
        if level not in LEVELS:
            raise Problem(404, f"no level {level}", zh="没有这个层级")
        parent = request.query.get("parent", "")
        page = self._page_number(request)

        async def load() -> list[dict[str, Any]]:
            rows = await self.hall.pool.fetch(
                "SELECT s.code, s.name, s.kind, p.name AS parent_name FROM sites s"
                " LEFT JOIN sites p ON p.code = s.parent"
                " WHERE s.level = $1 AND ($2 = '' OR s.parent = $2)"
                " ORDER BY s.code LIMIT $3 OFFSET $4",
                level,
                parent,
                SITES_PAGE + 1,
                (page - 1) * SITES_PAGE,
            )
            return [dict(r) for r in rows]

        rows = await self.hall.cache.through(("page-level", level, parent, page), load)
        sites = rows[:SITES_PAGE]
        request["crumbs"] = [("/", "首页")]
        return self.render(
            request, views.level_page, level, sites, page,
            len(rows) > SITES_PAGE, parent,
        )  # fmt: skip

    async def departments(self) -> list[dict[str, Any]]:
        """The departments, kept a minute, and dropped with the read cache (a page's content
        rendered with them is kept there)."""
        at, since, depts = self._depts
        if time.monotonic() - at > 60 or since != self.hall.cache.generation or not depts:
            since = self.hall.cache.generation
            rows = await self.hall.pool.fetch("SELECT code, name FROM departments ORDER BY code")
            depts = [dict(r) for r in rows]
            self._depts = (time.monotonic(), since, depts)
        return depts

    def _ancestors_of(self, code: str) -> Any:
        return lambda: self._ancestors(code)

    async def _ancestors(self, code: str) -> list[tuple[str, str]]:
        prefixes = [code[:n] for n in (2, 4, 6, 9) if n < len(code)]
        if not prefixes:
            return []
        rows = await self.hall.pool.fetch(
            "SELECT code, name FROM sites WHERE code = ANY($1::text[]) ORDER BY length(code)",
            prefixes,
        )
        return [(f"/sites/{r['code']}", r["name"]) for r in rows]

    async def site(self, request: web.Request) -> web.Response:
        code = request.match_info["site"]
        if site_level(code) is None:
            raise Problem(404, f"no site {code}", zh="没有这个站点")
        query = {
            "q": request.query.get("q", "").strip()[:50],
            "dept": request.query.get("dept", "")[:20],
            "kind": request.query.get("kind", ""),
        }
        if query["kind"] not in ("", "administrative", "public_service"):
            query["kind"] = ""
        page = self._page_number(request)
        pool = self.hall.pool

        async def load_site() -> dict[str, Any] | None:
            row = await pool.fetchrow(
                "SELECT s.code, s.name, s.level, s.kind, s.windows, s.hours,"
                " (SELECT count(*) FROM items i WHERE i.site_code = s.code) AS items"
                " FROM sites s WHERE code = $1",
                code,
            )
            return None if row is None else dict(row)

        async def load_children() -> list[dict[str, Any]]:
            rows = await pool.fetch(
                "SELECT code, name FROM sites WHERE parent = $1 ORDER BY code LIMIT 200", code
            )
            return [dict(r) for r in rows]

        cache = self.hall.cache
        since = cache.generation  # the content is kept only if nothing was dropped meanwhile
        key = None if query["q"] else ("body-site", code, query["dept"], query["kind"], page)
        body: Markup | None = cache.get(key)
        if body is not None:  # the content is rendered already: the title and crumbs only
            site = await cache.through(("page-site", code), load_site)
            ancestors = await cache.through(("page-ancestors", code), self._ancestors_of(code))
        else:
            site, children, ancestors, depts, items = await asyncio.gather(
                cache.through(("page-site", code), load_site),
                cache.through(("page-children", code), load_children),
                cache.through(("page-ancestors", code), self._ancestors_of(code)),
                self.departments(),
                self.hall.catalog_of(
                    code,
                    query["dept"] or None,
                    query["kind"] or None,
                    query["q"] or None,
                    PAGE_SIZE + 1,
                    (page - 1) * PAGE_SIZE,
                ),
            )
        if site is None:
            raise Problem(404, f"no site {code}", zh="没有这个站点")
        request["crumbs"] = [("/", "首页"), *ancestors]
        if body is None:
            names = {d["code"]: d["name"] for d in depts}
            for item in items:
                item["dept_name"] = names.get(item["dept"], item["dept"])
            more = len(items) > PAGE_SIZE

            def build() -> Markup:
                return views.site_body(site, children, depts, items[:PAGE_SIZE], query, page, more)

            return self.render(request, self._cached_page, site["name"], key, build, since)
        return self.render(request, views.layout, site["name"], body)

    async def guide(self, request: web.Request) -> web.Response:
        since = self.hall.cache.generation
        g = await self.hall.guide_of(request.match_info["item"])
        request["crumbs"] = [("/", "首页"), (f"/sites/{g['site_code']}", g["site_name"])]
        return self.render(
            request, self._cached_page, g["name"], ("body-guide", g["code"]),
            lambda: views.guide_body(g), since,
        )  # fmt: skip

    def _cached_page(self, v: View, title: str, key: Any, build: Any, since: int) -> Markup:
        """The page around content that is the same for every caller: the content is rendered
        once and kept in the read cache (with the data it shows, when the cache has not been
        dropped since ``since``, taken before that data was read), the frame per request."""
        cache = self.hall.cache
        body: Markup | None = cache.get(key)
        if body is None:
            body = build()
            cache.put(key, body, since)
        return views.layout(v, title, body)

    # -- accounts ------------------------------------------------------------------------------

    async def register_form(self, request: web.Request) -> web.Response:
        nxt = safe_next(request.query.get("next"), "/my/cases")
        return self.render(request, views.register_page, {}, {}, nxt)

    async def register(self, request: web.Request) -> web.Response:
        form = await request.post()
        values = {k: _str(form, k, 200) for k in ("kind", "login", "name")}
        password, again = _str(form, "password", 200), _str(form, "password2", 200)
        nxt = safe_next(form.get("next"), "/my/cases")
        errors: dict[str, str] = {}
        if values["kind"] not in ("citizen", "enterprise"):
            errors["kind"] = "请选择账号类型"
        if not values["login"]:
            errors["login"] = "请填写登录名"
        if not values["name"]:
            errors["name"] = "请填写姓名或单位名称"
        if len(password) < 8:
            errors["password"] = "密码至少 8 个字符"
        elif password != again:
            errors["password2"] = "两次输入的密码不一致"
        if not errors:
            try:
                _, token = await self.hall.create_account(
                    values["kind"], values["login"], values["name"], password
                )
            except Problem as p:
                errors[p.field or "login"] = p.zh or p.message
            else:
                response = see_other(self._done(nxt, "registered"))
                self._start_session(request, response, token)
                return response
        response = self.render(request, views.register_page, values, errors, nxt)
        response.set_status(400)
        return response

    def _done(self, path: str, done: str) -> str:
        return f"{path}{'&' if '?' in path else '?'}done={done}"

    def _start_session(self, request: web.Request, response: web.Response, token: str) -> None:
        hours = self.hall.config.session_hours
        self._cookie(response, self.session_cookie, token, hours * 3600)
        # a new CSRF token with the new session (none carried over from before the login)
        self._cookie(response, self.csrf_cookie, secrets.token_urlsafe(32), None)

    async def login_form(self, request: web.Request) -> web.Response:
        nxt = safe_next(request.query.get("next"), "/my/cases")
        return self.render(request, views.login_page, "", "", nxt)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        login, password = _str(form, "login", 64), _str(form, "password", 200)
        nxt = safe_next(form.get("next"), "/my/cases")
        try:
            if not login or not password:
                raise Problem(400, "login and password", zh="请填写登录名和密码")
            _, _, token = await self.hall.check_login(login, password)
        except Problem as p:
            response = self.render(request, views.login_page, login, p.zh or p.message, nxt)
            response.set_status(p.status)
            return response
        response = see_other(self._done(nxt, "login"))
        self._start_session(request, response, token)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        page: PageRequest = request["page"]
        if page.token:
            await self.hall.end_session(page.token)
        response = see_other("/?done=logout")
        self._drop_cookie(response, self.session_cookie)
        return response

    # -- applying and following a case ---------------------------------------------------------

    def _citizen(self, request: web.Request) -> Caller | None:
        c: Caller | None = request["page"].caller
        if c is None:
            return None
        return applicant(c)

    async def apply_form(self, request: web.Request) -> web.Response:
        if self._citizen(request) is None:
            return self._login_first(request)
        g = await self.hall.guide_of(request.match_info["item"])
        self._online_only(g)
        request["crumbs"] = [("/", "首页"), (f"/items/{g['code']}", g["name"])]
        return self.render(request, views.apply_page, g, {}, {})

    def _online_only(self, g: dict[str, Any]) -> None:
        if not g["online"]:
            raise Problem(409, "not online", zh="本事项须到窗口办理，不能在线申请。")

    async def apply(self, request: web.Request) -> web.Response:
        c = self._citizen(request)
        if c is None:
            return self._login_first(request)
        g = await self.hall.guide_of(request.match_info["item"])
        self._online_only(g)
        form = await request.post()
        ticked = [m for m in form.getall("material", []) if isinstance(m, str)]
        phone, note = _str(form, "phone", 20), _str(form, "note")
        values: dict[str, Any] = {"material": ticked, "phone": phone, "note": note}
        errors: dict[str, str] = {}
        chosen = {int(i) for i in ticked if i.isdigit() and int(i) < len(g["materials"])}
        missing = [
            m["name"] for i, m in enumerate(g["materials"]) if m.get("required") and i not in chosen
        ]
        if missing:
            errors["material"] = "请确认已备齐必需材料：" + "、".join(missing)
        phone = phone.replace("-", "").replace(" ", "")
        if not (phone.isdigit() and 7 <= len(phone) <= 15):
            errors["phone"] = "请填写正确的联系电话（7 到 15 位数字）"
        if errors:
            request["crumbs"] = [("/", "首页"), (f"/items/{g['code']}", g["name"])]
            response = self.render(request, views.apply_page, g, values, errors)
            response.set_status(400)
            return response
        filed = await self.hall.file_case(
            c,
            g["code"],
            {
                "channel": "web",
                "materials": [g["materials"][i]["name"] for i in sorted(chosen)],
                "phone": phone,
                "note": note,
            },
        )
        return see_other(f"/cases/{filed['code']}?done=applied")

    async def my_cases(self, request: web.Request) -> web.Response:
        c = self._citizen(request)
        if c is None:
            return self._login_first(request)
        cases = await self.hall.cases_of(c, 100, names=True)
        return self.render(request, views.my_cases_page, cases)

    async def lookup(self, request: web.Request) -> web.Response:
        code = request.query.get("code", "").strip().replace(" ", "").replace("-", "")
        if not code:
            return self.render(request, views.lookup_page, "", "")
        try:
            case_code(code)
        except Problem as p:
            response = self.render(request, views.lookup_page, code[:40], p.zh or p.message)
            response.set_status(400)
            return response
        return see_other(f"/cases/{code}")

    async def case(self, request: web.Request) -> web.Response:
        code = case_code(request.match_info["code"])
        c: Caller | None = request["page"].caller
        if c is None:
            return self._login_first(request)
        case = await self.hall.case_view(c, code, detail=True)
        crumbs = [("/", "首页")]
        if c.kind != "staff":
            crumbs.append(("/my/cases", "我的办件"))
        request["crumbs"] = crumbs
        return self.render(request, views.case_page, case)

    async def supplement(self, request: web.Request) -> web.Response:
        code = case_code(request.match_info["code"])
        c = self._citizen(request)
        if c is None:
            return self._login_first(request)
        form = await request.post()
        await self.hall.supplement_case(c, code, _str(form, "note"))
        return see_other(f"/cases/{code}?done=supplemented")

    async def rate(self, request: web.Request) -> web.Response:
        code = case_code(request.match_info["code"])
        c = self._citizen(request)
        if c is None:
            return self._login_first(request)
        form = await request.post()
        raw = _str(form, "score", 2)
        score = int(raw) if raw.isdigit() else None
        await self.hall.rate_case(c, code, score, _str(form, "comment"))
        return see_other(f"/cases/{code}?done=rated")

    # -- staff ---------------------------------------------------------------------------------

    def _staff(self, request: web.Request, roles: frozenset[str]) -> Caller | None:
        c: Caller | None = request["page"].caller
        if c is None or c.kind != "staff":
            return None
        return staff_with(c, roles)

    async def staff_login_form(self, request: web.Request) -> web.Response:
        nxt = safe_next(request.query.get("next"), "/staff")
        return self.render(request, views.login_page, "", "", nxt, staff=True)

    async def staff_login(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = _str(form, "token", 4096)
        nxt = safe_next(form.get("next"), "/staff")
        caller = await self.hall.auth.resolve(token) if token and self.hall.auth else None
        if caller is None or caller.kind != "staff":
            response = self.render(
                request, views.login_page, "", "工作令牌无效或已过期，请核对。", nxt, staff=True
            )
            response.set_status(401)
            return response
        response = see_other(self._done(nxt, "login"))
        self._start_session(request, response, token)
        return response

    async def staff_home(self, request: web.Request) -> web.Response:
        c: Caller | None = request["page"].caller
        if c is None or c.kind != "staff":
            return self._login_first(request, staff=True)
        roles = sorted(c.roles)
        labels = [ROLE_LABELS.get(r, r) for r in roles]
        return self.render(request, views.staff_home, roles, c.site, labels)

    async def queue(self, request: web.Request) -> web.Response:
        c = self._staff(request, CLERK_ROLES)
        if c is None:
            return self._login_first(request, staff=True)
        state = request.query.get("state", "submitted")
        if state not in STATES:
            state = "submitted"
        cases = await self.hall.queue_of(c, state, 100, names=True)
        return self.render(request, views.queue_page, state, cases, c.site)

    async def staff_case(self, request: web.Request) -> web.Response:
        code = case_code(request.match_info["code"])
        c = self._staff(request, CLERK_ROLES)
        if c is None:
            return self._login_first(request, staff=True)
        case = await self.hall.case_view(c, code, detail=True)
        request["crumbs"] = [
            ("/staff", "工作台"),
            (f"/staff/queue?state={case['state']}", "办件队列"),
        ]
        return self.render(request, views.staff_case_page, case, c.roles)

    async def act(self, request: web.Request) -> web.Response:
        code = case_code(request.match_info["code"])
        action = request.match_info["action"]
        if action not in ACTIONS:
            raise Problem(404, f"no action {action}", zh="没有这个操作")
        c = self._staff(request, CLERK_ROLES)
        if c is None:
            return self._login_first(request, staff=True)
        form = await request.post()
        await self.hall.act_on(c, code, action, _str(form, "comment"))
        return see_other(f"/staff/cases/{code}?done={action}")

    async def overdue(self, request: web.Request) -> web.Response:
        c = self._staff(request, SUPERVISOR_ROLES)
        if c is None:
            return self._login_first(request, staff=True)
        overdue, warning = await self.hall.overdue_of(c, self.hall.config.warn_days, 500, True)
        return self.render(request, views.overdue_page, c.site, overdue, warning)
