"""The five-level address plan: province → city → county → township → village.

Blocks are sized bottom-up (a site's own hall LAN, management and uplink subnets, plus its
children's blocks, plus the spec's headroom, rounded up to a CIDR block) and placed top-down, each
child inside its parent's block, so a county's whole subtree is one route.

Stability: given the previous plan, every site keeps the blocks it had as long as they still fit
and new sites go into free space, so adding a village renumbers nothing. Without a previous plan
the allocation is still deterministic (same spec, same plan).

Addresses are handled as integers for speed; a Guizhou-scale plan allocates ~19,000 sites.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import ceil
from typing import Any

from govcloud.errors import PlanError
from govcloud.spec.model import Level, Spec

_LEVEL_CHILDREN = {
    Level.PROVINCE: "cities",
    Level.CITY: "counties",
    Level.COUNTY: "townships",
    Level.TOWNSHIP: "villages",
}
_NEXT = {
    Level.PROVINCE: Level.CITY,
    Level.CITY: Level.COUNTY,
    Level.COUNTY: Level.TOWNSHIP,
    Level.TOWNSHIP: Level.VILLAGE,
}


def pow2(n: int) -> int:
    """The smallest power of two ≥ n (and ≥ 1)."""
    return 1 << max(0, (n - 1).bit_length())


def cidr(start: int, size: int) -> str:
    return f"{ipaddress.IPv4Address(start)}/{32 - size.bit_length() + 1}"


def parse_cidr(text: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(text)
    return int(net.network_address), net.num_addresses


@dataclass
class Site:
    """One site's allocation. Integers are (start, size) address ranges."""

    code: str
    name: str
    level: Level
    parent: str | None
    block: tuple[int, int] = (0, 0)  # the whole subtree
    lan: tuple[int, int] = (0, 0)  # the hall LAN
    mgmt: tuple[int, int] | None = None  # management subnet (sites above the village)
    links: tuple[int, int] | None = None  # where the children's uplink /31s come from
    uplink: tuple[int, int] | None = None  # the /31 to the parent
    children: list[Site] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "level": self.level.value,
            "parent": self.parent,
            "block": cidr(*self.block),
            "lan": cidr(*self.lan),
        }
        for key in ("mgmt", "links", "uplink"):
            value = getattr(self, key)
            if value is not None:
                d[key] = cidr(*value)
        return d


@dataclass
class AddressPlan:
    roots: list[Site]
    supernet: str

    def walk(self) -> Iterator[Site]:
        stack = list(reversed(self.roots))
        while stack:
            site = stack.pop()
            yield site
            stack.extend(reversed(site.children))

    def by_code(self) -> dict[str, Site]:
        return {s.code: s for s in self.walk()}


# ---------------------------------------------------------------------------------------------
# sizing


class _Sizer:
    def __init__(self, spec: Spec, previous: dict[str, dict[str, str]]) -> None:
        alloc = spec.network.allocation
        self.headroom = alloc.headroom
        self.lan = {lv: pow2(n + 2) for lv, n in alloc.hall_lan_hosts.items()}  # + net, bcast
        self.mgmt = pow2(alloc.mgmt_hosts + 2)
        self.previous = previous

    def build(self, code: str, name: str, level: Level, node: Any, parent: str | None) -> Site:
        site = Site(code, name, level, parent)
        kids_attr = _LEVEL_CHILDREN.get(level)
        kids = getattr(node, kids_attr) if kids_attr else []
        child_level = _NEXT.get(level)
        for kid in kids:
            assert child_level is not None
            site.children.append(self.build(kid.code, kid.name, child_level, kid, code))
        site.block = (0, self.size(site))
        return site

    def _held(self, site: Site, key: str) -> int | None:
        prev = self.previous.get(site.code, {}).get(key)
        return parse_cidr(prev)[1] if prev else None

    def own_parts(self, site: Site) -> list[tuple[str, int]]:
        parts = [("lan", self.lan[site.level])]
        if site.level is not Level.VILLAGE:
            parts.append(("mgmt", self.mgmt))
        if site.children:
            n = len(site.children)
            held = self._held(site, "links")
            # a links block kept from the previous plan stays while it holds every uplink
            size = held if held and held >= 2 * n else pow2(2 * ceil(n * (1 + self.headroom)))
            parts.append(("links", size))
        return parts

    def size(self, site: Site) -> int:
        own = sum(size for _, size in self.own_parts(site))
        kids = sum(child.block[1] for child in site.children)
        held = self._held(site, "block")
        if held and own + kids <= held:
            return held  # headroom is spent before a block grows: nothing moves
        return pow2(own + ceil(kids * (1 + self.headroom)) if site.children else own)


# ---------------------------------------------------------------------------------------------
# placement


class _Space:
    """Free space inside one block: first fit of naturally aligned power-of-two pieces."""

    def __init__(self, start: int, size: int) -> None:
        self.start, self.end = start, start + size
        self.used: list[tuple[int, int]] = []  # sorted (start, end)

    def take(self, start: int, size: int) -> bool:
        """Reserve exactly [start, start+size) if it is inside and free."""
        if start < self.start or start + size > self.end:
            return False
        i = bisect.bisect_left(self.used, (start, start + size))
        if i > 0 and self.used[i - 1][1] > start:
            return False
        if i < len(self.used) and self.used[i][0] < start + size:
            return False
        self.used.insert(i, (start, start + size))
        return True

    def alloc(self, size: int) -> int | None:
        # after the last piece: with pieces taken largest first this leaves no gaps
        tail = self.used[-1][1] if self.used else self.start
        at = -(-tail // size) * size
        if at + size <= self.end:
            self.used.append((at, at + size))
            return at
        # otherwise the first aligned gap (pieces pinned from a previous plan leave gaps)
        pos = self.start
        for ustart, uend in self.used:
            at = -(-pos // size) * size
            if at + size <= ustart:
                self.take(at, size)
                return at
            pos = max(pos, uend)
        return None


class _Placer:
    def __init__(self, sizer: _Sizer) -> None:
        self.sizer = sizer
        self.previous = sizer.previous

    def place(self, site: Site, start: int) -> None:
        site.block = (start, site.block[1])
        parts = self.sizer.own_parts(site)
        # own parts and children, largest first; previously held places are pinned first
        items: list[tuple[str, int, Site | None]] = [(k, s, None) for k, s in parts]
        items += [(c.code, c.block[1], c) for c in site.children]
        placed = self._arrange(site, items, pinned=True)
        if placed is None:  # the kept places fragment the block: renumber inside it only
            placed = self._arrange(site, items, pinned=False)
        if placed is None:
            raise PlanError(
                f"address plan: the {site.level.value} block of {site.code} ({site.name}, "
                f"{cidr(*site.block)}) is too small for its subnets and children; plan with "
                "--fresh to renumber, or raise network.allocation.headroom"
            )
        self._assign(site, parts, placed)

    def _arrange(
        self, site: Site, items: list[tuple[str, int, Site | None]], *, pinned: bool
    ) -> dict[str, int] | None:
        space = _Space(*site.block)
        prev = self.previous.get(site.code, {})
        placed: dict[str, int] = {}
        if pinned:
            for key, size, child in items:
                held = self.previous.get(child.code, {}).get("block") if child else prev.get(key)
                if held is not None:
                    at, held_size = parse_cidr(held)
                    if held_size == size and space.take(at, size):
                        placed[key] = at
        for key, size, _ in sorted(items, key=lambda it: -it[1]):  # stable: parts, code order
            if key not in placed:
                found = space.alloc(size)
                if found is None:
                    return None
                placed[key] = found
        return placed

    def _assign(self, site: Site, parts: list[tuple[str, int]], placed: dict[str, int]) -> None:
        site.lan = (placed["lan"], self.sizer.lan[site.level])
        if "mgmt" in placed:
            site.mgmt = (placed["mgmt"], self.sizer.mgmt)
        if site.children:
            links_size = dict(parts)["links"]
            site.links = (placed["links"], links_size)
            used_links = {
                parse_cidr(p["uplink"])[0]
                for c in site.children
                if (p := self.previous.get(c.code)) and "uplink" in p
            }
            free = (
                o
                for o in range(placed["links"], placed["links"] + links_size, 2)
                if o not in used_links
            )
            for child in site.children:
                prev_up = self.previous.get(child.code, {}).get("uplink")
                at = parse_cidr(prev_up)[0] if prev_up else None
                if at is None or not placed["links"] <= at < placed["links"] + links_size:
                    at = next(free)
                child.uplink = (at, 2)
                self.place(child, placed[child.code])


def allocate(spec: Spec, previous: dict[str, dict[str, str]] | None = None) -> AddressPlan:
    """Allocate every site of the spec's region tree inside the extranet supernet.

    ``previous`` maps site codes to their earlier allocation (``Site.as_dict()``), as read back
    from a previous plan's ``network.json``.
    """
    previous = previous or {}
    sizer = _Sizer(spec, previous)
    roots = [
        sizer.build(code, province.name, Level.PROVINCE, province, None)
        for code, province in spec.regions.items()
    ]
    ext_start, ext_size = parse_cidr(spec.network.supernets.extranet)
    dc_start, dc_size = parse_cidr(spec.network.supernets.datacenter)
    space = _Space(ext_start, ext_size)
    if ext_start <= dc_start < ext_start + ext_size:
        space.take(dc_start, dc_size)  # the data-center segments are not for sites
    for root in roots:
        held = previous.get(root.code, {}).get("block")
        at = None
        if held is not None:
            held_start, held_size = parse_cidr(held)
            if held_size == root.block[1] and space.take(held_start, held_size):
                at = held_start
        if at is None:
            at = space.alloc(root.block[1])
        if at is None:
            free = ext_size - sum(e - s for s, e in space.used)
            raise PlanError(
                f"address plan exhausted at the province level: province {root.code} "
                f"({root.name}) needs a /{32 - root.block[1].bit_length() + 1} "
                f"({root.block[1]:,} addresses) but network.supernets.extranet "
                f"{spec.network.supernets.extranet} has {free:,} free beside the data center "
                f"({root.block[1] - free:,} more needed, or an aligned block that large); "
                "use a larger extranet, a smaller network.allocation.headroom or smaller "
                "hall_lan_hosts"
            )
        _Placer(sizer).place(root, at)
    return AddressPlan(roots, spec.network.supernets.extranet)


def previous_from(network_json: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The per-site allocations recorded in a previous plan's ``network.json``."""
    return {s["code"]: s for s in network_json.get("sites", [])}
