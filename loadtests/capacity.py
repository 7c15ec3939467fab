"""The capacity plan: the cores, hall replicas and nodes the halls of each level need to hold the
deadline surge, from the measured CPU cost of a request and the spec's load.

Three inputs:

1. **CPU per request** (milliseconds of CPU), per tier: the hall app (as one mixed figure, or per
   endpoint class with each class's share of the workload), PostgreSQL, the edge's nginx, and
   locust (the load generator: not part of the server, shown for the lab that drives the load).
   Built in: :data:`DEFAULT_COSTS`, measured on the lab. A benchmark writes a costs file that
   overrides it (the format is :func:`parse_costs`'s docstring).
2. **The load**: the daily peak in requests/s (given, as ``loadtest run --rate`` takes it, or
   from the spec: residents × requests per resident a day, averaged over the day, × the spec's
   ``load.peak_factor``), the top of the ``surge`` profile (``load.surge_factor``), split over
   the levels by ``load.level_mix``. The surge multiple and the level mix come from the load
   suite's own functions (:func:`loadtests.config.resolve_points`, :func:`loadtests.run.parse_mix`),
   so the plan and ``loadtest run`` mean the same load.
3. **Sizes**: the CPU of one hall replica (the hall app spec's limit), the target utilisation of
   every tier (headroom, so latency holds), the cores of a node.

Sizing at a level: the tiers' cores are ``rate × ms / 1000 / utilisation``. A hall replica is one
process (aiohttp's event loop), so it uses at most :data:`REPLICA_PROCESS_CORES` of its limit;
it is given ``min(utilisation × its capacity, the rate it holds at the level's p95)`` requests/s
(:func:`held_rate`), and the level gets enough replicas for the surge, at least the app spec's
minimum. Nodes host the hall replicas (their full CPU limit) and PostgreSQL; the edge's nginx runs
on the edge hosts in the internet-access zone, counted apart. No spare node for a node failure is
included.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from govcloud.errors import InputError, Problem

#: endpoint classes of the hall; a costs file that gives the hall per class gives every one
CLASSES = ("static", "page", "catalog", "login", "submit", "status")
CLASS_HELP = {
    "static": "static files a page uses",
    "page": "server-rendered HTML pages (GET)",
    "catalog": "catalog, guide and site reads of the API",
    "login": "log in and register (scrypt)",
    "submit": "writes: apply, supplement, rate, clerks' case actions",
    "status": "progress, my cases, the clerks' queue",
}
#: the tiers a request crosses; locust is the load generator, not part of the server
TIERS = ("hall", "postgresql", "nginx", "locust")
COSTS_FORMAT = "govcloud-cpu-costs"
#: the hall runs one process per replica: it cannot use more than one core, whatever its limit
REPLICA_PROCESS_CORES = 1.0
DEFAULT_UTILISATION = 0.6
DEFAULT_NODE_CORES = 8
DEFAULT_REPLICA_CPU = 0.5
#: requests per resident a day, all levels and channels of the online hall: Guangdong's 粤省事
#: served 5.18 million queries and transactions a day (July 2023) for 126.01 million residents
#: (2020 census), 0.041 a day; one query or transaction is counted as one request of the mixed
#: workload.
DEFAULT_PER_RESIDENT_DAY = 0.041
HALL_APP_SPEC = Path(__file__).resolve().parents[1] / "clusters" / "apps" / "hall" / "app.yaml"
SECONDS_PER_DAY = 86_400


# -- costs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassCost:
    ms: float  # CPU milliseconds per request of this class
    share: float  # the class's share of the workload's requests (normalised)


@dataclass(frozen=True)
class Costs:
    """CPU milliseconds per request of the mixed workload, per tier, and where they come from."""

    hall_ms: float
    postgresql_ms: float
    nginx_ms: float
    locust_ms: float | None
    measured_at: str
    measured_where: str
    source: str  # "built-in" or the file
    workload: str = ""
    classes: dict[str, ClassCost] = field(default_factory=dict)

    @property
    def server_ms(self) -> float:
        return self.hall_ms + self.postgresql_ms + self.nginx_ms

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["classes"] = {k: asdict(v) for k, v in self.classes.items()}
        out["server_ms"] = round(self.server_ms, 4)
        return out


#: today's figures: the lab's two hall hosts under the mixed workload (issue 9's bench, README)
DEFAULT_COSTS = Costs(
    hall_ms=4.1,
    postgresql_ms=0.85,
    nginx_ms=0.3,
    locust_ms=1.4,
    measured_at="2026-11-23",
    measured_where="the lab's hall hosts hall-1 and hall-2 (2 cores shared with locust), "
    "bench loadtest_lab",
    source="built-in",
    workload="mixed: every persona and level, open model",
)


@dataclass(frozen=True)
class TlsCost:
    """What TLS costs the edge's nginx, CPU microseconds per request (bench edge_tls)."""

    http_us: float  # plain HTTP, keep-alive
    https_us: float  # HTTPS, keep-alive
    new_connection_us: float  # HTTPS, a full handshake for every request
    handshakes_per_core_s: float
    measured_at: str
    measured_where: str

    @property
    def keepalive_ratio(self) -> float:
        return self.https_us / self.http_us

    @property
    def new_connection_ratio(self) -> float:
        return self.new_connection_us / self.http_us


#: `python -m bench edge_tls` (README, "Service certificates"), in one run: the same nginx, the
#: same upstream, HTTP against HTTPS
EDGE_TLS = TlsCost(
    http_us=47.5,
    https_us=65.0,
    new_connection_us=693.0,
    handshakes_per_core_s=1712,
    measured_at="2026-12-01",
    measured_where="bench edge_tls: a real nginx on loopback with the edge's TLS snippet and a "
    "certificate of the PKI's kind, the edge worker's own CPU",
)


def _positive(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(
            [Problem(where, f"expected a number of CPU milliseconds, got {value!r}", source)],
            title="invalid costs file",
        )
    if not math.isfinite(value) or value <= 0:
        raise InputError(
            [Problem(where, f"expected a cost above 0 ms, got {value!r}", source)],
            title="invalid costs file",
        )
    return float(value)


def _tier(data: dict[str, Any], tier: str, source: str, required: bool = True) -> float | None:
    def bad(where: str, message: str) -> InputError:
        return InputError([Problem(where, message, source)], title="invalid costs file")

    entry = data.get(tier)
    if entry is None:
        if required:
            raise bad(tier, 'missing: expected {"ms": CPU milliseconds per request}')
        return None
    if not isinstance(entry, dict) or "ms" not in entry:
        raise bad(tier, 'expected {"ms": CPU milliseconds per request}')
    return _positive(entry["ms"], f"{tier}.ms", source)


def parse_costs(data: Any, source: str) -> Costs:
    """A costs file's content, checked. The format (JSON)::

        {
          "format": "govcloud-cpu-costs",
          "version": 1,
          "measured": {"at": "2026-11-23T10:00:00Z", "where": "lab, hall pods (cgroup cpuacct)",
                       "workload": "workday, mixed"},
          "hall": {"ms": 2.0,
                   "classes": {"static":  {"ms": 0.4, "share": 0.09},
                               "page":    {"ms": 3.1, "share": 0.21},
                               "catalog": {"ms": 1.9, "share": 0.30},
                               "login":   {"ms": 48.0, "share": 0.02},
                               "submit":  {"ms": 6.0, "share": 0.12},
                               "status":  {"ms": 2.2, "share": 0.26}}},
          "postgresql": {"ms": 0.85},
          "nginx": {"ms": 0.3},
          "locust": {"ms": 1.4}
        }

    Milliseconds of CPU per request, all above 0. ``hall.ms`` is the mixed workload's figure,
    the one the plan sizes with. ``hall.classes``, when given, has every class of
    :data:`CLASSES` (the names bench hall_cpu measures; :func:`endpoint_class` sorts the load
    suite's requests into them), each with its ``ms`` and optionally its ``share`` of the
    measured workload's requests (>= 0, normalised here). Without ``hall.ms`` the mixed figure
    is the classes' mean weighted by their shares, so then every class needs a share.
    ``locust`` is optional. ``measured.at`` and ``measured.where`` are
    required: a figure is only as good as where it was measured.
    """

    def bad(where: str, message: str) -> InputError:
        return InputError([Problem(where, message, source)], title="invalid costs file")

    if not isinstance(data, dict):
        raise bad("", "expected a JSON object (format, version, measured, hall, postgresql, nginx)")
    if data.get("format") != COSTS_FORMAT:
        raise bad("format", f'expected "{COSTS_FORMAT}", got {data.get("format")!r}')
    if data.get("version") != 1:
        raise bad("version", f"expected 1, got {data.get('version')!r}")
    measured = data.get("measured")
    if not isinstance(measured, dict):
        raise bad("measured", 'missing: expected {"at": WHEN, "where": WHERE}')
    for key in ("at", "where"):
        if not isinstance(measured.get(key), str) or not measured[key].strip():
            raise bad(f"measured.{key}", "missing: say when and where the figures were measured")
    unknown = set(data) - {"format", "version", "measured", "unit", "note", *TIERS}
    if unknown:
        raise bad(sorted(unknown)[0], f"unknown field; known: {', '.join(TIERS)}")

    hall = data.get("hall")
    if not isinstance(hall, dict) or not ({"ms", "classes"} & set(hall)):
        raise bad("hall", 'missing: expected {"ms": X} or {"classes": {CLASS: {"ms", "share"}}}')
    classes: dict[str, ClassCost] = {}
    shares_given = True
    if "classes" in hall:
        raw = hall["classes"]
        if not isinstance(raw, dict):
            raise bad("hall.classes", "expected an object: class → {ms, share}")
        for name in CLASSES:
            entry = raw.get(name)
            if entry is None:
                raise bad(
                    f"hall.classes.{name}",
                    f"missing class ({CLASS_HELP[name]}); every class is needed: "
                    f"{', '.join(CLASSES)}",
                )
            if not isinstance(entry, dict):
                raise bad(f"hall.classes.{name}", 'expected {"ms": X, "share": S}')
            ms = _positive(entry.get("ms"), f"hall.classes.{name}.ms", source)
            share = entry.get("share")
            if share is None:
                shares_given = False
                share = 0.0
            elif (
                isinstance(share, bool)
                or not isinstance(share, int | float)
                or not math.isfinite(share)
                or share < 0
            ):
                raise bad(f"hall.classes.{name}.share", f"expected a share >= 0, got {share!r}")
            classes[name] = ClassCost(ms, float(share))
        extra = set(raw) - set(CLASSES)
        if extra:
            raise bad(
                f"hall.classes.{sorted(extra)[0]}", f"unknown class; known: {', '.join(CLASSES)}"
            )
        total = sum(c.share for c in classes.values())
        if total > 0:
            classes = {k: ClassCost(c.ms, c.share / total) for k, c in classes.items()}
        else:
            shares_given = False
    if "ms" in hall:
        mixed = _positive(hall["ms"], "hall.ms", source)
    elif not shares_given:
        missing = next((k for k, c in classes.items() if c.share == 0), CLASSES[0])
        raise bad(
            f"hall.classes.{missing}.share",
            "missing: without hall.ms the mixed figure is the classes' mean weighted by their "
            "shares (give every class its share > 0 in total, or give hall.ms)",
        )
    else:
        mixed = sum(c.ms * c.share for c in classes.values())
    pg = _tier(data, "postgresql", source)
    nginx = _tier(data, "nginx", source)
    assert pg is not None and nginx is not None
    return Costs(
        hall_ms=mixed,
        postgresql_ms=pg,
        nginx_ms=nginx,
        locust_ms=_tier(data, "locust", source, required=False),
        measured_at=measured["at"],
        measured_where=measured["where"],
        source=source,
        workload=str(measured.get("workload", "")),
        classes=classes,
    )


def load_costs(path: Path | None) -> Costs:
    """The costs file at ``path`` (bad input names the file and field), or the built-in figures."""
    if path is None:
        return DEFAULT_COSTS
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(
            [Problem("", f"cannot read: {reason}", str(path))], title="invalid costs file"
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(
            [Problem("", f"not JSON: {exc}", str(path))], title="invalid costs file"
        ) from None
    return parse_costs(data, str(path))


def costs_document(
    *,
    at: str,
    where: str,
    hall_ms: float,
    classes: dict[str, float] | None = None,
    shares: dict[str, float] | None = None,
    postgresql_ms: float | None = None,
    nginx_ms: float | None = None,
    locust_ms: float | None = None,
    workload: str = "",
) -> dict[str, Any]:
    """A costs file's content, for a benchmark to write (``json.dump``) and ``--costs`` to read.
    Tiers the benchmark did not measure take the built-in figures, and the document says so."""
    borrowed: list[str] = []
    if postgresql_ms is None:
        postgresql_ms, borrowed = DEFAULT_COSTS.postgresql_ms, [*borrowed, "postgresql"]
    if nginx_ms is None:
        nginx_ms, borrowed = DEFAULT_COSTS.nginx_ms, [*borrowed, "nginx"]
    hall: dict[str, Any] = {"ms": hall_ms}
    if classes:
        hall["classes"] = {
            k: {"ms": v, **({"share": shares[k]} if shares and k in shares else {})}
            for k, v in classes.items()
        }
    doc: dict[str, Any] = {
        "format": COSTS_FORMAT,
        "version": 1,
        "unit": "ms CPU per request",
        "measured": {"at": at, "where": where, "workload": workload},
        "hall": hall,
        "postgresql": {"ms": postgresql_ms},
        "nginx": {"ms": nginx_ms},
    }
    if locust_ms is not None:
        doc["locust"] = {"ms": locust_ms}
    if borrowed:
        doc["note"] = (
            f"{', '.join(borrowed)}: not measured here, the built-in figures "
            f"({DEFAULT_COSTS.measured_where}, {DEFAULT_COSTS.measured_at})"
        )
    return doc


def endpoint_class(name: str) -> str | None:
    """The class of a locust request name (``[county] PAGE GET /sites/{site}``), as the costs
    file counts them; None for what is not a request to the hall (dropped arrivals)."""
    from loadtests.gate import kind_of, level_of

    endpoint = name.split("] ", 1)[1] if level_of(name) else name
    kind = kind_of(endpoint)
    parts = endpoint.split()
    if len(parts) < 2 or parts[0] == "ARRIVAL" or "(dropped arrival)" in endpoint:
        return None
    method, path = (parts[1], parts[2]) if kind in ("page", "asset") else (parts[0], parts[1])
    if kind == "asset":
        return "static"
    if path in ("/login", "/api/login", "/api/accounts", "/register"):
        return "login"
    if method == "POST":
        return "submit"
    if kind == "page":
        return "page"
    if path.startswith(("/api/cases/", "/api/my/", "/api/staff/")):
        return "status"
    return "catalog"


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Demand:
    """The daily peak and the surge, in requests/s, and how they split over the levels."""

    peak_rps: float  # the daily peak, every level
    surge_multiple: float  # the top of the surge profile against the peak
    level_mix: dict[str, float]  # normalised
    basis: str  # how the peak was found
    population: int | None = None
    per_resident_day: float | None = None
    peak_factor: float | None = None
    sites: dict[str, int] = field(default_factory=dict)

    @property
    def surge_rps(self) -> float:
        return self.peak_rps * self.surge_multiple

    @property
    def daily_requests(self) -> float | None:
        if self.population is None or self.per_resident_day is None:
            return None
        return self.population * self.per_resident_day

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["surge_rps"] = round(self.surge_rps, 2)
        out["daily_requests"] = self.daily_requests
        return out


def population_of(site: Any) -> int | None:
    """A site's residents: its own figure, else the sum of its children's (None if none known)."""
    if site.population is not None:
        return int(site.population)
    children = (
        getattr(site, "cities", None)
        or getattr(site, "counties", None)
        or getattr(site, "townships", None)
        or getattr(site, "villages", None)
        or []
    )
    known = [p for p in (population_of(c) for c in children) if p is not None]
    return sum(known) if known else None


def surge_multiple(surge_factor: float) -> float:
    """The top of the ``surge`` profile (profiles.yaml), ``surge`` resolved to the factor."""
    from loadtests.config import PROFILES_FILE, read_profiles, resolve_points

    try:
        profiles = read_profiles()
    except ValueError as exc:
        raise InputError([Problem("", str(exc), str(PROFILES_FILE))]) from None
    surge = profiles["profiles"].get("surge")
    if surge is None:
        return surge_factor
    return max(v for _, v in resolve_points(surge["points"], surge_factor))


def spec_demand(
    spec: Any,
    *,
    rate: float | None = None,
    per_resident_day: float = DEFAULT_PER_RESIDENT_DAY,
    surge_factor: float | None = None,
    level_mix: str | None = None,
) -> Demand:
    """The spec's load: ``rate`` (the daily peak in requests/s, as ``loadtest run --rate``)
    or residents × ``per_resident_day`` / 86,400 × ``load.peak_factor``."""
    from govcloud.spec.model import LEVELS
    from loadtests.run import parse_mix, sites_by_level

    load = spec.load
    if rate is not None and (not math.isfinite(rate) or rate <= 0):
        raise InputError([Problem("--rate", "expected a rate above 0 requests/s")])
    if not math.isfinite(per_resident_day) or per_resident_day <= 0:
        raise InputError([Problem("--per-resident", "expected requests per resident above 0")])
    if surge_factor is not None and not (math.isfinite(surge_factor) and surge_factor >= 1):
        raise InputError([Problem("--surge-factor", "expected a factor of at least 1")])
    mix = parse_mix(level_mix, {lv.value: load.level_mix.get(lv, 0.0) for lv in LEVELS})
    sites = {lv: len(codes) for lv, codes in sites_by_level(spec).items()}
    missing = [lv for lv, w in mix.items() if w > 0 and not sites.get(lv)]
    if missing:
        raise InputError(
            [Problem("load.level_mix", f"levels {missing} have weight but the spec has no sites")]
        )
    multiple = surge_multiple(surge_factor if surge_factor is not None else load.surge_factor)
    if rate is not None:
        return Demand(
            peak_rps=float(rate),
            surge_multiple=multiple,
            level_mix=mix,
            basis="the daily peak given (--rate)",
            sites=sites,
        )
    counts = {code: population_of(p) for code, p in spec.regions.items()}
    unknown = [code for code, n in counts.items() if n is None]
    if unknown:
        raise InputError(
            [
                Problem(
                    f"regions.{unknown[0]}.population",
                    "no population at any level of this province: give the daily peak with --rate",
                )
            ]
        )
    population = sum(n for n in counts.values() if n is not None)
    peak = population * per_resident_day / SECONDS_PER_DAY * load.peak_factor
    return Demand(
        peak_rps=peak,
        surge_multiple=multiple,
        level_mix=mix,
        basis="residents × requests per resident a day / 86,400 × load.peak_factor",
        population=population,
        per_resident_day=per_resident_day,
        peak_factor=load.peak_factor,
        sites=sites,
    )


# -- sizing -------------------------------------------------------------------------------------


def held_rate(
    replicas: int,
    replica_cpu: float,
    hall_ms: float,
    p95_ms: float,
    *,
    quantile: float = 0.95,
    process_cores: float = REPLICA_PROCESS_CORES,
) -> float:
    """Requests/s that ``replicas`` hall replicas of ``replica_cpu`` cores each hold with the
    ``quantile`` of the response time within ``p95_ms``: the prediction a lab bench compares with
    what it measured.

    Each replica is a single queue (one process; the load balancer spreads requests evenly)
    serving ``μ = min(replica_cpu, process_cores) × 1000 / hall_ms`` requests/s. With Poisson
    arrivals and exponential service (M/M/1), the response time is exponential with rate
    ``μ − λ``, so its ``q`` quantile is ``ln(1/(1−q)) / (μ − λ)``; the rate that keeps it within
    ``T`` is ``λ = μ − ln(1/(1−q)) / T`` (0 when the replica cannot meet ``T`` at all). Only the
    hall's CPU is modelled: time in PostgreSQL and on the network is taken to fit in the SLO's
    slack, and PostgreSQL and the edge are taken to have room.
    """
    if replicas < 0:
        raise ValueError("replicas must be >= 0")
    if replica_cpu <= 0 or hall_ms <= 0 or p95_ms <= 0 or not 0 < quantile < 1:
        raise ValueError("replica_cpu, hall_ms, p95_ms must be > 0 and quantile within (0, 1)")
    mu = min(replica_cpu, process_cores) * 1000.0 / hall_ms
    per_replica = max(0.0, mu - math.log(1.0 / (1.0 - quantile)) / (p95_ms / 1000.0))
    return replicas * per_replica


def replica_rate(replica_cpu: float, hall_ms: float, utilisation: float, p95_ms: float) -> float:
    """The requests/s one replica is planned for: its capacity at the target utilisation, or
    less when the SLO's queueing bound (:func:`held_rate`) is tighter."""
    capacity = min(replica_cpu, REPLICA_PROCESS_CORES) * 1000.0 / hall_ms
    return min(utilisation * capacity, held_rate(1, replica_cpu, hall_ms, p95_ms))


@dataclass
class Sizes:
    utilisation: float = DEFAULT_UTILISATION
    replica_cpu: float = DEFAULT_REPLICA_CPU
    replica_cpu_source: str = "default"
    min_replicas: int = 2
    node_cores: int = DEFAULT_NODE_CORES
    node_cores_source: str = "default"
    pool_vcpus: int | None = None  # the spec's compute pool, to compare with


@dataclass
class LevelPlan:
    level: str
    share: float
    sites: int | None
    peak_rps: float
    surge_rps: float
    p95_ms: float
    replica_rps: float  # what one replica is planned to serve
    hall_cores: float  # CPU the hall needs at the target utilisation
    hall_replicas: int
    hall_allocated_cores: float  # replicas × their CPU limit
    postgresql_cores: float
    nginx_cores: float
    locust_cores: float | None
    node_cores: float  # hall allocated + PostgreSQL: what the worker nodes host
    nodes: int  # if this level's tiers had nodes of their own

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Plan:
    demand: Demand
    costs: Costs
    sizes: Sizes
    levels: list[LevelPlan]
    total: LevelPlan
    edge_hosts: int
    prediction: dict[str, Any]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "demand": self.demand.as_dict(),
            "costs": self.costs.as_dict(),
            "sizes": asdict(self.sizes),
            "levels": [lp.as_dict() for lp in self.levels],
            "total": self.total.as_dict(),
            "edge_hosts": self.edge_hosts,
            "prediction": self.prediction,
            "notes": self.notes,
        }


def _nodes(cores: float, node_cores: int, replicas: int) -> int:
    if cores <= 0:
        return 0
    # replicas spread over at least two nodes, so one lost node leaves the hall serving
    return max(math.ceil(cores / node_cores - 1e-9), min(replicas, 2))


def plan_capacity(
    demand: Demand, costs: Costs, sizes: Sizes, p95_ms: dict[str, float] | None = None
) -> Plan:
    """Size every level for its share of the surge, and the whole for the sum."""
    if not 0 < sizes.utilisation <= 1:
        raise InputError([Problem("--utilisation", "expected a fraction within (0, 1]")])
    if sizes.replica_cpu <= 0:
        raise InputError([Problem("--replica-cpu", "expected CPU above 0")])
    if sizes.node_cores < 1:
        raise InputError([Problem("--node-cores", "expected at least 1 core")])
    if sizes.node_cores < sizes.replica_cpu:
        why = f"a node of {sizes.node_cores} cores cannot hold a replica of {sizes.replica_cpu:g}"
        raise InputError([Problem("--node-cores", why)])
    u = sizes.utilisation
    p95 = p95_ms or {}
    levels: list[LevelPlan] = []
    notes: list[str] = []
    for level, share in demand.level_mix.items():
        peak = demand.peak_rps * share
        surge = peak * demand.surge_multiple
        slo = p95.get(level, 500.0)
        per_replica = replica_rate(sizes.replica_cpu, costs.hall_ms, u, slo)
        if surge > 0 and per_replica <= 0:
            raise InputError(
                [
                    Problem(
                        "--replica-cpu",
                        f"a replica of {sizes.replica_cpu:g} CPU cannot answer {level} within "
                        f"its p95 of {slo:g} ms at {costs.hall_ms:g} ms CPU per request",
                    )
                ]
            )
        replicas = (
            max(sizes.min_replicas, math.ceil(surge / per_replica - 1e-9)) if surge > 0 else 0
        )
        allocated = replicas * sizes.replica_cpu
        pg = surge * costs.postgresql_ms / 1000 / u
        on_nodes = allocated + pg
        levels.append(
            LevelPlan(
                level=level,
                share=share,
                sites=demand.sites.get(level),
                peak_rps=peak,
                surge_rps=surge,
                p95_ms=slo,
                replica_rps=per_replica,
                hall_cores=surge * costs.hall_ms / 1000 / u,
                hall_replicas=replicas,
                hall_allocated_cores=allocated,
                postgresql_cores=pg,
                nginx_cores=surge * costs.nginx_ms / 1000 / u,
                locust_cores=(
                    surge * costs.locust_ms / 1000 / u if costs.locust_ms is not None else None
                ),
                node_cores=on_nodes,
                nodes=_nodes(on_nodes, sizes.node_cores, replicas),
            )
        )
    replicas = sum(lp.hall_replicas for lp in levels)
    on_nodes = sum(lp.node_cores for lp in levels)
    surge_total = sum(lp.surge_rps for lp in levels)
    total = LevelPlan(
        level="total",
        share=sum(lp.share for lp in levels),
        sites=sum(lp.sites or 0 for lp in levels),
        peak_rps=sum(lp.peak_rps for lp in levels),
        surge_rps=surge_total,
        p95_ms=min((lp.p95_ms for lp in levels if lp.surge_rps > 0), default=500.0),
        replica_rps=min((lp.replica_rps for lp in levels if lp.surge_rps > 0), default=0.0),
        hall_cores=sum(lp.hall_cores for lp in levels),
        hall_replicas=replicas,
        hall_allocated_cores=sum(lp.hall_allocated_cores for lp in levels),
        postgresql_cores=sum(lp.postgresql_cores for lp in levels),
        nginx_cores=sum(lp.nginx_cores for lp in levels),
        locust_cores=(
            sum(lp.locust_cores or 0.0 for lp in levels) if costs.locust_ms is not None else None
        ),
        node_cores=on_nodes,
        nodes=_nodes(on_nodes, sizes.node_cores, replicas),
    )
    edge_hosts = math.ceil(total.nginx_cores / sizes.node_cores - 1e-9) if total.nginx_cores else 0
    if sizes.replica_cpu > REPLICA_PROCESS_CORES:
        notes.append(
            f"a replica is one process and uses at most {REPLICA_PROCESS_CORES:g} core: a limit "
            f"of {sizes.replica_cpu:g} reserves CPU it cannot use"
        )
    if sizes.pool_vcpus:
        notes.append(
            f"the worker nodes' {total.node_cores:.1f} cores are "
            f"{total.node_cores / sizes.pool_vcpus:.1%} of the compute pool's "
            f"{sizes.pool_vcpus} vCPUs"
        )
    notes.append(
        "nodes: the hall replicas (at their CPU limit) and PostgreSQL; the edge's nginx is on "
        "the edge hosts; no spare node for a node failure is included (add one)"
    )
    prediction = {
        "model": "M/M/1 per replica, hall CPU only (loadtests.capacity.held_rate)",
        "replica_cpu": sizes.replica_cpu,
        "hall_ms": costs.hall_ms,
        "p95_ms": total.p95_ms,
        "held_rps": {
            str(n): round(held_rate(n, sizes.replica_cpu, costs.hall_ms, total.p95_ms), 1)
            for n in (1, 2)
        },
    }
    return Plan(demand, costs, sizes, levels, total, edge_hosts, prediction, notes)


def hall_replica_cpu(app: Any, source: str) -> float:
    """The CPU limit of one hall replica in the hall's app spec (its request when no limit)."""
    from clusters.deploy.spec import cpu_millis

    r = app.resources
    value = r.cpu_limit if r.cpu_limit is not None else r.cpu
    try:
        return cpu_millis(value) / 1000
    except ValueError as exc:
        where = "resources.cpu_limit" if r.cpu_limit is not None else "resources.cpu"
        raise InputError([Problem(where, str(exc), source)], title="invalid app spec") from None


def spec_sizes(
    spec: Any,
    *,
    utilisation: float = DEFAULT_UTILISATION,
    replica_cpu: float | None = None,
    node_cores: int | None = None,
    app_spec: Path = HALL_APP_SPEC,
) -> Sizes:
    """Sizes from the spec and the hall's app spec, each overridable: a node has the compute
    pool's vCPUs over its compute hosts (else 8); a replica the hall app's CPU limit."""
    from govcloud.spec.model import HostRole

    pool = spec.datacenter.pools.compute
    computes = [h for h in spec.datacenter.hosts if h.role == HostRole.COMPUTE]
    if node_cores is not None:
        cores, cores_src = node_cores, "--node-cores"
    elif computes:
        cores = max(1, pool.vcpus // len(computes))
        cores_src = f"compute pool: {pool.vcpus} vCPUs / {len(computes)} compute hosts"
    else:
        cores, cores_src = DEFAULT_NODE_CORES, "default (no compute hosts in the spec)"
    from clusters.deploy.spec import load_app

    app: Any = None
    try:
        app = load_app(app_spec)
    except InputError:
        if replica_cpu is None:
            raise  # the replica's CPU comes from it: say what is wrong with it
    if replica_cpu is not None:
        cpu, cpu_src = replica_cpu, "--replica-cpu"
    else:
        cpu, cpu_src = hall_replica_cpu(app, str(app_spec)), "the hall's app spec (resources)"
    min_replicas = 2
    if app is not None:
        min_replicas = max(1, app.autoscale.min if app.autoscale else app.replicas)
    return Sizes(
        utilisation=utilisation,
        replica_cpu=cpu,
        replica_cpu_source=cpu_src,
        min_replicas=min_replicas,
        node_cores=cores,
        node_cores_source=cores_src,
        pool_vcpus=pool.vcpus,
    )


def spec_slo_p95(spec: Any) -> dict[str, float]:
    from govcloud.spec.model import LEVELS, Slo

    return {lv.value: spec.load.slo.get(lv, Slo()).p95_ms for lv in LEVELS}


__all__ = [
    "CLASSES",
    "DEFAULT_COSTS",
    "Costs",
    "Demand",
    "Plan",
    "Sizes",
    "costs_document",
    "endpoint_class",
    "held_rate",
    "load_costs",
    "parse_costs",
    "plan_capacity",
    "spec_demand",
    "spec_sizes",
]
