"""Run a load test end to end: resolve the target, issue staff tokens, write the configuration,
run locust in a subprocess (``--processes`` for local workers), read the gate, write the report.

Locust runs in its own process because it monkey-patches the standard library with gevent at
import; the CLI process stays a plain Python program and renders the charts afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govcloud.errors import InputError, OperationError, Problem
from govcloud.spec.model import LEVELS, Slo, Spec
from loadtests.config import (
    CONFIG_ENV,
    PERSONAS,
    LevelSlo,
    RunConfig,
    parse_duration,
    read_profiles,
    resolve_points,
)
from loadtests.tlsclient import install, parse_resolve, tls_context

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_REPO = Path(__file__).resolve().parents[1]
ADMIN_TOKEN_ENV = "GOVCLOUD_HALL_ADMIN_TOKEN"
STAFF_PERSONA_ROLES = {
    "clerk": ["clerk", "backoffice"],
    "kiosk": ["kiosk"],
    "hotline": ["hotline"],
}


@dataclass
class RunOptions:
    spec: Spec
    profile: str = "workday"
    target: str = "local"
    users: int | None = None
    rate: float | None = None
    duration: str | None = None
    report_dir: Path | None = None
    processes: int = 1
    slo: list[str] = field(default_factory=list)
    level_mix: str | None = None
    surge_factor: float | None = None
    admin_token: str | None = None
    source: str | None = None  # lab target: the probe the load comes from (loadtests.labsource)
    sites_per_level: int = 20
    think: str = "1-3"
    min_requests: int = 50
    max_sessions: int = 1000
    accounts: int = 20  # accounts per kind registered before the run
    resolve: list[str] = field(default_factory=list)  # NAME:ADDRESS (https targets by name)
    ca_file: Path | None = None  # the CA of https targets (lab: the cloud's PKI root)
    echo: Callable[[str], None] = print
    locust_output: bool = True


# -- parsing the command line's values --------------------------------------------------------


def parse_slo(items: list[str], base: dict[str, LevelSlo]) -> dict[str, LevelSlo]:
    """``p95=300``, ``county:p99=800``, ``village:err=0.02`` (err, error, error_ratio)."""
    out = {lv: LevelSlo(**vars(s)) for lv, s in base.items()}
    keys = {"p95": "p95_ms", "p99": "p99_ms", "err": "error_ratio", "error": "error_ratio"}
    keys |= {"p95_ms": "p95_ms", "p99_ms": "p99_ms", "error_ratio": "error_ratio"}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            levels: list[str] = list(out)
            body = part
            if ":" in part:
                lv, body = part.split(":", 1)
                if lv not in out:
                    raise InputError(
                        [
                            Problem(
                                "--slo",
                                f'unknown level "{lv}" in "{part}"; use one of {", ".join(out)}',
                            )
                        ]
                    )
                levels = [lv]
            key, eq, raw = body.partition("=")
            if not eq or key not in keys:
                raise InputError(
                    [
                        Problem(
                            "--slo", f'expected [level:]p95=MS, p99=MS or err=RATIO, got "{part}"'
                        )
                    ]
                )
            try:
                value = float(raw)
            except ValueError:
                raise InputError([Problem("--slo", f'not a number: "{raw}" in "{part}"')]) from None
            if value < 0 or (keys[key] == "error_ratio" and value > 1):
                raise InputError([Problem("--slo", f'out of range: "{part}"')])
            for lv in levels:
                setattr(out[lv], keys[key], value)
    return out


def parse_mix(text: str | None, base: dict[str, float]) -> dict[str, float]:
    if not text:
        mix = dict(base)
    else:
        mix = dict.fromkeys(base, 0.0)
        for part in text.split(","):
            lv, eq, raw = part.strip().partition("=")
            if not eq or lv not in mix:
                raise InputError(
                    [
                        Problem(
                            "--level-mix",
                            f'expected level=weight for the five levels, got "{part}"',
                        )
                    ]
                )
            try:
                mix[lv] = float(raw)
            except ValueError:
                raise InputError([Problem("--level-mix", f'not a number: "{raw}"')]) from None
            if mix[lv] < 0:
                raise InputError([Problem("--level-mix", f'negative weight: "{part}"')])
    total = sum(mix.values())
    if total <= 0:
        raise InputError([Problem("--level-mix", "every level has weight 0")])
    return {lv: w / total for lv, w in mix.items()}


def parse_think(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition("-")
    try:
        a, b = float(lo), float(hi or lo)
    except ValueError:
        raise InputError(
            [Problem("--think", f'expected seconds "MIN-MAX", got "{text}"')]
        ) from None
    if a < 0 or b < a:
        raise InputError([Problem("--think", f'expected 0 <= MIN <= MAX, got "{text}"')])
    return a, b


# -- sites and targets ---------------------------------------------------------------------------


def sites_by_level(spec: Spec) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {lv.value: [] for lv in LEVELS}
    for pcode, province in spec.regions.items():
        out["province"].append(pcode)
        for city in province.cities:
            out["city"].append(city.code)
            for county in city.counties:
                out["county"].append(county.code)
                for township in county.townships:
                    out["township"].append(township.code)
                    out["village"] += [v.code for v in township.villages]
    return out


def sample_sites(all_sites: dict[str, list[str]], per_level: int) -> dict[str, list[str]]:
    rnd = random.Random(9)
    return {
        lv: sorted(codes if len(codes) <= per_level else rnd.sample(codes, per_level))
        for lv, codes in all_sites.items()
    }


@dataclass(frozen=True)
class LabTargets:
    urls: list[str]  # https://<edge's own name>, one per hall host
    resolve: dict[str, str]  # those names' addresses (no DNS on the machine knows them)
    ca_file: str  # the cloud's PKI root, which the edges' certificates chain to


def lab_targets(spec: Spec) -> LabTargets:
    """The lab's hall hosts (role "hall"), each by its own name over HTTPS, as their
    certificates say (security.pki.hostcerts)."""
    from infra.plan import make_plan
    from security.pki.hostcerts import edge_certs
    from security.pki.root import RootPaths

    certs = edge_certs(spec, make_plan(spec).hosts)
    if not certs:
        raise InputError(
            [Problem("datacenter.hosts", 'no host with role "hall": the lab has no hall to test')]
        )
    return LabTargets(
        [f"https://{c.stem}" for c in certs],
        {c.stem: c.address for c in certs},
        str(RootPaths.default().cert),
    )


def _ready(url: str) -> str | None:
    from clusters.apps.hall.devserver import http_json

    try:
        status, body = http_json("GET", url + "/readyz", timeout=3)
    except OSError as exc:
        return f"unreachable ({getattr(exc, 'reason', exc)})"
    if status != 200:
        return f"not ready: {body}"
    return None


@contextlib.contextmanager
def _devserver_errors() -> Iterator[None]:
    """The dev server's own error (the hall package stands alone) as an operation error."""
    from clusters.apps.hall.devserver import DevServerError

    try:
        yield
    except DevServerError as exc:
        raise OperationError(str(exc)) from exc


@contextlib.contextmanager
def local_hall(
    spec: Spec, sites: dict[str, list[str]], echo: Callable[[str], None]
) -> Iterator[Any]:
    """A throwaway PostgreSQL and hall on loopback, seeded with the sampled sites' catalog."""
    from clusters.apps.hall.devserver import LocalHall, LocalPostgres
    from clusters.hallseed import seed_plan

    plan = seed_plan(spec)
    keep = {c for codes in sites.values() for c in codes}
    plan["sites"] = [s for s in plan["sites"] if s["code"] in keep or _ancestor(s["code"], keep)]
    echo(
        "starting a local PostgreSQL and hall (seeding "
        f"{sum(sum(b['count'] for b in s['items']) for s in plan['sites'])} guides)"
    )
    with _devserver_errors():
        pg = LocalPostgres().start()
    hall = None
    try:
        with _devserver_errors():
            hall = LocalHall(pg, extra_env={"HALL_ACCESS_LOG": "off"})
            hall.seed(plan)
            hall.start()
        yield hall
    finally:
        if hall is not None:
            hall.stop()
        pg.stop()


def _ancestor(code: str, keep: set[str]) -> bool:
    return any(k.startswith(code) and k != code for k in keep)


def issue_tokens(
    targets_of: Callable[[str], str],
    sites: dict[str, list[str]],
    admin_token: str,
    personas: dict[str, float],
    ready: dict[str, str | None],
) -> dict[str, dict[str, str]]:
    from clusters.apps.hall.devserver import http_json

    tokens: dict[str, dict[str, str]] = {}
    wanted = [p for p in STAFF_PERSONA_ROLES if personas.get(p, 0) > 0]
    for codes in sites.values():
        for site in codes:
            url = targets_of(site)
            if ready.get(url):
                continue
            for persona in wanted:
                status, body = http_json(
                    "POST",
                    url + "/api/admin/staff-tokens",
                    {
                        "staff": f"loadtest-{persona}-{site}",
                        "site": site,
                        "roles": STAFF_PERSONA_ROLES[persona],
                        "days": 1,
                    },
                    token=admin_token,
                )
                if status != 201:
                    raise OperationError(
                        f"{url}: cannot issue a {persona} token for site {site}: {status} {body}"
                    )
                tokens.setdefault(site, {})[persona] = body["token"]
    return tokens


REGISTER_ATTEMPTS = 3
GATEWAY_ERRORS = (502, 503, 504)


def register_accounts(
    targets: list[str], ready: dict[str, str | None], per_kind: dict[str, int]
) -> dict[str, list[dict[str, str]]]:
    """Accounts for the citizen and enterprise sessions, registered before the clock starts.
    Each hall has its own accounts, so they are spread over the live targets and each carries
    the ``url`` of its hall (a session takes one of its own hall's). A gateway's error (the
    edge lost the pod that was answering) is tried again, as a citizen would, under a new
    login: the first may have been stored without its answer."""
    import secrets

    from clusters.apps.hall.devserver import http_json

    live = [u for u in targets if not ready.get(u)]
    accounts: dict[str, list[dict[str, str]]] = {}
    for kind, n in per_kind.items():
        for i in range(max(n, len(live)) if live else 0):
            url = live[i % len(live)]
            for attempt in range(1, REGISTER_ATTEMPTS + 1):
                login, password = f"lt-{secrets.token_hex(6)}", secrets.token_urlsafe(12)
                status, body = http_json(
                    "POST",
                    url + "/api/accounts",
                    {"kind": kind, "login": login, "name": "压测用户", "password": password},
                )
                if status not in GATEWAY_ERRORS or attempt == REGISTER_ATTEMPTS:
                    break
                time.sleep(1.0)
            if status != 201:
                raise OperationError(f"{url}: cannot register a {kind} account: {status} {body}")
            accounts.setdefault(kind, []).append(
                {"login": login, "password": password, "token": body["token"], "url": url}
            )
    return accounts


def prefill_backlog(
    url_of: Callable[[str], str],
    sites: dict[str, list[str]],
    ready: dict[str, str | None],
    per_site: int = 3,
) -> int:
    """File a few applications at every sampled site before the run, so window clerks have a
    queue from the first second (a hall always has one). Returns how many were filed."""
    import secrets

    from clusters.apps.hall.devserver import http_json

    tokens: dict[str, str] = {}
    filed = 0
    for codes in sites.values():
        for site in codes:
            url = url_of(site)
            if ready.get(url):
                continue
            if url not in tokens:
                status, body = http_json(
                    "POST",
                    url + "/api/accounts",
                    {
                        "login": f"backlog-{secrets.token_hex(6)}",
                        "name": "压测积压件申请人",
                        "password": secrets.token_urlsafe(16),
                    },
                )
                if status != 201:
                    raise OperationError(f"{url}: cannot register the backlog account: {body}")
                tokens[url] = body["token"]
            status, page = http_json("GET", f"{url}/api/sites/{site}/items?limit={per_site}")
            if status != 200:
                raise OperationError(f"{url}: no catalog for site {site}: {status} {page}")
            for item in page["items"]:
                status, body = http_json(
                    "POST", url + "/api/cases", {"item": item["code"]}, tokens[url]
                )
                if status != 201:
                    raise OperationError(f"{url}: cannot file a backlog case: {status} {body}")
                filed += 1
    return filed


# -- the run ------------------------------------------------------------------------------------


def build_config(opts: RunOptions, targets: list[str], report_dir: Path) -> RunConfig:
    profiles = read_profiles()
    if opts.profile not in profiles["profiles"]:
        raise InputError(
            [
                Problem(
                    "--profile",
                    f'unknown profile "{opts.profile}"; known: {", ".join(profiles["profiles"])}',
                )
            ]
        )
    prof = profiles["profiles"][opts.profile]
    if opts.users is not None and opts.rate is not None:
        raise InputError([Problem("--users/--rate", "give one: --users (closed) or --rate (open)")])
    if opts.users is not None and opts.users < 1:
        raise InputError([Problem("--users", "expected at least 1")])
    if opts.rate is not None and opts.rate <= 0:
        raise InputError([Problem("--rate", "expected a rate above 0 requests/s")])
    try:
        duration = parse_duration(opts.duration or str(prof.get("default_duration", "60s")))
    except ValueError as exc:
        raise InputError([Problem("--duration", str(exc))]) from None
    if duration < 2:
        raise InputError([Problem("--duration", "at least 2 s")])
    if opts.processes < 1:
        raise InputError([Problem("--processes", "expected at least 1")])
    load = opts.spec.load
    surge = opts.surge_factor if opts.surge_factor is not None else load.surge_factor
    slo_base = {lv.value: LevelSlo(**load.slo.get(lv, Slo()).model_dump()) for lv in LEVELS}
    persona_weights = {p: float(profiles.get("personas", {}).get(p, 0)) for p in PERSONAS}
    all_sites = sites_by_level(opts.spec)
    sites = sample_sites(all_sites, opts.sites_per_level)
    mix = parse_mix(opts.level_mix, {lv.value: load.level_mix.get(lv, 0.0) for lv in LEVELS})
    missing = [lv for lv, w in mix.items() if w > 0 and not sites.get(lv)]
    if missing:
        raise InputError(
            [Problem("load.level_mix", f"levels {missing} have weight but the spec has no sites")]
        )
    return RunConfig(
        profile=opts.profile,
        points=resolve_points(prof["points"], surge),
        duration_s=duration,
        mode="rate" if opts.rate is not None else "users",
        peak=float(opts.rate if opts.rate is not None else (opts.users or 20)),
        targets=targets,
        sites=sites,
        level_mix=mix,
        personas=persona_weights,
        slo=parse_slo(opts.slo, slo_base),
        processes=opts.processes,
        think_s=parse_think(opts.think),
        min_requests=opts.min_requests,
        max_sessions=opts.max_sessions,
        report_dir=str(report_dir),
    )


def _run_locust(cfg: RunConfig, report_dir: Path, opts: RunOptions) -> int:
    config_path = report_dir / "config.json"
    config_path.write_text(cfg.to_json(), encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--html",
        str(report_dir / "locust.html"),
        "--csv",
        str(report_dir / "stats"),
        "--stop-timeout",
        "3",
        "--loglevel",
        "WARNING",
        "-H",
        cfg.targets[0],
    ]
    if cfg.processes > 1:
        cmd += ["--processes", str(cfg.processes)]
    env = dict(os.environ)
    env[CONFIG_ENV] = str(config_path)
    env["PYTHONPATH"] = str(_REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = None if opts.locust_output else subprocess.DEVNULL
    log = open(report_dir / "locust.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=out or log, stderr=log, start_new_session=True)
    try:
        return proc.wait(timeout=cfg.duration_s + 90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise OperationError(
            f"locust did not stop within {cfg.duration_s + 90:.0f} s; see {report_dir}/locust.log"
        ) from None
    finally:
        log.close()


def run(opts: RunOptions) -> dict[str, Any]:
    """Run one load test; return the verdict, the figures and where the report is."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report_dir = opts.report_dir or Path("loadtest-reports") / f"{opts.profile}-{stamp}"
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("gate.json", "timeline.json"):
        (report_dir / stale).unlink(missing_ok=True)
    # validate everything before starting anything
    build_config(opts, ["http://placeholder"], report_dir)

    replicas: dict[str, Any] = {}  # the hall's replicas over the run (lab target, on the cloud)
    resolve = parse_resolve(opts.resolve)
    ca_file = str(opts.ca_file) if opts.ca_file else None
    if ca_file:
        tls_context(ca_file)  # a bad CA file is refused before anything starts
    with contextlib.ExitStack() as stack:
        admin = opts.admin_token or os.environ.get(ADMIN_TOKEN_ENV)
        if opts.target == "local":
            cfg0 = build_config(opts, ["http://placeholder"], report_dir)
            hall = stack.enter_context(local_hall(opts.spec, cfg0.sites, opts.echo))
            targets = [hall.url]
            admin = hall.admin_token
        elif opts.target == "lab":
            from loadtests.labsource import lab_admin_token, load_source
            from loadtests.replicas import hall_watch

            lab = lab_targets(opts.spec)
            targets, resolve, ca_file = lab.urls, {**lab.resolve, **resolve}, lab.ca_file
            watch = hall_watch(opts.spec)  # started here, on the operators' side
            if watch is not None:
                watch.start()
                stack.callback(lambda: replicas.update(watch.stop()))
            # from here on, this thread and every process it starts are on a hall LAN
            stack.enter_context(load_source(opts.spec, opts.source, opts.echo))
            admin = admin or lab_admin_token()
        elif opts.target.startswith(("http://", "https://")):
            targets = [u.strip().rstrip("/") for u in opts.target.split(",") if u.strip()]
        else:
            raise InputError(
                [Problem("--target", f'expected local, lab or http(s)://URL, got "{opts.target}"')]
            )
        stack.callback(install(resolve, ca_file))
        cfg = build_config(opts, targets, report_dir)
        cfg.resolve, cfg.ca_file = resolve, ca_file
        ready = {url: _ready(url) for url in targets}
        for url, why in ready.items():
            if why:
                opts.echo(f"warning: {url} is {why}; running anyway (the gate will judge)")
        needs_staff = any(cfg.personas.get(p, 0) > 0 for p in STAFF_PERSONA_ROLES)
        if needs_staff and not admin and any(not why for why in ready.values()):
            raise InputError(
                [
                    Problem(
                        "--admin-token",
                        f"the clerk, kiosk and hotline personas need staff tokens: pass the hall's "
                        f"admin token (HALL_ADMIN_TOKEN on the hosts) with --admin-token or "
                        f"${ADMIN_TOKEN_ENV}",
                    )
                ]
            )
        if needs_staff and admin:
            cfg.tokens = issue_tokens(cfg.url_of, cfg.sites, admin, cfg.personas, ready)
        if cfg.personas.get("clerk", 0) > 0:
            prefill_backlog(cfg.url_of, cfg.sites, ready)
        cfg.accounts = register_accounts(
            targets,
            ready,
            {k: opts.accounts for k in ("citizen", "enterprise") if cfg.personas.get(k, 0) > 0},
        )
        mode = (
            f"open model, peak {cfg.peak:g} requests/s"
            if cfg.mode == "rate"
            else f"closed model, peak {cfg.peak:g} users"
        )
        opts.echo(
            f"running {cfg.profile} for {cfg.duration_s:g} s against {', '.join(targets)} "
            f"({mode}, top of the curve x{max(v for _, v in cfg.points):g}, "
            f"{cfg.processes} process(es))"
        )
        started = time.time()
        rc = _run_locust(cfg, report_dir, opts)
        wall = time.time() - started

    gate_path = report_dir / "gate.json"
    if not gate_path.exists():
        tail = (report_dir / "locust.log").read_text(errors="replace")[-1500:]
        raise OperationError(f"locust exited with {rc} without a verdict; its log ends:\n{tail}")
    gate = json.loads(gate_path.read_text(encoding="utf-8"))
    from loadtests.report import write_report

    meta = {
        "profile": cfg.profile,
        "targets": ", ".join(targets),
        "model": mode,
        "duration_s": cfg.duration_s,
        "processes": cfg.processes,
        "level mix": ", ".join(f"{k} {v:.0%}" for k, v in cfg.level_mix.items()),
        "sites per level": ", ".join(f"{k} {len(v)}" for k, v in cfg.sites.items()),
        "slo": {k: vars(v) for k, v in cfg.slo.items()},
    }
    served = json.loads((report_dir / "timeline.json").read_text(encoding="utf-8")).get(
        "served_by", {}
    )
    if served:
        meta["served by"] = ", ".join(f"{k} {v}" for k, v in served.items())
    if replicas:
        (report_dir / "replicas.json").write_text(json.dumps(replicas), encoding="utf-8")
        meta["hall replicas"] = f"{replicas['min']}-{replicas['max']} ({replicas['deployment']})"
    page = write_report(report_dir, meta)
    totals = {
        "requests": sum(f["requests"] for f in gate["levels"].values()),
        "failures": sum(f["failures"] for f in gate["levels"].values()),
    }
    return {
        "ok": bool(gate["ok"]) and rc == 0,
        "locust_exit": rc,
        "breaches": [b["text"] for b in gate["breaches"]],
        "levels": gate["levels"],
        "requests": totals["requests"],
        "failures": totals["failures"],
        "rps": round(totals["requests"] / cfg.duration_s, 1),
        "wall_s": round(wall, 1),
        "served_by": served,  # the hall replicas that answered (their X-Served-By), requests
        "replicas": replicas,  # the hall's replicas over the run, sampled from the API server
        "report": str(page),
        "report_dir": str(report_dir),
    }


__all__ = ["RunOptions", "parse_slo", "run"]
