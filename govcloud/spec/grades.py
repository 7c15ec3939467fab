"""GB 50174-2017 grade rules, in one table.

Each rule names the clause it comes from. ``verified`` is False where the rule's figure comes from
secondary sources that quote the standard's Appendix A and the primary text was not confirmed; the
principle behind the B-grade redundancy rules (clause 3.0 grade definitions: "within its
redundancy, equipment failure shall not interrupt operation") is confirmed, so a B-grade chain
with no spare unit is refused on that ground alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from govcloud.spec.model import DataCenter, Grade, Redundancy


@dataclass(frozen=True)
class GradeRule:
    id: str
    grades: tuple[Grade, ...]
    path: str  # where in `datacenter` the rule looks
    requirement: str  # what the rule demands, in words
    clause: str  # where it comes from
    verified: bool
    holds: Callable[[DataCenter], bool]

    @property
    def source(self) -> str:
        return self.clause + ("" if self.verified else " (UNVERIFIED: secondary sources)")


def _at_least(value: Redundancy, minimum: Redundancy) -> bool:
    return value.rank >= minimum.rank


_APPX = "GB 50174-2017 Appendix A"
_DEF_B = "GB 50174-2017 §3.0 grade B: redundant, a single equipment failure must not interrupt"
_DEF_A = "GB 50174-2017 §3.0 grade A: fault tolerant, no interruption from failure or maintenance"

RULES: tuple[GradeRule, ...] = (
    GradeRule(
        "ups-fault-tolerant",
        (Grade.A,),
        "power.ups.redundancy",
        "UPS configured 2N or better",
        f"{_DEF_A}; {_APPX} (UPS: 2N or M(N+1))",
        False,
        lambda dc: _at_least(dc.power.ups.redundancy, Redundancy.N2),
    ),
    GradeRule(
        "ups-redundant",
        (Grade.B,),
        "power.ups.redundancy",
        "UPS configured N+1 or better",
        f"{_DEF_B}; {_APPX} (UPS: N+X, X=1..N)",
        True,
        lambda dc: _at_least(dc.power.ups.redundancy, Redundancy.N1),
    ),
    GradeRule(
        "cooling-redundant",
        (Grade.A, Grade.B),
        "cooling.redundancy",
        "cooling units configured N+1 or better",
        f"{_DEF_B}; {_APPX} (cooling: A N+X, B N+1)",
        True,
        lambda dc: _at_least(dc.cooling.redundancy, Redundancy.N1),
    ),
    GradeRule(
        "dual-utility",
        (Grade.A,),
        "power.utility_feeds",
        "two independent utility feeds (双重电源)",
        f"{_APPX} (power supply)",
        False,
        lambda dc: dc.power.utility_feeds >= 2,
    ),
    GradeRule(
        "generator-present",
        (Grade.A, Grade.B),
        "power.generators.units",
        "at least one standby generator",
        f"{_APPX} (backup power)",
        False,
        lambda dc: dc.power.generators.units >= 1,
    ),
    GradeRule(
        "generator-redundant",
        (Grade.A,),
        "power.generators.redundancy",
        "standby generators N+1 or better",
        f"{_APPX} (backup power)",
        False,
        lambda dc: _at_least(dc.power.generators.redundancy, Redundancy.N1),
    ),
    GradeRule(
        "battery-a",
        (Grade.A,),
        "power.ups.battery_minutes",
        "at least 15 min of UPS battery with a generator",
        f"{_APPX} (battery autonomy)",
        False,
        lambda dc: dc.power.ups.battery_minutes >= 15,
    ),
    GradeRule(
        "battery-b",
        (Grade.B,),
        "power.ups.battery_minutes",
        "at least 7 min of UPS battery with a generator",
        f"{_APPX} (battery autonomy)",
        False,
        lambda dc: dc.power.ups.battery_minutes >= 7,
    ),
)

#: units a chain needs at least for its declared redundancy, when its load needs one unit
MIN_UNITS: dict[Redundancy, int] = {
    Redundancy.N: 1,
    Redundancy.N1: 2,
    Redundancy.N2: 2,
    Redundancy.N2_1: 4,
}


def rules_for(grade: Grade) -> list[GradeRule]:
    return [r for r in RULES if grade in r.grades]
