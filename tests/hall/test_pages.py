"""The hall's web pages over real HTTP and a real PostgreSQL: the catalog in Chinese, security
headers and cookie flags, CSRF refusals, escaping of hostile guide text, other people's cases,
the elderly-friendly switch, static assets, and the staff pages behind the staff login."""

from __future__ import annotations

import asyncio
import json
import re
import secrets

import asyncpg
import pytest

from clusters.apps.hall.assets import ASSETS
from clusters.apps.hall.devserver import LocalHall, LocalPostgres, http_json
from tests.hall.webclient import WebClient

pytestmark = pytest.mark.integration

SITE = "520102"


def _register(hall: LocalHall) -> WebClient:
    web = WebClient(hall.url)
    login = f"w-{secrets.token_hex(5)}"
    page = web.submit(
        "/register",
        "/register",
        {
            "kind": "citizen",
            "login": login,
            "name": "张三",
            "password": "pw-12345678",
            "password2": "pw-12345678",
        },
    )
    assert page.status == 303 and page.location.startswith("/my/cases"), page.text[:500]
    return web


def _item(hall: LocalHall, site: str = SITE) -> dict[str, object]:
    status, body = http_json("GET", f"{hall.url}/api/sites/{site}/items?limit=20")
    assert status == 200
    item: dict[str, object] = next(i for i in body["items"] if i["online"])
    return item


def _apply(web: WebClient, item: str) -> str:
    page = web.get(f"/items/{item}/apply")
    assert page.status == 200, page.text[:300]
    boxes = re.findall(r'name="material" value="(\d+)"', page.text)
    page = web.post(
        f"/items/{item}/apply",
        {"csrf": page.csrf(), "material": boxes, "phone": "0851-12345678", "note": "网上申请"},
    )
    assert page.status == 303, page.text[:500]
    m = re.match(r"/cases/(\d{31})\?done=applied$", page.location)
    assert m, page.location
    return m.group(1)


def _staff(hall: LocalHall, site: str, *roles: str) -> str:
    status, body = http_json(
        "POST",
        hall.url + "/api/admin/staff-tokens",
        {"staff": f"s-{secrets.token_hex(3)}", "site": site, "roles": list(roles)},
        hall.admin_token,
    )
    assert status == 201, body
    token: str = body["token"]
    return token


def test_catalog_pages_in_chinese_with_security_headers(hall: LocalHall) -> None:
    web = WebClient(hall.url)
    home = web.get("/")
    assert home.status == 200 and home.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN"' in home.text and "网上办事大厅" in home.text
    for label in ("省级", "市（州）级", "县（市、区）级", "乡镇（街道）级", "村（社区）级"):
        assert label in home.text
    csp = home.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert home.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in home.text and " style=" not in home.text  # nothing inline
    (csrf_cookie,) = home.set_cookies
    assert csrf_cookie.startswith("__Host-hall_csrf=")
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert flag in csrf_cookie

    county = web.get("/levels/county")
    assert county.status == 200 and f'href="/sites/{SITE}"' in county.text
    site = web.get(f"/sites/{SITE}")
    assert site.status == 200 and "办事事项" in site.text
    item = _item(hall)
    word = str(item["name"])[:2]
    found = web.get(f"/sites/{SITE}?q={word}")
    assert found.status == 200 and f'href="/items/{item["code"]}"' in found.text
    none = web.get(f"/sites/{SITE}?q=不存在的事项名称")
    assert "没有找到符合条件的事项" in none.text
    guide = web.get(f"/items/{item['code']}")
    assert guide.status == 200
    for heading in ("设定依据", "受理条件", "申请材料", "办理流程", "承诺时限", "收费标准"):
        assert heading in guide.text
    assert web.get("/items/520102-nope-X0001").status == 404
    assert web.get("/levels/galaxy").status == 404


def test_register_apply_and_follow_the_case(hall: LocalHall) -> None:
    web = _register(hall)
    session = web.cookies.get("__Host-hall_session", "")
    assert session.startswith("hall_a_")
    item = _item(hall)
    code = _apply(web, str(item["code"]))
    case = web.get(f"/cases/{code}?done=applied")
    assert case.status == 200 and code in case.text and "待受理" in case.text
    assert "申请已提交" in case.text
    mine = web.get("/my/cases")
    assert code in mine.text
    found = web.get(f"/progress?code={code[:10]} {code[10:]}")
    assert found.status == 303 and found.location == f"/cases/{code}"
    bad = web.get("/progress?code=123")
    assert bad.status == 400 and "31 位数字" in bad.text
    # the API sees the same case, filed through the web channel
    status, body = http_json("GET", f"{hall.url}/api/cases/{code}", token=session)
    assert status == 200 and body["state"] == "submitted"


def test_apply_needs_the_required_materials_and_a_phone(hall: LocalHall) -> None:
    web = _register(hall)
    item = _item(hall)
    page = web.get(f"/items/{item['code']}/apply")
    page = web.post(f"/items/{item['code']}/apply", {"csrf": page.csrf(), "phone": "abc"})
    assert page.status == 400
    assert "请确认已备齐必需材料" in page.text and 'aria-invalid="true"' in page.text
    assert "请修改以下内容后再提交" in page.text


def test_a_form_without_csrf_is_refused(hall: LocalHall) -> None:
    web = WebClient(hall.url)
    web.get("/register")  # has the CSRF cookie now
    login = f"x-{secrets.token_hex(5)}"
    form = {
        "kind": "citizen",
        "login": login,
        "name": "李四",
        "password": "pw-12345678",
        "password2": "pw-12345678",
    }
    no_token = web.post("/register", form)
    assert no_token.status == 403 and "表单已失效" in no_token.text
    wrong = web.post("/register", {**form, "csrf": "A" * 43})
    assert wrong.status == 403
    fresh = WebClient(hall.url)  # no cookie at all, a token from someone else's page
    assert fresh.post("/register", {**form, "csrf": web.get("/register").csrf()}).status == 403
    right = web.get("/register").csrf()
    cross = web.post(
        "/register", {**form, "csrf": right}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status == 403
    status, _ = http_json(
        "POST", hall.url + "/api/login", {"login": login, "password": "pw-12345678"}
    )
    assert status == 401  # no account was made by any of them
    assert web.post("/register", {**form, "csrf": right}).status == 303


def test_login_sets_a_secure_session_cookie_and_logout_ends_it(hall: LocalHall) -> None:
    web = _register(hall)
    page = web.get("/my/cases")
    assert page.status == 200 and "我的办件" in page.text
    token = web.cookies["__Host-hall_session"]
    out = web.post("/logout", {"csrf": page.csrf()})
    assert out.status == 303
    dropped = [c for c in out.set_cookies if c.startswith("__Host-hall_session=")]
    assert dropped and "Max-Age=0" in dropped[0]
    status, _ = http_json("GET", hall.url + "/api/me", token=token)
    assert status == 401  # the session is gone on the server too
    anon = web.get("/my/cases")
    assert anon.status == 303 and anon.location.startswith("/login?next=")
    # logging in with the password: a new session cookie with every flag
    login = f"l-{secrets.token_hex(4)}"
    status, _ = http_json(
        "POST",
        hall.url + "/api/accounts",
        {"login": login, "name": "王五", "password": "pw-12345678"},
    )
    assert status == 201
    page = web.get("/login")
    bad = web.post("/login", {"csrf": page.csrf(), "login": login, "password": "x" * 8})
    assert bad.status == 401 and "登录名或密码不正确" in bad.text
    ok = web.post("/login", {"csrf": page.csrf(), "login": login, "password": "pw-12345678"})
    assert ok.status == 303 and ok.location == "/my/cases?done=login"
    (cookie,) = [c for c in ok.set_cookies if c.startswith("__Host-hall_session=hall_a_")]
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=28800"):
        assert flag in cookie
    assert web.cookies["__Host-hall_csrf"] != page.csrf()  # a new CSRF token with the session


def test_a_guide_with_markup_is_shown_as_text(hall: LocalHall, pg: LocalPostgres) -> None:
    code = f"{SITE}-gat-Z{secrets.randbelow(10**4):04d}"
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'

    async def insert() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute(
                "INSERT INTO items (code, site_code, dept, kind, name, basis, conditions,"
                " materials, steps, legal_limit_days, time_limit_days, fee)"
                " VALUES ($1, $2, 'gat', 'administrative', $3, $3, $3, $4::jsonb, $5::jsonb,"
                " 10, 5, $3) ON CONFLICT (code) DO NOTHING",
                code,
                SITE,
                hostile,
                json.dumps([{"name": hostile, "form": "原件", "copies": 1, "required": True}]),
                json.dumps([{"step": hostile, "who": "申请人", "limit_days": 1}]),
            )
        finally:
            await conn.close()

    asyncio.run(insert())
    web = _register(hall)
    for path in (f"/items/{code}", f"/items/{code}/apply", f"/sites/{SITE}?q=script"):
        page = web.get(path)
        assert page.status == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text, path


def test_another_citizens_case_is_refused(hall: LocalHall) -> None:
    owner, stranger = _register(hall), _register(hall)
    code = _apply(owner, str(_item(hall)["code"]))
    page = stranger.get(f"/cases/{code}")
    assert page.status == 403 and "无权查看" in page.text
    assert "085112345678" not in page.text and "网上申请" not in page.text
    page = stranger.get("/my/cases")
    assert code not in page.text
    rate = stranger.post(f"/cases/{code}/rating", {"csrf": page.csrf(), "score": "1"})
    assert rate.status == 403
    anonymous = WebClient(hall.url).get(f"/cases/{code}")
    assert anonymous.status == 303 and anonymous.location.startswith("/login?next=")


def test_elderly_mode_is_a_switch_that_persists(hall: LocalHall) -> None:
    web = WebClient(hall.url)
    page = web.get(f"/sites/{SITE}")
    assert 'class="elder"' not in page.text and 'aria-pressed="false"' in page.text
    switched = web.post(
        "/mode", {"csrf": page.csrf(), "elder": "1", "back": f"/sites/{SITE}?page=1"}
    )
    assert switched.status == 303 and switched.location == f"/sites/{SITE}?page=1"
    (cookie,) = [c for c in switched.set_cookies if c.startswith("__Host-hall_elder=1")]
    assert "Max-Age=31536000" in cookie and "HttpOnly" in cookie
    for path in ("/", f"/sites/{SITE}", "/login"):
        page = web.get(path)
        assert '<html lang="zh-CN" class="elder">' in page.text
        assert 'aria-pressed="true"' in page.text
    assert web.post("/mode", {"csrf": page.csrf(), "elder": "0", "back": "//evil"}).location == "/"
    assert 'class="elder"' not in web.get("/").text


def test_static_assets_are_cached_by_digest(hall: LocalHall) -> None:
    web = WebClient(hall.url)
    css = ASSETS["hall.css"]
    page = web.get(css.url)
    assert page.status == 200 and page.headers["content-type"].startswith("text/css")
    assert "immutable" in page.headers["cache-control"]
    assert "html.elder" in page.text
    again = web.get(css.url, headers={"If-None-Match": page.headers["etag"]})
    assert again.status == 304
    assert web.get("/static/nope.css").status == 404
    assert web.get("/").text.count(css.url) == 1


def test_staff_pages_behind_the_staff_login(hall: LocalHall, pg: LocalPostgres) -> None:
    citizen = _register(hall)
    code = _apply(citizen, str(_item(hall)["code"]))
    staff = WebClient(hall.url)
    assert staff.get("/staff/queue").location.startswith("/staff/login?next=")
    page = staff.get("/staff/login")
    refused = staff.post(
        "/staff/login",
        {"csrf": page.csrf(), "token": citizen.cookies["__Host-hall_session"]},
    )
    assert refused.status == 401 and "工作令牌无效" in refused.text
    clerk = _staff(hall, SITE, "clerk", "backoffice")
    page = staff.get("/staff/login?next=/staff/queue")
    ok = staff.post("/staff/login", {"csrf": page.csrf(), "token": clerk, "next": "/staff/queue"})
    assert ok.status == 303 and ok.location == "/staff/queue?done=login"
    queue = staff.get("/staff/queue")
    assert queue.status == 200 and code in queue.text
    case = staff.get(f"/staff/cases/{code}")
    assert "085112345678" in case.text and "已备材料" in case.text  # what the clerk needs
    assert 'id="do-accept"' in case.text and 'id="do-approve"' not in case.text
    done = staff.post(f"/staff/cases/{code}/accept", {"csrf": case.csrf(), "comment": "材料齐全"})
    assert done.status == 303
    case = staff.get(done.location)
    assert "办理中" in case.text and "已受理" in case.text and 'id="do-approve"' in case.text
    again = staff.post(f"/staff/cases/{code}/accept", {"csrf": case.csrf()})
    assert again.status == 409 and "办理中" in again.text
    # a clerk of another county cannot act on it
    other = WebClient(hall.url)
    page = other.get("/staff/login")
    other.post("/staff/login", {"csrf": page.csrf(), "token": _staff(hall, "520103", "clerk")})
    assert other.get(f"/staff/cases/{code}").status == 403
    # the supervision office: overdue after the deadline has passed
    assert staff.get("/staff/overdue").status == 403  # a clerk is not a supervisor

    async def late() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute(
                "UPDATE cases SET deadline = now() - interval '1 day' WHERE code = $1", code
            )
        finally:
            await conn.close()

    asyncio.run(late())
    office = WebClient(hall.url)
    page = office.get("/staff/login")
    office.post("/staff/login", {"csrf": page.csrf(), "token": _staff(hall, "5201", "supervisor")})
    overdue = office.get("/staff/overdue")
    assert overdue.status == 200 and "已超期" in overdue.text
    section = overdue.text.split('id="warning-h"')[0]
    assert code in section
