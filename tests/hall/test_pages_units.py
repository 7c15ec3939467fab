"""Pure parts of the hall's pages: the escaping renderer, local redirects, the cookie setting,
and pages rendered from hostile data."""

from __future__ import annotations

import pytest

from clusters.apps.hall.app import Config
from clusters.apps.hall.markup import Markup, esc, h, join
from clusters.apps.hall.pages import CSP, safe_next
from clusters.apps.hall.views import View, guide_page, my_cases_page

pytestmark = pytest.mark.unit

HOSTILE = '<script>alert("x")</script>\'"&'


def test_values_are_escaped_and_markup_is_not() -> None:
    out = h('<p title="{}">{}</p>', HOSTILE, h("<b>{}</b>", HOSTILE))
    assert out == (
        '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;&quot;&amp;">'
        "<b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;&quot;&amp;</b></p>"
    )
    assert isinstance(out, Markup) and esc(out) is out
    assert esc(None) == "" and join(["<", Markup("<br>")]) == "&lt;<br>"


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
    view = View(path='/items/x"><script>', csrf='c"><script>', name=HOSTILE)
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
