"""What the lab builds: bridges and hosts, as plain data.

The lab does not read the spec; the network/data-center plan produces a :class:`Topology` and the
lab turns it into Linux bridges and LXC containers. Names are short because Linux interface names
are limited to 15 characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Route:
    dst: str  # a prefix
    via: str  # a next hop on one of the host's segments


@dataclass(frozen=True)
class Bridge:
    """One network segment: a Linux bridge on the machine, with no address of its own unless
    ``host_address`` is set (the machine's own foothold, e.g. on the operator segment)."""

    name: str  # at most 15 characters
    cidr: str  # the segment's prefix, e.g. "10.255.1.0/24"
    zone: str  # the zone it belongs to (management, public, dept-gat, site-5201...)
    host_address: str | None = None  # "10.255.1.254/24" gives the machine an address on it
    # the machine's routes through this segment (its operators reach the data center's other
    # segments through the zone router, as any management-zone workstation does)
    host_routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class Interface:
    bridge: str
    address: str  # with prefix length, e.g. "10.255.1.10/24"


@dataclass(frozen=True)
class LabHost:
    name: str  # container name and hostname
    role: str  # router, bastion, identity, log, compute, hall, client, ...
    interfaces: tuple[Interface, ...]
    gateway: str | None = None  # default route
    routes: tuple[Route, ...] = ()
    template: str = "base"  # which cached template it is cloned from ("base", "hall")
    forwarding: bool = False  # routers forward between their segments
    ruleset: str | None = None  # nftables ruleset text to load (routers, and hosts with rules)


@dataclass(frozen=True)
class Topology:
    name: str  # the lab's name: every object the lab creates carries it
    bridges: tuple[Bridge, ...]
    hosts: tuple[LabHost, ...]
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)
