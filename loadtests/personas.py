"""One locust user class per persona. Every task sends exactly one request (so an arrival rate
is a request rate), checks it with ``catch_response`` and names it ``[level] METHOD /path``:
URLs are grouped by endpoint and by the level of the site the user belongs to.

Citizens and enterprises come in two kinds: an app calling the JSON API, or a person in a browser
on the hall's web pages (``browser_share`` of them, from loadtests/profiles.yaml). A browser user
loads pages (named ``[level] PAGE ...``) and, as a browser does, the page's static assets the
first time it sees them (``[level] ASSET ...``, then cached), so the report can tell page loads
from API calls.

Each simulated user belongs to one site, drawn by the level mix (the olive shape: least at
province and village, most at county) and then uniformly among that level's sites, and talks to
that site's hall only.

Sessions are kept as real users keep them: a citizen or enterprise logs in when it has no
session (or the hall refused its token) and then reuses the token for the requests that follow;
the hall's sessions last 8 hours, so a session ends (and the user logs in again) after
``SESSION_REQUESTS`` authenticated requests on average, one user's working day of visits. A login
(scrypt, tens of ms of CPU by design) is then well under 1 % of the mix instead of a fixed task.
``GOVCLOUD_LOADTEST_SESSIONS=per-task`` brings back the former behaviour (a login as one task in
seventeen, whatever the session), for the benchmark's baseline.
"""

from __future__ import annotations

import os
import random
import re
import secrets
from collections import deque
from typing import Any, ClassVar
from urllib.parse import urlencode

from locust import FastHttpUser, task

from loadtests.config import RunConfig, load_config, read_profiles
from loadtests.tlsclient import gevent_context_factory

_CONFIG: RunConfig | None = None

SESSIONS_ENV = "GOVCLOUD_LOADTEST_SESSIONS"
#: authenticated requests a citizen's session serves on average before it has expired
SESSION_REQUESTS = 60
_SESSION_COOKIE = re.compile(r"^(?:__Host-)?hall_session=(hall_a_[^;]+)")


def sessions_mode() -> str:
    """``reuse`` (log in when needed, keep the token) or ``per-task`` (the former suite)."""
    mode = os.environ.get(SESSIONS_ENV, "") or "reuse"
    if mode not in ("reuse", "per-task"):
        raise ValueError(f'{SESSIONS_ENV}: expected "reuse" or "per-task", got "{mode}"')
    return mode


def session_length(rnd: random.Random | None = None) -> int:
    """How many authenticated requests a new session serves before it has expired: exponential
    with mean ``SESSION_REQUESTS`` (most sessions short, a few long), at least one."""
    return max(1, round((rnd or random).expovariate(1 / SESSION_REQUESTS)))


def config() -> RunConfig:
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = load_config()
    return _CONFIG


def set_config(cfg: RunConfig) -> None:
    global _CONFIG
    _CONFIG = cfg


#: case codes filed in this process, per site (hotline agents and kiosks look them up)
CASES: dict[str, deque[str]] = {}


def remember_case(site: str, code: str) -> None:
    pool = CASES.get(site)
    if pool is None:
        pool = CASES[site] = deque(maxlen=500)
    pool.append(code)


_CREDIT: dict[str, float] = {}
_BROWSER: list[float] = []  # [share, credit]


def next_is_browser() -> bool:
    """Whether the next citizen or enterprise user of this process uses the web pages: a
    running credit, so any number of users follows ``browser_share`` as closely as it can."""
    if not _BROWSER:
        share = read_profiles().get("browser_share", 0.0)
        if not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ValueError(f"profiles.yaml: browser_share: expected 0..1, got {share!r}")
        _BROWSER[:] = [float(share), 0.0]
    _BROWSER[1] += _BROWSER[0]
    if _BROWSER[1] >= 1.0 - 1e-9:
        _BROWSER[1] -= 1.0
        return True
    return False


#: the pages' static assets, as a page refers to them: <link href> / <script src>
_ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')
_ROW_ITEM = re.compile(r'<tr><td><a href="/items/([^"/]+)">.*?</tr>')


def next_level(cfg: RunConfig) -> str:
    """The level of the next user of this process: smooth weighted round robin over the mix,
    so even a handful of users follows the olive shape (and every level with weight shows up)."""
    total = 0.0
    for lv, w in cfg.level_mix.items():
        if w > 0 and cfg.sites.get(lv):
            _CREDIT[lv] = _CREDIT.get(lv, 0.0) + w
            total += w
    best = max(_CREDIT, key=lambda lv: _CREDIT[lv])
    _CREDIT[best] -= total
    return best


def pick_level(cfg: RunConfig) -> str:
    """A level drawn by the mix, among the levels that have sites in this run."""
    levels = [lv for lv in cfg.level_mix if cfg.sites.get(lv) and cfg.level_mix[lv] > 0]
    weights = [cfg.level_mix[lv] for lv in levels]
    return random.choices(levels, weights)[0]


class Persona(FastHttpUser):
    """What every persona shares: its site, its names, its token, the checks."""

    abstract = True
    persona: ClassVar[str] = ""
    connection_timeout = 3.0
    network_timeout = 10.0
    max_retries = 0

    def __init__(self, environment: Any, level: str | None = None) -> None:
        cfg = config()
        self.level = level or next_level(cfg)
        self.site = random.choice(cfg.sites[self.level])
        self.host = cfg.url_of(self.site)
        self.token: str | None = cfg.tokens.get(self.site, {}).get(self.persona)
        self.items: list[str] = []
        lv = f"[{self.level}]"
        self.n_catalog = f"{lv} GET /api/sites/{{site}}/items"
        self.n_guide = f"{lv} GET /api/items/{{item}}"
        self.n_sites = f"{lv} GET /api/sites?parent="
        self.n_progress = f"{lv} GET /api/cases/{{code}}"
        if cfg.ca_file:  # verify the halls' certificates against the cloud's PKI
            self.insecure = False
            self.ssl_context_factory = gevent_context_factory(cfg.ca_file)
        super().__init__(environment)
        self.started = False

    def wait_time(self) -> float:
        lo, hi = config().think_s
        return random.uniform(lo, hi)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def on_start(self) -> None:
        self.started = True

    # -- requests shared by several personas -------------------------------------------------

    def browse(self) -> None:
        offset = random.randrange(0, 40) if self.items else 0
        with self.client.get(
            f"/api/sites/{self.site}/items?offset={offset}",
            name=self.n_catalog,
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            items = r.json().get("items")
            if not isinstance(items, list):
                r.failure("no items list")
                return
            if items:
                self.items = [i["code"] for i in items]

    def read_guide(self) -> None:
        if not self.items:
            return self.browse()
        with self.client.get(
            f"/api/items/{random.choice(self.items)}", name=self.n_guide, catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
            elif not r.json().get("materials"):
                r.failure("guide without materials")

    def lookup_case(self, code: str, full: bool) -> None:
        with self.client.get(
            f"/api/cases/{code}", name=self.n_progress, headers=self.auth(), catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            body = r.json()
            if body.get("code") != code or (full and "events" not in body):
                r.failure("wrong case or no timeline")


class Citizen(Persona):
    """Browses the catalog, reads guides, applies, checks progress, supplements, rates."""

    persona = "citizen"
    account_kind = "citizen"

    def __init__(self, environment: Any, level: str | None = None) -> None:
        super().__init__(environment, level)
        self.cases: dict[str, str] = {}  # code -> last known state
        self.rated: set[str] = set()
        lv = f"[{self.level}]"
        self.n_register = f"{lv} POST /api/accounts"
        self.n_login = f"{lv} POST /api/login"
        self.account: dict[str, str] = {}
        self.uses_left = 0  # authenticated requests the current session still serves
        self.logins = 0  # logins and registrations this user made (its session changes)
        self.n_apply = f"{lv} POST /api/cases"
        self.n_mine = f"{lv} GET /api/my/cases"
        self.n_supplement = f"{lv} POST /api/cases/{{code}}/supplement"
        self.n_rate = f"{lv} POST /api/cases/{{code}}/rating"
        self.browser = next_is_browser()
        self.cached: set[str] = set()  # static assets this browser has
        self.online: list[str] = []  # items of the last catalog page that can be applied for
        self.csrf = secrets.token_urlsafe(32)  # a browser's CSRF cookie (double submit)
        self.n_page = {
            k: f"{lv} PAGE {v}"
            for k, v in {
                "site": "GET /sites/{site}",
                "guide": "GET /items/{item}",
                "apply_form": "GET /items/{item}/apply",
                "apply": "POST /items/{item}/apply",
                "case": "GET /cases/{code}",
                "mine": "GET /my/cases",
                "login_form": "GET /login",
                "login": "POST /login",
                "supplement": "POST /cases/{code}/supplement",
                "rate": "POST /cases/{code}/rating",
            }.items()
        }

    def on_start(self) -> None:
        """Take one of the accounts registered before the run (a returning user), or register
        a new one when there are none: registering every simulated user at once would turn the
        first seconds of a run into a password-hashing storm no real hall sees."""
        self.started = True
        pool = [
            a
            for a in config().accounts.get(self.account_kind, [])
            if a.get("url", self.host) == self.host  # an account lives on its own hall
        ]
        if pool:
            self.account = random.choice(pool)
            self.token = self.account["token"]
            self.uses_left = session_length()
        else:
            self.register()

    # -- a person in a browser ----------------------------------------------------------------

    def _cookies(self) -> dict[str, str]:
        jar = f"__Host-hall_csrf={self.csrf}; hall_csrf={self.csrf}"
        if self.token:
            jar += f"; __Host-hall_session={self.token}; hall_session={self.token}"
        return {"Cookie": jar}

    def page(
        self, key: str, path: str, form: dict[str, Any] | None = None, conflict_ok: bool = False
    ) -> str | None:
        """One page load (GET, or a form POST answered with a redirect that is followed), then
        the assets the page uses that this browser has not cached yet. The page's HTML, or None
        when it failed. ``conflict_ok``: a 409 (the case moved on meanwhile: a clerk acted, or
        another session of the same account did) is an answer, not a fault, as in the API."""
        headers = self._cookies()
        if form is None:
            ctx = self.client.get(path, name=self.n_page[key], headers=headers, catch_response=True)
        else:
            ctx = self.client.post(
                path,
                data=urlencode({**form, "csrf": self.csrf}, doseq=True),
                name=self.n_page[key],
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                catch_response=True,
                allow_redirects=False,
            )
        with ctx as r:
            if form is not None and r.status_code == 303:
                location = r.headers.get("Location", "")
                for header, value in r.headers.items():
                    m = _SESSION_COOKIE.match(value) if header.lower() == "set-cookie" else None
                    if m:  # a new session (login): the browser keeps its cookie
                        self._new_session(m.group(1))
                r.success()
                return location
            if conflict_ok and r.status_code == 409:
                r.success()
                return None
            if r.status_code != 200 or "<html" not in (r.text or ""):
                r.failure(f"status {r.status_code}")
                return None
            text: str = r.text
        for url in _ASSET.findall(text):
            if url not in self.cached:
                self.asset(url)
        return text

    def asset(self, url: str) -> None:
        name = f"[{self.level}] ASSET GET {url.split('?')[0]}"
        with self.client.get(url, name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
        self.cached.add(url)

    def page_site(self) -> None:
        page = random.randrange(1, 3) if self.items else 1
        text = self.page("site", f"/sites/{self.site}?page={page}")
        if text:
            rows = [(m.group(1), "可网上办理" in m.group(0)) for m in _ROW_ITEM.finditer(text)]
            if rows:
                self.items = [code for code, _ in rows]
                self.online = [code for code, online in rows if online]

    def page_guide(self) -> None:
        if not self.items:
            return self.page_site()
        self.page("guide", f"/items/{random.choice(self.items)}")

    def page_apply(self) -> None:
        if not self.online:  # a person applies online only where the guide offers it
            return self.page_site()
        item = random.choice(self.online)
        text = self.page("apply_form", f"/items/{item}/apply")
        if not text:
            return
        if 'name="material"' not in text:
            return  # an item handled at the window only: nothing to apply for online
        boxes = re.findall(r'name="material" value="(\d+)"', text)
        where = self.page(
            "apply",
            f"/items/{item}/apply",
            {"material": boxes, "phone": "085112345678", "note": "网上申请"},
        )
        m = re.match(r"/cases/(\d{31})", where or "")
        if m:
            self.cases[m.group(1)] = "submitted"
            remember_case(self.site, m.group(1))

    def page_case(self) -> None:
        if not self.cases:
            return self.page_guide()
        code = random.choice(list(self.cases))
        text = self.page("case", f"/cases/{code}")
        m = re.search(r'id="case-state">([^<]+)<', text or "")
        if m:
            self.cases[code] = _STATE_OF_LABEL.get(m.group(1), "unknown")

    def page_mine(self) -> None:
        text = self.page("mine", "/my/cases")
        for code, label in re.findall(
            r'href="/cases/(\d{31})">.*?class="state state-\w+">([^<]+)<', text or ""
        ):
            self.cases[code] = _STATE_OF_LABEL.get(label, "unknown")

    def page_login(self) -> None:
        if not self.account:
            return self.register()
        if self.page("login_form", "/login?next=/my/cases") is None:
            return
        self.page(
            "login",
            "/login",
            {"login": self.account["login"], "password": self.account["password"], "next": "/"},
        )  # the session cookie it sets is the token this user goes on with

    def page_supplement(self, code: str) -> None:
        self.page("supplement", f"/cases/{code}/supplement", {"note": "已补正材料"}, True)
        self.cases[code] = "unknown"

    def page_rate(self, code: str) -> None:
        score = random.choices([5, 4, 3, 2, 1], [60, 25, 8, 4, 3])[0]
        self.page("rate", f"/cases/{code}/rating", {"score": str(score)}, True)
        self.rated.add(code)

    def _new_session(self, token: str) -> None:
        self.token = token
        self.uses_left = session_length()
        self.logins += 1

    def _refused(self, status: int) -> None:
        """The hall no longer knows the session (expired, logged out): log in next time."""
        if status == 401:
            self.token = None

    # -- the tasks (an app's API calls, or a browser's pages) ----------------------------------

    def login(self) -> None:
        """Log in with the account's password (a new session). Not a task of its own: a user
        logs in when a visit needs a session it does not have (``_need_token``); the former
        suite's login-as-a-task is ``GOVCLOUD_LOADTEST_SESSIONS=per-task``."""
        if self.browser:
            return self.page_login()
        if not self.account:
            return self.register()
        with self.client.post(
            "/api/login",
            json={"login": self.account["login"], "password": self.account["password"]},
            name=self.n_login,
            catch_response=True,
        ) as r:
            if r.status_code != 200 or not r.json().get("token"):
                r.failure(f"status {r.status_code}")
                return
            self._new_session(r.json()["token"])

    def register(self) -> None:
        login = f"{self.account_kind[0]}{random.getrandbits(64):016x}"
        password = f"loadtest-{random.getrandbits(64):016x}"
        with self.client.post(
            "/api/accounts",
            json={
                "kind": self.account_kind,
                "login": login,
                "name": "压测用户",
                "password": password,
            },
            name=self.n_register,
            catch_response=True,
        ) as r:
            if r.status_code != 201:
                r.failure(f"status {r.status_code}")
                return
            token = r.json().get("token")
            if not token:
                r.failure("no token")
                return
            self._new_session(token)
            self.account = {"login": login, "password": password, "token": token}

    def _need_token(self) -> bool:
        """Before an authenticated request: when the user has no session (none yet, refused, or
        expired after its share of requests), this task's request is the login (or, without an
        account, the registration) and True is returned; else the session serves one more."""
        if self.token is None or (self.uses_left <= 0 and sessions_mode() == "reuse"):
            if self.account:
                self.login()
            else:
                self.register()
            return True
        self.uses_left -= 1
        return False

    @task(4)
    def browse_catalog(self) -> None:
        if self.browser:
            return self.page_site()
        self.browse()

    @task(4)
    def guide(self) -> None:
        if self.browser:
            return self.page_guide()
        self.read_guide()

    @task(2)
    def apply(self) -> None:
        if self._need_token():
            return
        if self.browser:
            return self.page_apply()
        if not self.items:
            return self.browse()
        with self.client.post(
            "/api/cases",
            json={"item": random.choice(self.items), "form": {"note": "申请"}},
            headers=self.auth(),
            name=self.n_apply,
            catch_response=True,
        ) as r:
            if r.status_code != 201:
                self._refused(r.status_code)
                r.failure(f"status {r.status_code}")
                return
            code = r.json().get("code", "")
            if len(code) != 31 or not code.isdigit():
                r.failure(f"bad case code {code!r}")
                return
            self.cases[code] = "submitted"
            remember_case(self.site, code)

    @task(3)
    def progress(self) -> None:
        if self._need_token():
            return
        if self.browser:
            return self.page_case()
        if not self.cases:
            return self.read_guide()
        code = random.choice(list(self.cases))
        with self.client.get(
            f"/api/cases/{code}", name=self.n_progress, headers=self.auth(), catch_response=True
        ) as r:
            if r.status_code != 200:
                self._refused(r.status_code)
                r.failure(f"status {r.status_code}")
                return
            state = r.json().get("state")
            if state not in ("submitted", "in_progress", "needs_material", "returned", "completed"):
                r.failure(f"unknown state {state!r}")
                return
            self.cases[code] = state

    @task(1)
    def my_cases(self) -> None:
        if self._need_token():
            return
        if self.browser:
            return self.page_mine()
        with self.client.get(
            "/api/my/cases", name=self.n_mine, headers=self.auth(), catch_response=True
        ) as r:
            if r.status_code != 200:
                self._refused(r.status_code)
                r.failure(f"status {r.status_code}")
                return
            for case in r.json().get("cases", []):
                self.cases[case["code"]] = case["state"]

    @task(1)
    def supplement(self) -> None:
        if self._need_token():
            return
        waiting = [c for c, s in self.cases.items() if s == "needs_material"]
        if not waiting:
            return self.my_cases()
        code = random.choice(waiting)
        if self.browser:
            return self.page_supplement(code)
        with self.client.post(
            f"/api/cases/{code}/supplement",
            json={"note": "已补正材料"},
            headers=self.auth(),
            name=self.n_supplement,
            catch_response=True,
        ) as r:
            if r.status_code == 200:
                self.cases[code] = r.json().get("state", "submitted")
            elif r.status_code == 409:  # the clerk moved it meanwhile: not a server fault
                self.cases[code] = "unknown"
                r.success()
            else:
                r.failure(f"status {r.status_code}")

    @task(1)
    def rate(self) -> None:
        if self._need_token():
            return
        done = [
            c
            for c, s in self.cases.items()
            if s in ("completed", "returned") and c not in self.rated
        ]
        if not done:
            return self.my_cases()
        code = random.choice(done)
        if self.browser:
            return self.page_rate(code)
        with self.client.post(
            f"/api/cases/{code}/rating",
            json={"score": random.choices([5, 4, 3, 2, 1], [60, 25, 8, 4, 3])[0]},
            headers=self.auth(),
            name=self.n_rate,
            catch_response=True,
        ) as r:
            self.rated.add(code)
            if r.status_code not in (201, 409):
                r.failure(f"status {r.status_code}")
            else:
                r.success()


class Enterprise(Citizen):
    """An enterprise: fewer visits to the catalog, more applications."""

    persona = "enterprise"
    account_kind = "enterprise"

    @task(3)
    def apply_more(self) -> None:
        self.apply()


class Kiosk(Persona):
    """A self-service kiosk (自助终端) at the site: catalog, guides, progress by case code."""

    persona = "kiosk"

    @task(3)
    def browse_catalog(self) -> None:
        self.browse()

    @task(3)
    def guide(self) -> None:
        self.read_guide()

    @task(1)
    def nearby(self) -> None:
        with self.client.get(
            f"/api/sites?parent={self.site}", name=self.n_sites, catch_response=True
        ) as r:
            if r.status_code != 200 or not isinstance(r.json().get("sites"), list):
                r.failure(f"status {r.status_code}")

    @task(2)
    def progress(self) -> None:
        pool = CASES.get(self.site)
        if not pool:
            return self.read_guide()
        self.lookup_case(random.choice(pool), full=False)


class Hotline(Persona):
    """A 12345 hotline agent: looks up a caller's case, or the guide the caller asks about."""

    persona = "hotline"

    @task(5)
    def lookup(self) -> None:
        pool = CASES.get(self.site)
        if not pool:
            return self.read_guide()
        self.lookup_case(random.choice(pool), full=True)

    @task(3)
    def guide(self) -> None:
        self.read_guide()


class WindowClerk(Persona):
    """A window clerk (窗口人员) with back-office rights: takes the queue, accepts, asks for
    more material, approves or returns."""

    persona = "clerk"

    def __init__(self, environment: Any, level: str | None = None) -> None:
        super().__init__(environment, level)
        self.submitted: list[str] = []
        self.in_progress: list[str] = []
        lv = f"[{self.level}]"
        self.n_queue = f"{lv} GET /api/staff/queue"
        self.n_act = {
            a: f"{lv} POST /api/staff/cases/{{code}}/{a}"
            for a in ("accept", "request-material", "approve", "return")
        }

    @task(2)
    def queue(self) -> None:
        state = "submitted" if random.random() < 0.6 else "in_progress"
        with self.client.get(
            f"/api/staff/queue?state={state}",
            name=self.n_queue,
            headers=self.auth(),
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            codes = [c["code"] for c in r.json().get("cases", [])]
            random.shuffle(codes)
            if state == "submitted":
                self.submitted = codes
            else:
                self.in_progress = codes

    def _act(self, action: str, codes: list[str], then: list[str] | None) -> None:
        if not codes:
            return self.queue()
        code = codes.pop()
        with self.client.post(
            f"/api/staff/cases/{code}/{action}",
            json={"comment": "压测"},
            name=self.n_act[action],
            headers=self.auth(),
            catch_response=True,
        ) as r:
            if r.status_code == 200:
                if then is not None:
                    then.append(code)
            elif r.status_code == 409:  # another clerk took it first: expected under load
                r.success()
            else:
                r.failure(f"status {r.status_code}")

    @task(3)
    def accept(self) -> None:
        self._act("accept", self.submitted, self.in_progress)

    @task(1)
    def request_material(self) -> None:
        self._act("request-material", self.in_progress, None)

    @task(2)
    def approve(self) -> None:
        if random.random() < 0.1:
            return self._act("return", self.in_progress, None)
        self._act("approve", self.in_progress, None)


_STATE_OF_LABEL = {
    "待受理": "submitted",
    "办理中": "in_progress",
    "待补正": "needs_material",
    "退回": "returned",
    "办结": "completed",
}

if sessions_mode() == "per-task":  # the former suite: a login as one task among the others
    for _cls in (Citizen, Enterprise):
        _cls.tasks = [*_cls.tasks, _cls.login]
    del _cls

PERSONA_CLASSES: dict[str, type[Persona]] = {
    "citizen": Citizen,
    "enterprise": Enterprise,
    "kiosk": Kiosk,
    "clerk": WindowClerk,
    "hotline": Hotline,
}

__all__ = ["PERSONA_CLASSES", "Citizen", "Enterprise", "Hotline", "Kiosk", "WindowClerk"]
