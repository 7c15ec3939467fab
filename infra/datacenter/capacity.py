"""The data-center capacity plan (GB 50174-2017): racks, power, cooling and pools.

Every verdict carries the clause it rests on. The IT load is the nameplate draw of the hosts
placed in racks (the inventory's routers included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from govcloud.spec.grades import rules_for
from govcloud.spec.model import Redundancy, Spec
from infra.inventory import InvHost

UPS_SIZING = "GB 50174-2017 Appendix A: UPS capacity E ≥ 1.1 × P, the load it carries"
UPS_LOSS = 0.05  # heat of the UPS chain, a share of the IT load (typical double-conversion loss)


@dataclass
class Verdict:
    item: str
    ok: bool
    detail: str
    clause: str

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "ok": self.ok, "detail": self.detail, "clause": self.clause}


def _after_one_failure(units: int, unit_kw: float, red: Redundancy, load_kw: float) -> Verdict:
    usable = red.usable_units(units) * unit_kw
    remaining = min(usable, (units - 1) * unit_kw)
    ok = units > 1 and remaining >= load_kw
    return Verdict(
        "one unit fails",
        ok,
        f"{units - 1} of {units} units left: {remaining:,.1f} kW for {load_kw:,.1f} kW of load"
        + ("" if ok else ": the load is interrupted"),
        "GB 50174-2017 §3.0: grade B must ride through a single equipment failure",
    )


def plan_datacenter(spec: Spec, hosts: list[InvHost]) -> dict[str, Any]:
    dc = spec.datacenter
    racks = {r.name: r for room in dc.rooms for r in room.racks}
    per_rack: dict[str, float] = dict.fromkeys(racks, 0.0)
    for h in hosts:
        if h.rack:
            per_rack[h.rack] = per_rack.get(h.rack, 0.0) + h.kw
    it_load = sum(per_rack.values())
    rack_rows = [
        {
            "rack": name,
            "budget_kw": racks[name].kw,
            "load_kw": round(load, 2),
            "ok": load <= racks[name].kw,
        }
        for name, load in per_rack.items()
    ]

    ups = dc.power.ups
    unit_kw = ups.unit_kva * ups.power_factor
    ups_usable = ups.redundancy.usable_units(ups.units) * unit_kw
    cooling = dc.cooling
    cool_usable = cooling.redundancy.usable_units(cooling.units) * cooling.unit_kw
    heat = it_load * (1 + UPS_LOSS)
    gens = dc.power.generators
    gen_usable = gens.redundancy.usable_units(gens.units) * gens.unit_kw
    chains: dict[str, list[Verdict]] = {
        "ups": [
            Verdict(
                "capacity",
                ups_usable >= 1.1 * it_load,
                f"{ups_usable:,.1f} kW usable ({ups.units} × {unit_kw:,.1f} kW, "
                f"{ups.redundancy.value}) for 1.1 × {it_load:,.1f} kW = "
                f"{1.1 * it_load:,.1f} kW",
                UPS_SIZING,
            ),
            _after_one_failure(ups.units, unit_kw, ups.redundancy, it_load),
        ],
        "cooling": [
            Verdict(
                "capacity",
                cool_usable >= heat,
                f"{cool_usable:,.1f} kW usable ({cooling.units} × {cooling.unit_kw:g} kW, "
                f"{cooling.redundancy.value}) for {heat:,.1f} kW of heat (IT load + "
                f"{UPS_LOSS:.0%} UPS loss)",
                "GB 50174-2017 §7 (air conditioning): cooling covers the heat load",
            ),
            _after_one_failure(cooling.units, cooling.unit_kw, cooling.redundancy, heat),
        ],
        "generators": [
            Verdict(
                "capacity",
                gens.units == 0 or gen_usable >= it_load + heat * 0.3,
                f"{gen_usable:,.1f} kW usable for {it_load:,.1f} kW IT + cooling "
                f"(~30 % of heat): {it_load + heat * 0.3:,.1f} kW"
                if gens.units
                else "no generator",
                "GB 50174-2017 Appendix A (backup power) (UNVERIFIED: secondary sources)",
            ),
        ],
        "utility": [
            Verdict(
                "feeds",
                True,
                f"{dc.power.utility_feeds} utility feed(s)"
                + (
                    "; a feed loss falls back to UPS and generators"
                    if dc.power.utility_feeds == 1
                    else "; one feed may fail"
                ),
                "GB 50174-2017 Appendix A (power supply)",
            ),
        ],
    }
    grade = [
        {"rule": r.id, "requirement": r.requirement, "ok": r.holds(dc), "clause": r.source}
        for r in rules_for(dc.grade)
    ]
    pools = dc.pools
    used = {
        "cpu": sum(d.tenant.cpu for d in spec.departments),
        "memory_gib": sum(d.tenant.memory_gib for d in spec.departments),
        "storage_gib": sum(d.tenant.storage_gib for d in spec.departments),
    }
    caps = {
        "cpu": pools.compute.vcpus * pools.compute.cpu_overcommit,
        "memory_gib": pools.compute.memory_gib * pools.compute.memory_overcommit,
        "storage_gib": pools.storage.capacity_gib * pools.storage.overcommit,
    }
    ok = (
        all(r["ok"] for r in rack_rows)
        and all(v.ok for vs in chains.values() for v in vs)
        and all(g["ok"] for g in grade)
        and all(used[k] <= caps[k] for k in used)
    )
    return {
        "name": dc.name,
        "grade": dc.grade.value,
        "ok": ok,
        "it_load_kw": round(it_load, 2),
        "racks": rack_rows,
        "chains": {k: [v.as_dict() for v in vs] for k, vs in chains.items()},
        "grade_rules": grade,
        "battery_minutes": ups.battery_minutes,
        "pools": {
            k: {
                "quota": used[k],
                "capacity": caps[k],
                "share": round(used[k] / caps[k], 3) if caps[k] else None,
            }
            for k in used
        },
    }
