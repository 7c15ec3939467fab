"""The verification matrix: which packets must pass and which must not, from the policy alone.

Pure: given the plan's rules and a set of hosts (name, address, role, zone), list the checks
(source host, destination host, protocol, port) and what each should see. Destination ports are
SSH and every TCP port some rule opens towards that host, so a check that must fail differs from
one that must pass only by its source. The intranet host is probed from every source.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from infra.network.policy import Rule


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    role: str
    zone: str


@dataclass(frozen=True)
class Check:
    src: str
    dst: str
    dst_address: str
    proto: str  # tcp or icmp
    port: int  # 0 for icmp
    expect_open: bool
    reason: str  # the rule that opens it, or why it stays closed

    @property
    def label(self) -> str:
        return (
            f"{self.src} → {self.dst} {self.proto}/{self.port}"
            if self.port
            else (f"{self.src} → {self.dst} {self.proto}")
        )


class _Nets:
    def __init__(self) -> None:
        self.cache: dict[tuple[str, ...], list[ipaddress.IPv4Network]] = {}

    def contains(self, prefixes: tuple[str, ...], address: str) -> bool:
        nets = self.cache.get(prefixes)
        if nets is None:
            nets = self.cache[prefixes] = [ipaddress.IPv4Network(p) for p in prefixes]
        addr = ipaddress.IPv4Address(address)
        return any(addr in n for n in nets)


def expected(
    rules: Sequence[Rule],
    src: Endpoint,
    dst: Endpoint,
    proto: str,
    port: int,
    nets: _Nets | None = None,
) -> tuple[bool, str]:
    """First matching rule decides; nothing matching means the default deny."""
    nets = nets or _Nets()
    if "intranet" in (src.zone, dst.zone):
        return False, "intranet isolation"
    for r in rules:
        if r.proto != proto or (r.ports and port not in r.ports):
            continue
        if dst.role == "router" and r.dst not in ("*", "role:router", f"host:{dst.name}"):
            continue  # a router serves only what names it
        if nets.contains(r.src_prefixes, src.address) and nets.contains(
            r.dst_prefixes, dst.address
        ):
            return r.action == "accept", f"{r.id} {r.name}"
    return False, "default deny"


def build_checks(
    rules: Sequence[Rule], sources: Sequence[Endpoint], targets: Sequence[Endpoint]
) -> list[Check]:
    nets = _Nets()
    ports_of: dict[str, set[int]] = {}
    for t in targets:
        ports = {22}
        for r in rules:
            if (
                r.proto == "tcp"
                and r.action == "accept"
                and r.ports
                and nets.contains(r.dst_prefixes, t.address)
            ):
                ports.update(r.ports)
        ports_of[t.name] = ports
    checks = []
    for s in sources:
        for t in targets:
            if s.name == t.name:
                continue
            for port in sorted(ports_of[t.name]):
                ok, why = expected(rules, s, t, "tcp", port, nets)
                checks.append(Check(s.name, t.name, t.address, "tcp", port, ok, why))
            if t.zone == "intranet":
                checks.append(
                    Check(s.name, t.name, t.address, "icmp", 0, False, "intranet isolation")
                )
    return checks
