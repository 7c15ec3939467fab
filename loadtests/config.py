"""The run configuration handed from ``govcloud loadtest run`` to the locust processes.

Plain data (JSON in the file named by ``$GOVCLOUD_LOADTEST_CONFIG``), so the locustfile needs
neither the spec model nor the CLI, and workers forked by ``--processes`` read the same file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "GOVCLOUD_LOADTEST_CONFIG"
PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
LEVELS = ("province", "city", "county", "township", "village")
PERSONAS = ("citizen", "enterprise", "kiosk", "clerk", "hotline")


@dataclass
class LevelSlo:
    p95_ms: float
    p99_ms: float
    error_ratio: float


@dataclass
class RunConfig:
    profile: str
    points: list[tuple[float, float]]  # (t fraction, multiple of the peak), "surge" resolved
    duration_s: float
    mode: str  # "users" (closed) or "rate" (open)
    peak: float  # peak users, or peak requests per second
    targets: list[str]  # base URLs; a site's hall is targets[hash(site) % len]
    sites: dict[str, list[str]]  # level -> site codes
    level_mix: dict[str, float]
    personas: dict[str, float]
    slo: dict[str, LevelSlo]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # site -> persona -> token
    #: accounts registered before the run, per kind: [{"login", "password", "token", "url"}, ...]
    accounts: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    processes: int = 1
    think_s: tuple[float, float] = (1.0, 3.0)
    min_requests: int = 50  # an endpoint is gated alone from this many requests
    max_sessions: int = 1000  # open model: sessions per process before arrivals are dropped
    report_dir: str = "."
    bucket_s: int = 5  # width of the report's time buckets
    #: names the run resolves itself (loadtests.tlsclient), and the CA it trusts for https
    resolve: dict[str, str] = field(default_factory=dict)
    ca_file: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["slo"] = {k: LevelSlo(**v) for k, v in data["slo"].items()}
        data["points"] = [tuple(p) for p in data["points"]]
        data["think_s"] = tuple(data["think_s"])
        return cls(**data)

    def url_of(self, site: str) -> str:
        """The hall serving a site: sites are spread over the targets by a stable hash."""
        if len(self.targets) == 1:
            return self.targets[0]
        digest = hashlib.sha1(site.encode()).digest()
        return self.targets[int.from_bytes(digest[:4], "big") % len(self.targets)]

    def load_at(self, elapsed: float) -> float:
        """The load (users or requests/s) ``elapsed`` seconds into the run."""
        return self.peak * curve_at(self.points, elapsed / self.duration_s)


def load_config(path: str | None = None) -> RunConfig:
    where = path or os.environ.get(CONFIG_ENV)
    if not where:
        raise RuntimeError(
            f"{CONFIG_ENV} is not set: start load tests with `govcloud loadtest run`, or point "
            "it at a config.json that command wrote"
        )
    with open(where, encoding="utf-8") as fh:
        return RunConfig.from_dict(json.load(fh))


def curve_at(points: list[tuple[float, float]], t: float) -> float:
    """Linear interpolation of a profile curve at fraction ``t`` (clamped to 0..1)."""
    t = min(max(t, 0.0), 1.0)
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            if t1 == t0:
                return v1
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h`` → seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f'expected a duration like "60s", "15m" or "2h", got "{text}"')
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def read_profiles(path: Path = PROFILES_FILE) -> dict[str, Any]:
    """The profiles file, checked: every point a [t, load] pair with t rising from 0 to 1.
    Read with govcloud's limits on size, nodes and nesting (an :class:`InputError` past them)."""
    from govcloud.errors import InputError
    from govcloud.yamlsafe import load_yaml

    data = load_yaml(path, error=lambda ps: InputError(ps, title="invalid load profiles"))
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise ValueError(f"{path}: expected a mapping with profiles:")
    for name, prof in data["profiles"].items():
        where = f"{path}: profiles.{name}"
        points = prof.get("points") if isinstance(prof, dict) else None
        if not isinstance(points, list) or len(points) < 2:
            raise ValueError(f"{where}.points: expected at least two [t, load] pairs")
        last = -1.0
        for i, p in enumerate(points):
            if not (isinstance(p, list) and len(p) == 2 and isinstance(p[0], int | float)):
                raise ValueError(f"{where}.points[{i}]: expected [t, load]")
            if p[0] < last or not 0 <= p[0] <= 1:
                raise ValueError(f"{where}.points[{i}]: t must rise within 0..1")
            last = p[0]
            if not (p[1] == "surge" or (isinstance(p[1], int | float) and p[1] >= 0)):
                raise ValueError(f'{where}.points[{i}]: load must be >= 0 or "surge"')
        if points[0][0] != 0 or points[-1][0] != 1:
            raise ValueError(f"{where}.points: must start at t=0 and end at t=1")
        parse_duration(str(prof.get("default_duration", "60s")))
    personas = data.get("personas", {})
    unknown = set(personas) - set(PERSONAS)
    if unknown:
        raise ValueError(f"{path}: personas: unknown {sorted(unknown)}; known: {list(PERSONAS)}")
    return data


def resolve_points(points: list[list[Any]], surge_factor: float) -> list[tuple[float, float]]:
    return [(float(t), surge_factor if v == "surge" else float(v)) for t, v in points]
