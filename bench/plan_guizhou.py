"""Planning the Guizhou-scale spec (addresses, zones, policy, rulesets, inventory, rendered
files), and with 10× the villages.

Bounds (issue: network and data-center planning): at most 3 s; 10× the villages at most 12× the
time. Both runs give villages a 6-host station LAN (a /29) so that 173,420 villages fit the
extranet 10.0.0.0/8 (with 10 % headroom); the baseline uses the same settings, like for like.
"""

from __future__ import annotations

from bench.common import Result, best_of
from govcloud.spec import Spec, parse
from govcloud.spec.generate import generate
from infra.plan import make_plan, render_files


def _spec(scale: float) -> Spec:
    raw = generate("guizhou", scale=scale)
    raw["network"]["allocation"] = {"headroom": 0.1, "hall_lan_hosts": {"village": 6}}
    return parse(raw)


def run() -> Result:
    base, big = _spec(1), _spec(10)
    t1 = best_of(lambda: render_files(make_plan(base)))
    t10 = best_of(lambda: render_files(make_plan(big)), runs=2)
    ratio = t10 / t1
    return Result(
        "plan (guizhou)",
        {
            "sites": 18961,
            "seconds": round(t1, 3),
            "seconds_10x": round(t10, 3),
            "ratio_10x": round(ratio, 2),
        },
        {"at most 3 s": t1 <= 3.0, "10x villages at most 12x time": ratio <= 12.0},
    )
