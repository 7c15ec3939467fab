"""CPU per request of the hall app (issue 15, part 5 and bench (a), on the local hall).

Two halls run side by side over one local PostgreSQL (``LocalPostgres`` + ``LocalHall``, as
``govcloud loadtest run --target local`` starts them), both with the production password
strength (scrypt N = 2^14) and the access log written to a file:

- the baseline: the hall with its hot-read caches switched off (``HALL_READ_CACHE_S=0``), driven
  by the load suite's former session behaviour (``GOVCLOUD_LOADTEST_SESSIONS=per-task``: every
  citizen logs in again as one task in seventeen, so a login is ~4 % of the mix);
- the hall as it ships, driven by the suite as it ships (a session logs in when it has to and
  reuses its token; see ``loadtests/personas.py``);
- where the repository is at hand, the hall's code from before this work (``BEFORE_REV``), with
  the former suite: the ``*_before`` figures.

The figure is the app process's CPU time (utime + stime of ``/proc/<pid>/stat``, every thread,
the scrypt executor included) divided by the requests it served (its own request counter from
``/metrics``, the scrape itself left out), measured over the same window:

1. per endpoint class (static asset, catalog page, catalog read, login, submit, status), each
   class alone, a few threads of keep-alive clients in this process;
2. overall, the mixed workload of every persona and level (the load suite, open model), at a
   quiet hall's rate (40/s: each request wakes an idle process, the dearest case per request)
   and at 100/s, the per-hall rate of the lab's measurement (100-200/s over two halls).

Costs are ms of CPU per request (a unit that carries over to other machines); the machine's 2
cores are shared by the app, PostgreSQL and the load generator, so its throughput is not the
figure. PostgreSQL's CPU per request of the same window is shown beside it, and with
``BENCH_HALL_COSTS=FILE`` the figures are written as a costs file for the capacity plan.
The checks: at the lab's per-hall rate the shipped hall's overall cost is at most half of
the 4.1 ms the lab measured before (README, "CPU per request"); at both rates it is below the
baseline measured in this run. ``mixed_*_without_logins`` takes the logins out at the login
class's cost: a run has few logins, so the whole figure moves with their count;
``mixed_*_ms_main_thread`` is the CPU of the app's main thread alone (everything but the
password hashing, which runs in the executor's threads), per request.

To compare with other code and closer to the lab (environment variables):

- ``BENCH_HALL_BEFORE=REV``: the "before" hall is the hall's code at git revision REV, driven
  by the suite as it ships (``*_ratio_to_before``: this tree's over REV's, per class and mixed);
- ``BENCH_HALL_DB_TLS=1``: PostgreSQL serves TLS and the halls verify it (``HALL_DB_CA``), as
  the lab's pods reach their database;
- ``BENCH_HALL_PYTHON=PATH``: the halls run on that interpreter, e.g. Debian's ``python3`` with
  bookworm's aiohttp 3.8 and asyncpg 0.27 (and uvloop), as the image runs them.
"""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Result
from clusters.apps.hall.devserver import LocalHall, LocalPostgres, http_json

BEFORE_MS = 4.1  # the app's CPU per request of the mixed workload measured on the lab before
GOAL = 0.5  # at most half of it
SCRYPT_N = str(1 << 14)  # the production strength (the dev server's default is lower)
#: requests/s offered by the load suite (open model): a quiet hall, where every request wakes an
#: idle process (the dearest case per request), and the per-hall rate of the lab's measurement
#: (100-200 requests/s over two halls)
MIXED_RATES = (40.0, 100.0)
LAB_RATE = 100.0  # the goal is checked at the rate comparable to the lab's measurement
MIXED_SECONDS = 30
THREADS = 4
ROUNDS = 2
#: requests per class (a login costs a scrypt, so fewer)
COUNTS = {"static": 1500, "page": 500, "catalog": 1000, "login": 40, "submit": 400, "status": 800}


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU of a process (all its threads) from /proc/<pid>/stat, or of one of
    its threads (``thread``: its id; the main thread's is the pid)."""
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    raw = Path(stat).read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_COUNTER = re.compile(r'^hall_http_requests_total\{route="([^"]+)",[^}]*\} (\d+)$', re.M)


def served(hall: LocalHall) -> int:
    """Requests the hall has served (its own counter), the metrics scrapes left out."""
    status, text = http_json("GET", hall.url + "/metrics", token=hall.admin_token)
    assert status == 200, text
    return sum(int(n) for route, n in _COUNTER.findall(text) if route != "metrics")


def postgres_cpu(pg: LocalPostgres) -> dict[int, float]:
    """CPU of the local cluster's processes (the postmaster and its children) by pid: backends
    that ended meanwhile are not counted (the pools keep theirs for the whole run)."""
    pidfile = pg.root / "data" / "postmaster.pid"
    master = int(pidfile.read_text().split()[0])
    out: dict[int, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(proc.name) == master or int(fields[1]) == master:
            out[int(proc.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


class Meter:
    """The hall's CPU and requests over a window."""

    def __init__(self, hall: LocalHall) -> None:
        assert hall.proc is not None
        self.hall = hall
        self.pid = hall.proc.pid
        self.db = 0.0

    def __enter__(self) -> Meter:
        self.requests0 = served(self.hall)
        self.db0 = postgres_cpu(self.hall.pg)
        self.cpu0 = cpu_seconds(self.pid)
        self.main0 = cpu_seconds(self.pid, self.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = cpu_seconds(self.pid) - self.cpu0
        self.main = cpu_seconds(self.pid, self.pid) - self.main0
        db1 = postgres_cpu(self.hall.pg)
        self.db = sum(v - self.db0.get(pid, 0.0) for pid, v in db1.items())
        self.requests = served(self.hall) - self.requests0

    @property
    def ms_per_request(self) -> float:
        return 1000 * self.cpu / max(1, self.requests)


#: the hall's code before this work (issue 15, part 5), run beside the others when the repository
#: has it: the "before" figures (the old code with the former suite's sessions)
BEFORE_REV = "86e624ce1c72767a8b8bd7e59f0091d5ef14e4fd"
OLD_COMMAND = (sys.executable, "-m", "hall")
BEFORE_ENV, TLS_ENV, PYTHON_ENV = "BENCH_HALL_BEFORE", "BENCH_HALL_DB_TLS", "BENCH_HALL_PYTHON"


def before_package(tmp: Path, rev: str = BEFORE_REV) -> Path | None:
    """The hall package as of ``rev``, extracted under ``tmp`` (importable as ``hall``), or
    None where git or that commit is not at hand (the baseline figures still stand)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", rev, "clusters/apps/hall"],
            capture_output=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    out = tmp / "before"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(out, filter="data")
    (out / "clusters" / "apps" / "hall").rename(out / "hall")
    return out


def serve_tls(pg: LocalPostgres) -> str:
    """PostgreSQL serves TLS with a certificate for 127.0.0.1 from a CA made here; the CA's
    certificate (PEM), for the halls' HALL_DB_CA."""
    from govcloud.toolchain import pki as files

    ca_key, ca = files.make_ca("bench root")
    key, cert = files.issue(
        ca_key, ca, files.CertRequest("db", "db", ip_addresses=("127.0.0.1",), server=True)
    )
    pg.serve_tls(files.cert_pem(cert), files.key_pem(key))
    return files.cert_pem(ca).decode()


# -- the endpoint classes, each driven alone -----------------------------------------------------

Request = tuple[str, str, bytes | None, dict[str, str]]


class Fixture:
    """What the class drivers need from one hall: a site, its items, an account, its cases."""

    def __init__(self, hall: LocalHall, site: str) -> None:
        self.site = site
        status, page = http_json("GET", f"{hall.url}/api/sites/{site}/items?limit=100")
        assert status == 200 and page["items"], page
        self.items = [i["code"] for i in page["items"]]
        self.online = [i["code"] for i in page["items"] if i["online"]] or self.items
        self.login = f"bench-{random.getrandbits(40):010x}"
        self.password = "bench-password-1"
        status, body = http_json(
            "POST",
            hall.url + "/api/accounts",
            {"kind": "citizen", "login": self.login, "name": "压测", "password": self.password},
        )
        assert status == 201, body
        self.token = body["token"]
        self.cases = []
        for item in self.online[:10]:
            status, body = http_json(
                "POST", hall.url + "/api/cases", {"item": item, "form": {}}, self.token
            )
            assert status == 201, body
            self.cases.append(body["code"])
        status, html = http_json("GET", f"{hall.url}/sites/{site}")
        assert status == 200
        self.assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
        assert self.assets, "the page refers to no asset"

    def request(self, cls: str) -> Request:
        bearer = {"Authorization": f"Bearer {self.token}"}
        json_type = {"Content-Type": "application/json"}
        if cls == "static":
            return "GET", random.choice(self.assets), None, {}
        if cls == "page":
            if random.random() < 0.5:
                return "GET", f"/sites/{self.site}?page={random.randint(1, 2)}", None, {}
            return "GET", f"/items/{random.choice(self.items)}", None, {}
        if cls == "catalog":
            if random.random() < 0.5:
                off = random.randrange(0, 40)
                return "GET", f"/api/sites/{self.site}/items?offset={off}", None, {}
            return "GET", f"/api/items/{random.choice(self.items)}", None, {}
        if cls == "login":
            body = json.dumps({"login": self.login, "password": self.password}).encode()
            return "POST", "/api/login", body, json_type
        if cls == "submit":
            body = json.dumps(
                {"item": random.choice(self.online), "form": {"note": "申请"}}, ensure_ascii=False
            ).encode()
            return "POST", "/api/cases", body, {**bearer, **json_type}
        if cls == "status":
            return "GET", f"/api/cases/{random.choice(self.cases)}", None, bearer
        raise ValueError(cls)


def drive(port: int, make: Callable[[], Request], count: int, threads: int = THREADS) -> int:
    """``count`` requests over ``threads`` keep-alive connections; returns the failures."""
    left = [count]
    failures = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                method, path, body, headers = make()
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status >= 400:
                    with lock:
                        failures[0] += 1
        finally:
            conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return failures[0]


def by_class(
    halls: dict[str, LocalHall], fixtures: dict[str, Fixture]
) -> dict[str, dict[str, float]]:
    """Each class alone on each hall, the halls taking turns, ``ROUNDS`` times; the lowest cost
    of each (the least disturbed by the rest of the machine)."""
    out: dict[str, dict[str, float]] = {name: {} for name in halls}
    for _ in range(ROUNDS):
        for cls, count in COUNTS.items():
            for name, hall in halls.items():
                fixture = fixtures[name]

                def make(c: str = cls, f: Fixture = fixture) -> Request:
                    return f.request(c)

                # logins one at a time, as they come (four scrypts at once on two cores would
                # cost more each, and the mixed figure without logins subtracts this cost)
                threads = 1 if cls == "login" else THREADS
                drive(hall.port, make, max(4, count // 10), threads)  # warm up
                with Meter(hall) as m:
                    failed = drive(hall.port, make, count, threads)
                assert failed == 0, f"{name} {cls}: {failed} of {count} requests failed"
                best = out[name].get(cls)
                out[name][cls] = round(min(best or m.ms_per_request, m.ms_per_request), 3)
    return out


# -- the mixed workload: the load suite ---------------------------------------------------------


def mixed(hall: LocalHall, spec: Any, tmp: Path, sessions: str, rate: float) -> dict[str, Any]:
    """The load suite's mixed workload against one hall: its CPU per request served."""
    from loadtests.run import (
        RunOptions,
        _run_locust,
        build_config,
        issue_tokens,
        prefill_backlog,
        register_accounts,
    )

    report = tmp / f"mixed-{hall.port}-{sessions}-{rate:g}"
    report.mkdir()
    opts = RunOptions(
        spec=spec,
        profile="soak",
        target=hall.url,
        rate=rate,
        duration=f"{MIXED_SECONDS}s",
        report_dir=report,
        echo=lambda _t: None,
        locust_output=False,
    )
    cfg = build_config(opts, [hall.url], report)
    cfg.points = [(0.0, 1.0), (1.0, 1.0)]  # the rate held from the first second
    ready: dict[str, str | None] = {hall.url: None}
    cfg.tokens = issue_tokens(cfg.url_of, cfg.sites, hall.admin_token, cfg.personas, ready)
    prefill_backlog(cfg.url_of, cfg.sites, ready)
    cfg.accounts = register_accounts([hall.url], ready, {"citizen": 20, "enterprise": 20})
    old = os.environ.get("GOVCLOUD_LOADTEST_SESSIONS")
    os.environ["GOVCLOUD_LOADTEST_SESSIONS"] = sessions
    try:
        with Meter(hall) as m:
            _run_locust(cfg, report, opts)
    finally:
        if old is None:
            os.environ.pop("GOVCLOUD_LOADTEST_SESSIONS", None)
        else:
            os.environ["GOVCLOUD_LOADTEST_SESSIONS"] = old
    gate = json.loads((report / "gate.json").read_text(encoding="utf-8"))
    failures = sum(f["failures"] for f in gate["levels"].values())
    from loadtests.capacity import endpoint_class

    logins = 0
    counts: dict[str, int] = {}
    with open(report / "stats_stats.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name, n = row["Name"], int(row["Request Count"])
            if name == "Aggregated":
                continue
            if ("/login" in name and "POST" in name) or "/api/accounts" in name:
                logins += n  # a password checked or hashed (a login form's GET is not)
            cls = endpoint_class(name)
            if cls is not None:
                counts[cls] = counts.get(cls, 0) + n
    return {
        "main_ms": round(1000 * m.main / max(1, m.requests), 3),
        "db_ms": round(1000 * m.db / max(1, m.requests), 3),
        "class_counts": counts,
        "ms": round(m.ms_per_request, 3),
        "cpu_s": m.cpu,
        "requests": m.requests,
        "logins": logins,
        "failures": failures,
        "login_share": round(logins / max(1, m.requests), 4),
    }


def without_logins(mix: dict[str, Any], login_ms: float) -> float:
    """The mixed workload's cost with its logins (and registrations) taken out at the cost the
    login class measured: the rest of the mix, steadier than the whole (a run has few logins)."""
    rest = 1000 * mix["cpu_s"] - mix["logins"] * login_ms
    return round(max(0.0, rest) / max(1, mix["requests"] - mix["logins"]), 3)


def run_bench() -> Result:
    from clusters.hallseed import seed_plan
    from govcloud.spec import load_spec
    from govcloud.spec.load import LAB_SPEC
    from loadtests.run import sample_sites, sites_by_level

    spec = load_spec(LAB_SPEC)
    sites = sample_sites(sites_by_level(spec), 20)
    keep = {c for codes in sites.values() for c in codes}
    plan = seed_plan(spec)
    plan["sites"] = [
        s for s in plan["sites"] if s["code"] in keep or any(k.startswith(s["code"]) for k in keep)
    ]
    county = sites["county"][0]
    python = os.environ.get(PYTHON_ENV) or sys.executable
    before_rev = os.environ.get(BEFORE_ENV) or BEFORE_REV
    # the former code with the former suite's sessions; another revision with the suite's own
    before_sessions = "per-task" if before_rev == BEFORE_REV else "reuse"
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pg = LocalPostgres().start()
        halls: dict[str, LocalHall] = {}
        try:
            common = {"HALL_SCRYPT_N": SCRYPT_N, "HALL_DB_POOL": "10"}
            if os.environ.get(TLS_ENV) == "1":
                common["HALL_DB_CA"] = serve_tls(pg)
            here = (python, *LocalHall.command[1:])
            variants: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
                ("baseline", {"HALL_READ_CACHE_S": "0"}, here),
                ("shipped", {}, here),
            ]
            old = before_package(tmp, before_rev)
            if old is not None:  # the hall as it was before this work, from the repository
                variants.append(("before", {"PYTHONPATH": str(old)}, (python, *OLD_COMMAND[1:])))
            for name, extra, command in variants:
                hall = LocalHall(
                    pg,
                    extra_env={
                        **common,
                        **extra,
                        "HALL_ACCESS_LOG": str(tmp / f"access-{name}.jsonl"),
                    },
                    command=command,
                )
                if not halls:
                    hall.seed(plan)
                halls[name] = hall.start()
            fixtures = {n: Fixture(h, county) for n, h in halls.items()}
            classes = by_class(halls, fixtures)
            mix: dict[float, dict[str, dict[str, Any]]] = {}
            for rate in MIXED_RATES:
                mix[rate] = {
                    "baseline": mixed(halls["baseline"], spec, tmp, "per-task", rate),
                    "shipped": mixed(halls["shipped"], spec, tmp, "reuse", rate),
                }
                # the former code at the lab's rate; another revision at every rate, in the
                # same order as the shipped hall (whose read cache the first rate warms)
                if "before" in halls and (rate == LAB_RATE or before_rev != BEFORE_REV):
                    mix[rate]["before"] = mixed(halls["before"], spec, tmp, before_sessions, rate)
        finally:
            for h in halls.values():
                h.stop()
            pg.stop()
    figures: dict[str, float | int | str] = {"cores": os.cpu_count() or 0}
    if before_rev != BEFORE_REV:
        figures["before_rev"] = before_rev
    for cls in COUNTS:
        before, after = classes["baseline"][cls], classes["shipped"][cls]
        figures[f"{cls}_ms_baseline"] = before
        figures[f"{cls}_ms"] = after
        figures[f"{cls}_ratio"] = round(after / before, 3) if before else "n/a"
        if "before" in classes:
            prior = classes["before"][cls]
            figures[f"{cls}_ms_before"] = prior
            figures[f"{cls}_ratio_to_before"] = round(after / prior, 3) if prior else "n/a"
    checks: dict[str, bool] = {}
    failures = 0
    for rate, runs in mix.items():
        base, ship = runs["baseline"], runs["shipped"]
        at = f"mixed_{rate:g}rps"
        figures.update(
            {
                f"{at}_ms_baseline": base["ms"],
                f"{at}_ms": ship["ms"],
                f"{at}_ratio": round(ship["ms"] / base["ms"], 3) if base["ms"] else "n/a",
                f"{at}_ratio_to_lab_before": round(ship["ms"] / BEFORE_MS, 3),
                f"{at}_ms_without_logins_baseline": without_logins(
                    base, classes["baseline"]["login"]
                ),
                f"{at}_ms_without_logins": without_logins(ship, classes["shipped"]["login"]),
                f"{at}_ms_main_thread_baseline": base["main_ms"],
                f"{at}_ms_main_thread": ship["main_ms"],
                f"{at}_requests_baseline": base["requests"],
                f"{at}_requests": ship["requests"],
                f"{at}_login_share_baseline": base["login_share"],
                f"{at}_login_share": ship["login_share"],
            }
        )
        failures += base["failures"] + ship["failures"]
        if "before" in runs:
            was = runs["before"]
            figures[f"{at}_ms_before"] = was["ms"]
            figures[f"{at}_ratio_to_before"] = round(ship["ms"] / was["ms"], 3)
            figures[f"{at}_ms_without_logins_before"] = without_logins(
                was, classes["before"]["login"]
            )
            figures[f"{at}_ms_main_thread_before"] = was["main_ms"]
            figures[f"{at}_main_thread_ratio_to_before"] = round(
                ship["main_ms"] / was["main_ms"], 3
            )
            failures += was["failures"]
            if before_rev == BEFORE_REV:
                checks[
                    f"mixed workload at {rate:g}/s: at most {GOAL:.0%} of the former hall's cost"
                    " measured in the same run"
                ] = ship["ms"] <= GOAL * was["ms"]
        if rate == LAB_RATE:
            checks[
                f"mixed workload at {rate:g}/s: at most {GOAL:.0%} of {BEFORE_MS} ms of app CPU"
                " per request"
            ] = ship["ms"] <= GOAL * BEFORE_MS
        checks[f"mixed workload at {rate:g}/s: below the baseline of the same run"] = (
            ship["ms"] < base["ms"]
        )
    figures["mixed_failures"] = failures
    ship = mix[LAB_RATE]["shipped"]
    figures["postgresql_ms"] = ship["db_ms"]
    out = os.environ.get(COSTS_ENV)
    if out:
        write_costs(Path(out), classes["shipped"], ship)
        figures["costs_file"] = out
    checks["catalog reads cheaper than the baseline's"] = (
        classes["shipped"]["catalog"] < classes["baseline"]["catalog"]
    )
    checks["no failed request in the mixed runs"] = failures == 0
    return Result("hall CPU per request (local)", figures, checks)


COSTS_ENV = "BENCH_HALL_COSTS"


def write_costs(path: Path, by_cls: dict[str, float], ship: dict[str, Any]) -> None:
    """The measured costs as a costs file for ``govcloud loadtest capacity --costs`` and the
    load-test report (``costs.json`` in its directory): the shipped hall's mixed figure at the
    lab's per-hall rate, its classes with their shares of that run, PostgreSQL's figure."""
    from loadtests.capacity import CLASSES, costs_document

    total = sum(ship["class_counts"].values()) or 1
    doc = costs_document(
        at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        where="local hall and PostgreSQL on loopback (devserver), bench hall_cpu, "
        f"{os.cpu_count()} cores shared with the load generator",
        hall_ms=ship["ms"],
        classes={c: by_cls[c] for c in CLASSES},
        shares={c: round(ship["class_counts"].get(c, 0) / total, 4) for c in CLASSES},
        postgresql_ms=ship["db_ms"],
        workload=f"mixed: every persona and level, open model {LAB_RATE:g}/s",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def run() -> Result:
    return run_bench()
