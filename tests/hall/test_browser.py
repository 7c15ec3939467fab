"""The hall's pages in a real headless browser: Debian's Chromium through its chromium-driver
(selenium), against the session's hall on loopback. Nothing is downloaded at run time: the
browser and driver are Debian's, axe-core comes from a Python package, Selenium Manager is off,
and the browser resolves no host but 127.0.0.1.

Screenshots of each step are kept in out/test-artifacts/hall-browser/.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters.apps.hall.devserver import LocalHall, http_json

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts" / "hall-browser"
SITE = "520102"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=zh-CN",
    "--window-size=1280,1000",
    # the hall is the only host there is: nothing else can be reached, let alone downloaded
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def _why_no_browser() -> str | None:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return "Debian's chromium and chromium-driver are not installed (scripts/apt-packages.txt)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extras)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _why_no_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for downloads
    profile = tempfile.mkdtemp(prefix="hall-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def b(browser: Any, hall: LocalHall) -> Iterator[Any]:
    """The browser, starting each test with no cookies (a new visitor)."""
    browser.get(hall.url + "/healthz")
    browser.delete_all_cookies()
    yield browser
    browser.get(hall.url + "/healthz")
    browser.delete_all_cookies()


def shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def by_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def link(driver: Any, text: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.LINK_TEXT, text)


def fill(driver: Any, field_id: str, value: str) -> None:
    el = by_css(driver, f"#{field_id}")
    el.clear()
    el.send_keys(value)


def submit(driver: Any, form_selector: str) -> None:
    """Press the form's submit button (as a person would, so the page's script runs)."""
    go(driver, by_css(driver, f"{form_selector} button[type=submit]"))


def go(driver: Any, element: Any, alert: str | None = None) -> None:
    """Click something that loads a new page, and wait for it; ``alert``: a confirmation the
    page asks first (its text must contain this), accepted."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    old = by_css(driver, "html")
    element.click()
    if alert is not None:
        box = WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
        assert alert in box.text, box.text
        box.accept()
    # mid-navigation Chrome may answer "node does not belong to the document" instead of
    # "stale": ask again until the old page is gone
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(
        expected_conditions.staleness_of(old)
    )


def staff_token(hall: LocalHall, site: str, *roles: str) -> str:
    status, body = http_json(
        "POST",
        hall.url + "/api/admin/staff-tokens",
        {"staff": f"窗口{secrets.token_hex(2)}", "site": site, "roles": list(roles)},
        hall.admin_token,
    )
    assert status == 201, body
    token: str = body["token"]
    return token


def test_citizen_applies_clerk_completes_citizen_rates(b: Any, hall: LocalHall) -> None:
    login, password = f"b-{secrets.token_hex(4)}", "pw-12345678"
    b.get(hall.url + "/")
    assert "网上办事大厅" in b.title
    shot(b, "01-home")

    # a citizen registers
    go(b, link(b, "注册"))
    fill(b, "login", login)
    fill(b, "name", "张三")
    fill(b, "password", password)
    fill(b, "password2", password)
    submit(b, "main form")
    assert b.current_url.startswith(hall.url + "/my/cases")
    assert "注册成功" in by_css(b, ".flash").text
    shot(b, "02-registered")

    # finds an item at a county site: level, site, search, guide
    go(b, link(b, "首页"))
    go(b, link(b, "县（市、区）级"))
    go(b, by_css(b, f'a[href="/sites/{SITE}"]'))
    assert by_css(b, "h1").text and "办事事项" in b.page_source
    shot(b, "03-county-site")
    first = by_css(b, "main table tbody a").text
    fill(b, "q", first[:3])
    submit(b, "form.search")
    assert "q=" in b.current_url
    names = [a.text for a in all_css(b, "main table tbody a")]
    assert first in names and all(first[:3] in n for n in names)
    shot(b, "04-search")
    online = [
        row.find_element("css selector", "a")
        for row in all_css(b, "main table tbody tr")
        if "可网上办理" in row.text
    ]
    go(b, online[0])
    assert "设定依据" in b.page_source and "申请材料" in b.page_source
    item_name = by_css(b, "h1").text
    shot(b, "05-guide")

    # applies with the item's materials and sees the case code
    go(b, link(b, "在线申办"))
    for box in all_css(b, "input[name=material]"):
        box.click()
    fill(b, "phone", "0851-86666666")
    fill(b, "note", "请尽快办理")
    submit(b, "main form")
    code = by_css(b, "#case-code").text
    assert re.fullmatch(r"\d{31}", code), code
    assert by_css(b, "#case-state").text == "待受理"
    assert "申请已提交" in by_css(b, ".flash").text
    shot(b, "06-applied-case-code")

    # a clerk of the county logs in with the staff token and completes it
    b.delete_all_cookies()
    b.get(hall.url + "/staff/queue")
    assert "/staff/login" in b.current_url
    fill(b, "token", staff_token(hall, SITE, "clerk", "backoffice"))
    submit(b, "main form")
    assert b.current_url.startswith(hall.url + "/staff/queue")
    go(b, by_css(b, f'a[href="/staff/cases/{code}"]'))
    assert item_name in by_css(b, "h1").text
    shot(b, "07-clerk-case")
    go(b, by_css(b, "#do-accept"))
    assert by_css(b, "#case-state").text == "办理中"
    # the page's script asks before an action that cannot be undone
    go(b, by_css(b, "#do-approve"), alert="办结")
    assert by_css(b, "#case-state").text == "办结"
    shot(b, "08-clerk-completed")

    # the citizen logs in again, sees "completed" and rates it
    b.delete_all_cookies()
    b.get(hall.url + f"/progress?code={code}")
    assert "/login" in b.current_url
    fill(b, "login", login)
    fill(b, "password", password)
    submit(b, "main form")
    assert b.current_url.startswith(hall.url + f"/cases/{code}")
    assert by_css(b, "#case-state").text == "办结"
    shot(b, "09-citizen-sees-completed")
    by_css(b, "input[name=score][value='5']").click()
    fill(b, "comment", "办事快，态度好")
    submit(b, "form[action$='/rating']")
    assert "感谢您的评价" in by_css(b, ".flash").text
    assert by_css(b, "#my-rating").text.startswith("5 分")
    shot(b, "10-rated")
    go(b, link(b, "我的办件"))
    assert code in b.page_source and "办结" in b.page_source


def _styles(driver: Any, selector: str) -> dict[str, str]:
    styles: dict[str, str] = driver.execute_script(
        "var s = getComputedStyle(document.querySelector(arguments[0]));"
        "return {size: s.fontSize, color: s.color, background: s.backgroundColor};",
        selector,
    )
    return styles


def _rgb(text: str) -> tuple[float, float, float]:
    r, g, bl = (float(x) for x in re.findall(r"[\d.]+", text)[:3])
    return r, g, bl


def contrast(fg: str, bg: str) -> float:
    def lum(rgb: tuple[float, float, float]) -> float:
        def ch(c: float) -> float:
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        r, g, bl = (ch(c) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl

    hi, lo = sorted((lum(_rgb(fg)), lum(_rgb(bg))), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_elderly_mode_changes_type_and_contrast_and_survives_navigation(
    b: Any, hall: LocalHall
) -> None:
    b.get(hall.url + f"/sites/{SITE}")
    normal = _styles(b, "body")
    normal_button = _styles(b, "form.search button")
    assert float(normal["size"].rstrip("px")) == 16
    go(b, by_css(b, "form.mode button"))
    assert b.current_url == hall.url + f"/sites/{SITE}"
    assert by_css(b, "form.mode button").get_attribute("aria-pressed") == "true"
    elder = _styles(b, "body")
    assert float(elder["size"].rstrip("px")) >= 22  # larger type
    assert _rgb(elder["background"]) == (0, 0, 0) and _rgb(elder["color"]) == (255, 255, 255)
    assert contrast(elder["color"], elder["background"]) >= 15  # high contrast
    button = _styles(b, "form.search button")
    assert float(button["size"].rstrip("px")) > float(normal_button["size"].rstrip("px"))
    assert contrast(button["color"], button["background"]) >= 12
    shot(b, "11-elderly-mode-site")

    # survives navigation: a guide, the login page, the home page, a new page load
    go(b, by_css(b, "main table tbody a"))
    assert float(_styles(b, "body")["size"].rstrip("px")) >= 22
    assert float(_styles(b, "h1")["size"].rstrip("px")) > 30
    shot(b, "12-elderly-mode-guide")
    for path in ("/login", "/"):
        b.get(hall.url + path)
        assert b.execute_script("return document.documentElement.className") == "elder"
    go(b, by_css(b, "form.mode button"))  # and back
    assert float(_styles(b, "body")["size"].rstrip("px")) == 16


AXE = importlib.resources.files("axe_core_python").joinpath("axe.min.js")


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core run in the page (WCAG 2.0/2.1 A and AA rules): the serious and critical
    violations."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        ".then(function (r) { done({violations: r.violations, passes: r.passes.length}); })"
        ".catch(function (e) { done({error: String(e)}); });"
    )
    assert "error" not in result, result
    assert result["passes"] > 10  # axe really ran
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["html"][:120] for n in v["nodes"][:3]],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_main_pages_have_no_serious_accessibility_violations(b: Any, hall: LocalHall) -> None:
    # a citizen with a case, and a clerk's and a supervisor's view of it
    status, account = http_json(
        "POST",
        hall.url + "/api/accounts",
        {"login": f"a-{secrets.token_hex(4)}", "name": "无障碍", "password": "pw-12345678"},
    )
    assert status == 201
    status, items = http_json("GET", f"{hall.url}/api/sites/{SITE}/items?limit=20")
    item = next(i["code"] for i in items["items"] if i["online"])
    status, case = http_json("POST", hall.url + "/api/cases", {"item": item}, account["token"])
    assert status == 201
    public = ["/", "/levels/county", f"/sites/{SITE}", f"/sites/{SITE}?q=zz", f"/items/{item}"]
    public += ["/login", "/register", "/progress", "/progress?code=12", "/staff/login"]
    citizen = ["/my/cases", f"/items/{item}/apply", f"/cases/{case['code']}"]
    found: dict[str, list[dict[str, Any]]] = {}

    def check(paths: list[str], tag: str) -> None:
        for path in paths:
            b.get(hall.url + path)
            bad = axe_violations(b)
            if bad:
                found[f"{tag} {path}"] = bad

    def cookie(name: str, value: str) -> None:
        b.add_cookie({"name": name, "value": value, "path": "/", "secure": True})

    check(public, "visitor")
    cookie("__Host-hall_session", account["token"])
    check(citizen, "citizen")
    b.delete_all_cookies()
    cookie("__Host-hall_session", staff_token(hall, SITE, "clerk"))
    check(["/staff", "/staff/queue", f"/staff/cases/{case['code']}"], "clerk")
    b.delete_all_cookies()
    cookie("__Host-hall_session", staff_token(hall, "52", "supervisor"))
    check(["/staff/overdue"], "supervisor")
    cookie("__Host-hall_elder", "1")
    check(["/", f"/sites/{SITE}", f"/items/{item}"], "elderly mode")
    assert not found, found
