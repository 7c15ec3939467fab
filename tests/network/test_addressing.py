"""The five-level address plan: nesting, uniqueness, stability and exhaustion."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from govcloud.errors import PlanError
from govcloud.spec import parse
from infra.network.addressing import AddressPlan, Site, allocate, parse_cidr, previous_from

pytestmark = pytest.mark.unit


def _inside(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[0] + inner[1] <= outer[0] + outer[1]


def _aligned(r: tuple[int, int]) -> bool:
    return r[0] % r[1] == 0


def check_nesting(plan: AddressPlan) -> int:
    """Every block aligned, inside its parent, apart from its siblings and the parent's own
    subnets; every uplink inside the parent's links block and unique. Returns sites checked."""
    checked = 0
    stack: list[Site] = list(plan.roots)
    while stack:
        site = stack.pop()
        checked += 1
        assert _aligned(site.block), site.code
        pieces = [("lan", site.lan)]
        if site.mgmt:
            pieces.append(("mgmt", site.mgmt))
        if site.links:
            pieces.append(("links", site.links))
        pieces += [(c.code, c.block) for c in site.children]
        for name, piece in pieces:
            assert _inside(piece, site.block), f"{name} of {site.code} outside its block"
            assert _aligned(piece), f"{name} of {site.code} not aligned"
        ordered = sorted(p for _, p in pieces)
        for (a_start, a_size), (b_start, _) in itertools.pairwise(ordered):
            assert a_start + a_size <= b_start, f"overlap inside {site.code}"
        uplinks = [c.uplink for c in site.children]
        assert len(set(uplinks)) == len(uplinks), f"uplinks of {site.code} not unique"
        for c in site.children:
            assert c.uplink is not None and site.links is not None
            assert _inside(c.uplink, site.links), f"uplink of {c.code} outside {site.code}"
            assert c.parent == site.code and c.code.startswith(site.code)
        stack.extend(site.children)
    return checked


@pytest.fixture(scope="module")
def guizhou_plan(guizhou_raw: dict[str, Any]) -> AddressPlan:
    return allocate(parse(guizhou_raw))


def test_guizhou_every_site_nested_and_unique(guizhou_plan: AddressPlan) -> None:
    assert check_nesting(guizhou_plan) == 1 + 9 + 88 + 1521 + 17342
    # and the data-center supernet stays free of sites
    dc = parse_cidr("10.255.0.0/16")
    for root in guizhou_plan.roots:
        assert root.block[0] + root.block[1] <= dc[0] or root.block[0] >= dc[0] + dc[1]


def test_lab_plan_nested(lab_raw: dict[str, Any]) -> None:
    assert check_nesting(allocate(parse(lab_raw))) == 31


def test_allocation_is_deterministic(lab_raw: dict[str, Any]) -> None:
    spec = parse(lab_raw)
    a = [s.as_dict() for s in allocate(spec).walk()]
    b = [s.as_dict() for s in allocate(spec).walk()]
    assert a == b


def _add_village(raw: dict[str, Any], city: int, county: int, town: int) -> str:
    township = raw["regions"]["52"]["cities"][city]["counties"][county]["townships"][town]
    villages = township["villages"]
    codes = [v if isinstance(v, str) else v["code"] for v in villages]
    last = max(int(c.split()[0][-3:]) for c in codes)
    new = f"{township['code']}{last + 1:03d}"
    villages.append(f"{new} 新增村")
    return new


def test_adding_a_village_renumbers_nothing(guizhou_raw: dict[str, Any]) -> None:
    before = allocate(parse(guizhou_raw))
    before_sites = {s.code: s.as_dict() for s in before.walk()}
    grown = copy.deepcopy(guizhou_raw)
    new_code = _add_village(grown, city=8, county=3, town=0)
    after = {
        s.code: s.as_dict()
        for s in allocate(
            parse(grown), previous_from({"sites": list(before_sites.values())})
        ).walk()
    }
    assert new_code in after
    changed = [c for c, d in before_sites.items() if after[c] != d]
    assert changed == []
    check_nesting(allocate(parse(grown), previous_from({"sites": list(before_sites.values())})))


def test_growing_past_the_headroom_still_plans_and_keeps_other_counties(
    guizhou_raw: dict[str, Any],
) -> None:
    before = {s.code: s.as_dict() for s in allocate(parse(guizhou_raw)).walk()}
    grown = copy.deepcopy(guizhou_raw)
    for _ in range(40):  # far past the township's headroom: its block must grow
        _add_village(grown, city=0, county=0, town=0)
    plan = allocate(parse(grown), previous_from({"sites": list(before.values())}))
    check_nesting(plan)
    after = {s.code: s.as_dict() for s in plan.walk()}
    # the county that holds the grown township may renumber inside; other cities stay put
    moved = {c for c, d in before.items() if after[c] != d}
    assert "520101001" in moved
    assert not any(c.startswith("5227") for c in moved)


def test_exhaustion_names_the_level_and_the_shortfall(lab_raw: dict[str, Any]) -> None:
    lab_raw["network"]["supernets"]["extranet"] = "10.0.0.0/20"
    lab_raw["network"]["supernets"]["datacenter"] = "10.255.0.0/16"
    with pytest.raises(PlanError) as info:
        allocate(parse(lab_raw))
    msg = str(info.value)
    assert "exhausted at the province level" in msg
    assert "more needed" in msg and "/19" in msg
