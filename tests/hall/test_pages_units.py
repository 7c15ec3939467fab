"""Pure parts of the hall's pages: the escaping renderer, local redirects, the cookie setting,
and pages rendered from hostile data."""

from __future__ import annotations

import datetime as dt

import pytest

from clusters.apps.hall.app import Config
from clusters.apps.hall.markup import Markup, esc, fmt_time, h, join
from clusters.apps.hall.pages import CSP, cookie_values, safe_next
from clusters.apps.hall.views import View, guide_page, my_cases_page

pytestmark = pytest.mark.unit

CST = dt.timezone(dt.timedelta(hours=8))
HOSTILE = '<script>alert("x")</script>\'"&'


def test_values_are_escaped_and_markup_is_not() -> None:
    out = h('<p title="{}">{}</p>', HOSTILE, h("<b>{}</b>", HOSTILE))
    assert out == (
        '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;&quot;&amp;">'
        "<b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;&quot;&amp;</b></p>"
    )
    assert isinstance(out, Markup) and esc(out) is out
    assert esc(None) == "" and join(["<", Markup("<br>")]) == "&lt;<br>"


def test_times_are_shown_in_china_standard_time_to_the_minute() -> None:
    utc = dt.datetime(2024, 12, 31, 16, 5, 59, 999999, tzinfo=dt.UTC)
    assert fmt_time(utc) == "2025-01-01 00:05" == utc.astimezone(CST).strftime("%Y-%m-%d %H:%M")
    assert fmt_time(dt.datetime(2024, 3, 15, 9, 30)) == "2024-03-15 09:30"  # naive: as it is
    tokyo = dt.datetime(2025, 1, 1, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert tokyo == utc.replace(microsecond=0, second=0)  # the same instant, in Tokyo
    assert fmt_time(tokyo) == "2025-01-01 00:05"
    assert fmt_time(None) == "" and h("<td>{}</td>", utc) == "<td>2025-01-01 00:05</td>"


def test_the_hall_reads_its_own_cookies_the_last_of_a_name_as_http_cookies_does() -> None:
    names = frozenset({"__Host-hall_session", "__Host-hall_csrf", "__Host-hall_elder"})
    header = (
        "_ga=GA1.2.3; __Host-hall_csrf=first; theme=dark;__Host-hall_session = hall_a_T0k-en_ ;"
        ' __Host-hall_elder="1"; broken; hall_session=not-the-prefixed-one; __Host-hall_csrf=x-Y'
    )
    assert cookie_values(header, names) == {
        "__Host-hall_csrf": "x-Y",
        "__Host-hall_session": "hall_a_T0k-en_",
        "__Host-hall_elder": "1",
    }
    assert cookie_values("", names) == {} and cookie_values("a=1", names) == {}


def test_only_local_paths_are_followed_after_a_form() -> None:
    for good in ("/", "/my/cases?done=x", "/sites/52?q=%E5%8A%9E"):
        assert safe_next(good, "/") == good
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil", "/a\nb", None, 3, ""):
        assert safe_next(bad, "/home") == "/home"


def test_insecure_cookies_only_on_loopback() -> None:
    assert Config.from_env({}).cookie_secure
    assert not Config.from_env({"HALL_COOKIE_SECURE": "0"}).cookie_secure
    with pytest.raises(ValueError, match="loopback only"):
        Config.from_env({"HALL_COOKIE_SECURE": "0", "HALL_HOST": "0.0.0.0"})
    with pytest.raises(ValueError, match="HALL_COOKIE_SECURE"):
        Config.from_env({"HALL_COOKIE_SECURE": "maybe"})


def test_the_policy_allows_no_inline_script_or_style() -> None:
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert "script-src 'self'" in CSP and "style-src 'self'" in CSP


def test_pages_from_hostile_data_show_it_as_text() -> None:
    view = View(
        path='/items/x"><script>',
        csrf='c"><script>',
        elder=True,
        who="citizen",  # the logout form: the CSRF field once more
        name=HOSTILE,
        flash=HOSTILE,
        crumbs=[(HOSTILE, HOSTILE)],
    )
    guide = {
        "code": HOSTILE,
        "name": HOSTILE,
        "site_name": HOSTILE,
        "site_code": "52",
        "dept_name": HOSTILE,
        "kind": HOSTILE,
        "legal_limit_days": 10,
        "time_limit_days": 5,
        "fee": HOSTILE,
        "basis": HOSTILE,
        "conditions": HOSTILE,
        "online": True,
        "materials": [{"name": HOSTILE, "form": HOSTILE, "copies": 1, "required": True}],
        "steps": [{"step": HOSTILE, "who": HOSTILE, "limit_days": 1}],
    }
    cases = [
        {
            "code": HOSTILE,
            "item_name": HOSTILE,
            "site_name": HOSTILE,
            "state": "submitted",
            "created_at": None,
        }
    ]
    for page in (guide_page(view, guide), my_cases_page(view, cases)):
        assert "<script>" not in page.replace('<script src="/static/hall.js', "")
        assert page.count("<script") == 1  # the one script: the static file
        assert "&lt;script&gt;" in page
