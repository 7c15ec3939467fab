"""The SLO gate: per level, p95, p99 and the error ratio against the level's thresholds.

Checked for each level as a whole (all its endpoints merged) and for each endpoint of the level
that saw at least ``min_requests`` requests, so a breach names the level and the endpoint. Locust
has no such gate; the locustfile calls :func:`evaluate` in a ``quitting`` listener and sets
``environment.process_exit_code`` from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from locust.stats import RequestStats, StatsEntry

from loadtests.config import LEVELS, LevelSlo


@dataclass
class Breach:
    level: str
    endpoint: str | None  # None: the level as a whole
    metric: str  # p95_ms, p99_ms, error_ratio, requests
    value: float
    limit: float
    requests: int

    def __str__(self) -> str:
        where = (
            f"{self.level} · {self.endpoint}" if self.endpoint else f"{self.level} (all endpoints)"
        )
        if self.metric == "error_ratio":
            what = f"error ratio {self.value:.2%} > {self.limit:.2%}"
        elif self.metric == "requests":
            what = "no requests were made"
        else:
            what = f"{self.metric[:3]} {self.value:.0f} ms > {self.limit:.0f} ms"
        return f"{where}: {what} (n={self.requests})"


@dataclass
class GateResult:
    ok: bool
    breaches: list[Breach] = field(default_factory=list)
    levels: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    #: page loads, their static assets and API calls, each kind over all levels
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "breaches": [{**asdict(b), "text": str(b)} for b in self.breaches],
            "levels": self.levels,
            "endpoints": self.endpoints,
            "kinds": self.kinds,
        }

    def summary(self) -> str:
        if self.ok:
            return "SLO gate passed: every level within its p95, p99 and error-ratio limits"
        lines = [f"SLO gate FAILED ({len(self.breaches)} breach(es)):"]
        lines += [f"  - {b}" for b in self.breaches]
        return "\n".join(lines)


def level_of(name: str) -> str | None:
    if name.startswith("["):
        end = name.find("]")
        if end > 0 and name[1:end] in LEVELS:
            return name[1:end]
    return None


KINDS = ("page", "asset", "api")


def kind_of(endpoint: str) -> str:
    """``PAGE GET /sites/{site}`` is a page load, ``ASSET GET /static/...`` a static asset a
    page uses, anything else (``GET /api/...``) an API call."""
    head = endpoint.split(" ", 1)[0]
    return {"PAGE": "page", "ASSET": "asset"}.get(head, "api")


def _figures(e: StatsEntry) -> dict[str, Any]:
    n = e.num_requests
    return {
        "requests": n,
        "failures": e.num_failures,
        "error_ratio": round(e.num_failures / n, 6) if n else 0.0,
        "p50_ms": e.get_response_time_percentile(0.5) if n else 0,
        "p95_ms": e.get_response_time_percentile(0.95) if n else 0,
        "p99_ms": e.get_response_time_percentile(0.99) if n else 0,
        "rps": round(e.total_rps, 2),
    }


def _check(level: str, endpoint: str | None, fig: dict[str, Any], slo: LevelSlo) -> list[Breach]:
    out = []
    n = fig["requests"]
    if fig["error_ratio"] > slo.error_ratio:
        out.append(Breach(level, endpoint, "error_ratio", fig["error_ratio"], slo.error_ratio, n))
    # a request that failed at once (refused connection) has no meaningful latency
    if fig["failures"] < n:
        if fig["p95_ms"] > slo.p95_ms:
            out.append(Breach(level, endpoint, "p95_ms", fig["p95_ms"], slo.p95_ms, n))
        if fig["p99_ms"] > slo.p99_ms:
            out.append(Breach(level, endpoint, "p99_ms", fig["p99_ms"], slo.p99_ms, n))
    return out


def evaluate(stats: RequestStats, slo: dict[str, LevelSlo], min_requests: int = 50) -> GateResult:
    merged: dict[str, StatsEntry] = {}
    kinds: dict[str, StatsEntry] = {}
    per_endpoint: list[tuple[str, str, StatsEntry]] = []
    for (name, _method), entry in stats.entries.items():
        level = level_of(name)
        if level is None:
            continue
        endpoint = name[name.find("]") + 2 :]
        if level not in merged:
            merged[level] = StatsEntry(stats, level, "", use_response_times_cache=False)
        merged[level].extend(entry)
        kind = kind_of(endpoint)
        if kind not in kinds:
            kinds[kind] = StatsEntry(stats, kind, "", use_response_times_cache=False)
        kinds[kind].extend(entry)
        per_endpoint.append(
            (level, endpoint, entry)  # the name carries the method already
        )

    result = GateResult(ok=True)
    result.kinds = {k: _figures(kinds[k]) for k in KINDS if k in kinds}
    total = sum(e.num_requests for e in merged.values())
    if total == 0:
        result.breaches.append(Breach("all", None, "requests", 0, 1, 0))
    for level in LEVELS:
        if level not in merged:
            continue
        fig = _figures(merged[level])
        limit = slo[level]
        result.levels[level] = {**fig, "slo": asdict(limit)}
        result.breaches += _check(level, None, fig, limit)
    for level, endpoint, entry in sorted(per_endpoint, key=lambda x: (LEVELS.index(x[0]), x[1])):
        fig = _figures(entry)
        result.endpoints.append({"level": level, "endpoint": endpoint, **fig})
        if fig["requests"] >= min_requests:
            result.breaches += _check(level, endpoint, fig, slo[level])
    # a level-wide breach with no endpoint named: name the worst endpoint of that level
    named = {b.level for b in result.breaches if b.endpoint}
    for b in list(result.breaches):
        if b.endpoint is None and b.level not in named and b.metric != "requests":
            eps = [e for e in result.endpoints if e["level"] == b.level]
            if eps:
                key = "error_ratio" if b.metric == "error_ratio" else b.metric
                worst = max(eps, key=lambda e: e[key])
                result.breaches.append(
                    Breach(
                        b.level, worst["endpoint"], b.metric, worst[key], b.limit, worst["requests"]
                    )
                )
    result.ok = not result.breaches
    return result
