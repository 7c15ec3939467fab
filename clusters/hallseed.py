"""Control side: the hall's seed plan (sites, departments, guide counts) from the spec.

Imported by govcloud (it needs the spec model), never by the hall: it lives outside the hall's
package, which stands alone. The plan it makes is plain JSON that ``python3 -m hall seed`` reads.

How many guides each site carries:

- province: every provincial item of every department (Guizhou: 1,337 administrative + 236
  public-service = 1,573);
- city and county: a share of the items of the departments serving that level
  (``CITY_SHARE``, ``COUNTY_SHARE``; counties handle most cases, so they list most items);
- township and village: a fixed number of guides per site, split over the departments serving
  that level in proportion to their items. 43 per township and 11 per village give Guizhou's
  1,521 townships and 17,342 villages 256,165 guides, against the 256,419 township and village
  guides Guizhou reports.
"""

from __future__ import annotations

from typing import Any

from govcloud.spec.model import Department, Level, Spec, hall_of

CITY_SHARE = 0.6
COUNTY_SHARE = 0.7
TOWNSHIP_GUIDES = 43
VILLAGE_GUIDES = 11


def _split(total: int, weights: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """``total`` guides over (dept, kind, weight) blocks by largest remainder."""
    wsum = sum(w for _, _, w in weights)
    if wsum == 0 or total == 0:
        return []
    raw = [(d, k, total * w / wsum) for d, k, w in weights]
    counts = [int(x) for _, _, x in raw]
    short = total - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: raw[i][2] - counts[i], reverse=True)
    for i in order[:short]:
        counts[i] += 1
    return [
        {"dept": d, "kind": k, "count": n} for (d, k, _), n in zip(raw, counts, strict=True) if n
    ]


def _blocks(depts: list[Department], level: Level) -> list[dict[str, Any]]:
    serving = [d for d in depts if level in d.levels]
    weights = [
        (d.code, kind, n)
        for d in serving
        for kind, n in (
            ("administrative", d.items.administrative),
            ("public_service", d.items.public_service),
        )
    ]
    if level == Level.PROVINCE:
        return [{"dept": d, "kind": k, "count": n} for d, k, n in weights if n]
    if level in (Level.CITY, Level.COUNTY):
        share = CITY_SHARE if level == Level.CITY else COUNTY_SHARE
        return [{"dept": d, "kind": k, "count": round(n * share)} for d, k, n in weights if n]
    total = TOWNSHIP_GUIDES if level == Level.TOWNSHIP else VILLAGE_GUIDES
    return _split(total, weights)


def seed_plan(spec: Spec) -> dict[str, Any]:
    """The seed plan of a spec (see :mod:`clusters.apps.hall.seed` for its shape)."""
    depts = spec.departments
    blocks = {level: _blocks(depts, level) for level in Level}
    sites: list[dict[str, Any]] = []

    def add(site: Any, code: str, level: Level, parent: str | None) -> None:
        hall = hall_of(site, level)
        sites.append(
            {
                "code": code,
                "name": site.name,
                "level": level.value,
                "parent": parent,
                "kind": hall.kind.value,
                "windows": hall.windows,
                "hours": hall.hours,
                "items": blocks[level],
            }
        )

    for pcode, province in spec.regions.items():
        add(province, pcode, Level.PROVINCE, None)
        for city in province.cities:
            add(city, city.code, Level.CITY, pcode)
            for county in city.counties:
                add(county, county.code, Level.COUNTY, city.code)
                for township in county.townships:
                    add(township, township.code, Level.TOWNSHIP, county.code)
                    for village in township.villages:
                        add(village, village.code, Level.VILLAGE, township.code)
    return {
        "spec": spec.name,
        "departments": [{"code": d.code, "name": d.name} for d in depts],
        "sites": sites,
    }


def guide_counts(plan: dict[str, Any]) -> dict[str, int]:
    """Guides per level in a seed plan."""
    out: dict[str, int] = {}
    for s in plan["sites"]:
        out[s["level"]] = out.get(s["level"], 0) + sum(b["count"] for b in s["items"])
    return out
