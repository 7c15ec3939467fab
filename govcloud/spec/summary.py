"""A short, printable summary of a spec: what `govcloud spec show` reports."""

from __future__ import annotations

from typing import Any

from govcloud.spec.model import LEVELS, Spec


def summarize(spec: Spec) -> dict[str, Any]:
    dc = spec.datacenter
    ups, cooling, pools = dc.power.ups, dc.cooling, dc.pools
    racks = [r for room in dc.rooms for r in room.racks]
    counts = spec.counts()
    return {
        "name": spec.name,
        "regions": {lv.value: counts[lv] for lv in LEVELS},
        "departments": {
            "count": len(spec.departments),
            "administrative_items": sum(d.items.administrative for d in spec.departments),
            "public_service_items": sum(d.items.public_service for d in spec.departments),
            "tenant_cpu": sum(d.tenant.cpu for d in spec.departments),
            "tenant_memory_gib": sum(d.tenant.memory_gib for d in spec.departments),
            "tenant_storage_gib": sum(d.tenant.storage_gib for d in spec.departments),
        },
        "datacenter": {
            "name": dc.name,
            "grade": dc.grade.value,
            "rooms": len(dc.rooms),
            "racks": len(racks),
            "rack_kw": sum(r.kw for r in racks),
            "hosts": len(dc.hosts),
            "host_kw": sum(h.kw for h in dc.hosts),
            "ups": f"{ups.units} × {ups.unit_kva:g} kVA ({ups.redundancy.value}), "
            f"{ups.battery_minutes:g} min",
            "ups_usable_kw": ups.redundancy.usable_units(ups.units)
            * ups.unit_kva
            * ups.power_factor,
            "cooling": f"{cooling.units} × {cooling.unit_kw:g} kW ({cooling.redundancy.value})",
            "cooling_usable_kw": cooling.redundancy.usable_units(cooling.units) * cooling.unit_kw,
            "compute_vcpus": pools.compute.vcpus * pools.compute.cpu_overcommit,
            "compute_memory_gib": pools.compute.memory_gib * pools.compute.memory_overcommit,
            "storage_gib": pools.storage.capacity_gib * pools.storage.overcommit,
        },
    }
