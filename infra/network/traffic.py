"""The traffic a policy rule matches, as exact sets, so overlaps between rules can be computed.

A rule matches a *box*: source addresses × destination addresses × IP protocols × destination
ports. Each axis is a finite union of closed integer intervals (:data:`Spans`): addresses are
IPv4 numbers, protocols their IANA numbers, ports 0-65535. A protocol without ports (ICMP) spans
the whole port axis, so "ICMP" and "TCP, any port" are disjoint and ``any`` (every protocol,
every port) contains both.

Subtracting one box from another leaves at most one box per axis, so the part of a rule that no
earlier rule matches is computed exactly, whatever the number of earlier rules that together
cover it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: sorted, disjoint, non-adjacent closed intervals
Spans = tuple[tuple[int, int], ...]

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}
#: the protocols that have ports: what ``any`` with ports means
PORTED = ("tcp", "udp")
ALL_PROTOCOLS: Spans = ((0, 255),)
ALL_PORTS: Spans = ((0, 65535),)


def spans(intervals: Iterable[tuple[int, int]]) -> Spans:
    """Intervals merged into :data:`Spans` (overlapping and adjacent ones joined)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def intersect(a: Spans, b: Spans) -> Spans:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract(a: Spans, b: Spans) -> Spans:
    """What of ``a`` is not in ``b``."""
    out: list[tuple[int, int]] = []
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] < lo:
            j += 1
        k = j
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > lo:
                out.append((lo, b[k][0] - 1))
            lo = max(lo, b[k][1] + 1)
            if lo > hi:
                break
            k += 1
        if lo <= hi:
            out.append((lo, hi))
    return tuple(out)


def prefix_spans(prefixes: Iterable[str]) -> Spans:
    nets = [ipaddress.IPv4Network(p) for p in prefixes]
    return spans((int(n.network_address), int(n.broadcast_address)) for n in nets)


def port_spans(ports: Iterable[int | tuple[int, int]]) -> Spans:
    """Ports (single ports or inclusive ranges) as spans; none means every port."""
    found = [(p, p) if isinstance(p, int) else p for p in ports]
    return spans(found) if found else ALL_PORTS


@dataclass(frozen=True)
class Box:
    """Source × destination × protocol × port; empty when any axis is."""

    axes: tuple[Spans, Spans, Spans, Spans]

    @property
    def empty(self) -> bool:
        return any(not axis for axis in self.axes)

    def meet(self, other: Box) -> Box:
        return Box(
            (
                intersect(self.axes[0], other.axes[0]),
                intersect(self.axes[1], other.axes[1]),
                intersect(self.axes[2], other.axes[2]),
                intersect(self.axes[3], other.axes[3]),
            )
        )

    def minus(self, other: Box) -> list[Box]:
        """``self`` without ``other``: at most four disjoint boxes."""
        common = [intersect(a, b) for a, b in zip(self.axes, other.axes, strict=True)]
        if any(not c for c in common):
            return [self]
        out = []
        for k in range(4):
            rest = subtract(self.axes[k], other.axes[k])
            if rest:
                axes = (*common[:k], rest, *self.axes[k + 1 :])
                out.append(Box((axes[0], axes[1], axes[2], axes[3])))
        return out


def rule_box(
    src_prefixes: Sequence[str],
    dst_prefixes: Sequence[str],
    proto: str,
    ports: Sequence[int | tuple[int, int]],
) -> Box:
    """The traffic of one rule. ``proto`` is tcp, udp, icmp or any; ports given with ``any``
    restrict the protocols that have ports (TCP and UDP)."""
    if proto == "any":
        protos = spans((PROTOCOLS[p], PROTOCOLS[p]) for p in PORTED) if ports else ALL_PROTOCOLS
    elif proto in PROTOCOLS:
        protos = ((PROTOCOLS[proto], PROTOCOLS[proto]),)
    else:
        raise ValueError(f"unknown protocol {proto!r} (expected {', '.join(PROTOCOLS)} or any)")
    if proto == "icmp" and ports:
        raise ValueError("icmp has no ports")
    return Box((prefix_spans(src_prefixes), prefix_spans(dst_prefixes), protos, port_spans(ports)))


def first_matches(later: Box, earlier: Sequence[Box]) -> tuple[list[int], bool]:
    """Under first-match evaluation, which of the ``earlier`` boxes take some of ``later``'s
    traffic (their indexes, in order), and whether they take all of it (``later`` never
    matches)."""
    remaining = [later]
    takers = []
    for i, box in enumerate(earlier):
        if not remaining:
            break
        if all(r.meet(box).empty for r in remaining):
            continue
        takers.append(i)
        remaining = [part for r in remaining for part in r.minus(box)]
    return takers, not remaining
