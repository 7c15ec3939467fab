"""The lab's topology, planned from the spec: the plan's inventory as bridges and containers.

Every data-center segment becomes a bridge with the core router as its gateway; each city router
hangs off the core on its uplink. The lab adds what a real province has but the inventory does
not list: probe clients standing in for the people at the halls of each level and in one
department's office, so that `govcloud net verify` can send real packets between zones. Below a
city, the city router stands in for the county, township and village routers of one sample branch.
The intranet gets its own bridge and host and no link to anything else.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable

from govcloud.spec.model import DeployKind, Spec
from infra.inventory import InvHost
from infra.lab.topology import Bridge, Interface, LabHost, Route, Topology
from infra.network.addressing import Site, cidr
from infra.plan import Plan, make_plan

# the compute hosts are Kubernetes nodes; the hall hosts are the hall's edge only (nginx, which
# its role starts): the database is on the owning department's host, enabled by its role
TEMPLATE_OF_ROLE = {"compute": "node"}
PROBE_INDEX = 200  # probes take .200 of a segment, apart from the planned hosts (.10 up)
OPERATOR_INDEX = 254  # the machine's own address on the management segment


def _at(prefix: str, index: int) -> str:
    net, length = prefix.split("/")
    a, b, c, d = (int(x) for x in net.split("."))
    value = (a << 24 | b << 16 | c << 8 | d) + index
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}/{length}"


def _plain(address: str) -> str:
    return address.split("/")[0]


def _branch(city: Site) -> list[Site]:
    """One county, township and village under ``city``: the sample branch the lab builds."""
    chain: list[Site] = []
    node = city
    while node.children:
        node = node.children[0]
        chain.append(node)
    return chain


def _lan_prefix(site: Site) -> str:
    return cidr(*site.lan)


def lab_topology(plan: Plan) -> Topology:
    spec = plan.spec
    bridges: dict[str, Bridge] = {}
    hosts: list[LabHost] = []

    def bridge(segment: str, prefix: str, zone: str, host_address: str | None = None) -> None:
        if segment not in bridges:
            bridges[segment] = Bridge(segment, prefix, zone, host_address)

    for zone in plan.zones.values():
        if zone.network == "extranet" and zone.kind != "sites":
            operator = _at(zone.prefixes[0], OPERATOR_INDEX) if zone.name == "management" else None
            bridge(zone.name, zone.prefixes[0], zone.name, operator)
    # the machine is the operators' workstation in the management zone: it reaches the other
    # data-center segments (the cluster's API server, the registry) through the core router.
    # One route per segment, never the whole supernet: the machine's own resolver or gateway
    # may sit elsewhere in it.
    mgmt = bridges.get("management")
    if mgmt is not None:
        via = _plain(_at(mgmt.cidr, 1))
        routes = tuple(Route(b.cidr, via) for name, b in bridges.items() if name != "management")
        bridges["management"] = dataclasses.replace(mgmt, host_routes=routes)

    province = plan.addresses.roots[0]
    cities = {c.code: c for c in province.children}
    rulesets = plan.rulesets
    for h in plan.hosts:
        if h.zone == "intranet":
            continue
        if h.role == "router":
            hosts.append(_router(h, plan, cities, bridge))
            continue
        hosts.append(
            LabHost(
                h.name,
                h.role,
                tuple(Interface(n.segment, n.address) for n in h.nics),
                gateway=h.gateway,
                template=TEMPLATE_OF_ROLE.get(h.role, "base"),
                ruleset=rulesets.get(f"role-{h.role}"),
            )
        )

    # probes: a client at the hall of each level of one branch, and in one department's office
    bridge(f"site-{province.code}", _lan_prefix(province), "sites")
    first_city = province.children[0]
    for site in (province, first_city, *_branch(first_city)):
        lan = _lan_prefix(site)
        bridge(f"site-{site.code}", lan, "sites")
        hosts.append(
            LabHost(
                f"probe-{site.level.value}",
                "probe",
                (Interface(f"site-{site.code}", _at(lan, 10)),),
                gateway=_plain(_at(lan, 1)),
            )
        )
    office = next((d for d in spec.departments if d.tenant.deploy is not DeployKind.VM), None)
    if office is not None:
        zone = plan.zones[f"dept-{office.code}"]
        prefix = zone.prefixes[0]
        hosts.append(
            LabHost(
                f"probe-{office.code}",
                "probe",
                (Interface(zone.name, _at(prefix, PROBE_INDEX)),),
                gateway=_plain(_at(prefix, 1)),
            )
        )

    inner = next(h for h in plan.hosts if h.zone == "intranet")
    bridge("intranet", _network(inner.nics[0].address), "intranet")
    hosts.append(LabHost(inner.name, inner.role, (Interface("intranet", inner.nics[0].address),)))
    return Topology(
        spec.name,
        tuple(bridges.values()),
        tuple(hosts),
        meta={"source": "infra.lab.from_plan", "spec": spec.name},
    )


def _router(
    h: InvHost, plan: Plan, cities: dict[str, Site], bridge: Callable[[str, str, str], None]
) -> LabHost:
    nics = [Interface(n.segment, n.address) for n in h.nics]
    for n in h.nics:
        if n.segment.startswith(("uplink-", "site-", "mgmt-")):
            bridge(n.segment, _network(n.address), "sites")
    city = cities.get(h.site or "")
    if city is not None:  # the city router stands in for the routers of its sample branch
        for site in _branch(city):
            lan = _lan_prefix(site)
            bridge(f"site-{site.code}", lan, "sites")
            nics.append(Interface(f"site-{site.code}", _at(lan, 1)))
    return LabHost(
        h.name,
        "router",
        tuple(nics),
        gateway=h.gateway,
        routes=tuple(Route(dst, via) for dst, via in h.routes),
        forwarding=True,
        ruleset=plan.rulesets.get(h.name),
    )


def _network(address: str) -> str:
    """The prefix of the segment an interface address (with its length) sits on."""
    return str(ipaddress.IPv4Interface(address).network)


def plan_topology(spec: Spec) -> Topology:
    """The lab topology for ``spec`` (what `govcloud lab up` builds)."""
    return lab_topology(make_plan(spec))
