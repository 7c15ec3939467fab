"""The host inventory: every host the cloud needs, with zone, addresses, rack and role.

Routers: ``core`` (the province aggregation and the data-center firewall, gateway of every
data-center segment) and one aggregation router per city. Data-center hosts come from the spec;
departments that deploy on VMs get their hosts in their own private segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from govcloud.spec.model import Spec
from infra.network.addressing import AddressPlan, cidr, parse_cidr
from infra.network.zones import ROLE_ZONE, Zone, dept_zone

FIRST_HOST = 10  # hosts of a segment start at .10; .1 is the router
ADMIN_USER = "ops"  # the administrator account of every host (no root login)


@dataclass(frozen=True)
class Nic:
    segment: str  # zone name, or "site-<code>" / "uplink-<code>" for site networks
    address: str  # with prefix length


@dataclass
class InvHost:
    name: str
    role: str
    zone: str
    address: str  # the address others reach it at (no prefix length)
    nics: list[Nic]
    gateway: str | None = None
    routes: list[tuple[str, str]] = field(default_factory=list)  # (prefix, via)
    rack: str | None = None
    kw: float = 0.0
    forwarding: bool = False
    site: str | None = None  # the site a site router serves

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "zone": self.zone,
            "address": self.address,
            "nics": [{"segment": n.segment, "address": n.address} for n in self.nics],
            "gateway": self.gateway,
            "routes": [list(r) for r in self.routes],
            "rack": self.rack,
            "kw": self.kw,
            "forwarding": self.forwarding,
            "site": self.site,
        }


def _host_addr(prefix: str, index: int) -> str:
    start, _size = parse_cidr(prefix)
    return cidr(start + index, 1).split("/")[0] + "/" + prefix.split("/")[1]


def _plain(addr: str) -> str:
    return addr.split("/")[0]


def plan_inventory(spec: Spec, addresses: AddressPlan, zones: dict[str, Zone]) -> list[InvHost]:
    hosts: list[InvHost] = []
    racks = [r.name for room in spec.datacenter.rooms for r in room.racks]
    next_index: dict[str, int] = {}

    def place(name: str, role: str, zone: str, rack: str | None, kw: float) -> InvHost:
        index = next_index.get(zone, FIRST_HOST)
        next_index[zone] = index + 1
        prefix = zones[zone].prefixes[0]
        nic = Nic(zone, _host_addr(prefix, index))
        return InvHost(
            name,
            role,
            zone,
            _plain(nic.address),
            [nic],
            gateway=_plain(_host_addr(prefix, 1)),
            rack=rack,
            kw=kw,
        )

    # the core router: gateway of every data-center segment and of the province's sites
    core_nics = [
        Nic(z.name, _host_addr(z.prefixes[0], 1))
        for z in zones.values()
        if z.network == "extranet" and z.kind != "sites"
    ]
    core_routes: list[tuple[str, str]] = []
    city_routers: list[InvHost] = []
    for province in addresses.roots:
        core_nics.append(Nic(f"site-{province.code}", cidr(province.lan[0] + 1, province.lan[1])))
        for city in province.children:
            assert city.uplink is not None and city.mgmt is not None
            up = city.uplink[0]
            core_nics.append(Nic(f"uplink-{city.code}", cidr(up, 2)))
            core_routes.append((cidr(*city.block), _plain(cidr(up + 1, 1))))
            city_routers.append(
                InvHost(
                    f"city-{city.code}",
                    "router",
                    "sites",
                    _plain(cidr(city.mgmt[0] + 1, 1)),
                    [
                        Nic(f"uplink-{city.code}", cidr(up + 1, 2)),
                        Nic(f"site-{city.code}", cidr(city.lan[0] + 1, city.lan[1])),
                        Nic(f"mgmt-{city.code}", cidr(city.mgmt[0] + 1, city.mgmt[1])),
                    ],
                    gateway=_plain(cidr(up, 1)),
                    forwarding=True,
                    site=city.code,
                )
            )
    core = InvHost(
        "core",
        "router",
        "management",
        _plain(core_nics[0].address),
        core_nics,
        routes=core_routes,
        rack=racks[0],
        kw=0.3,
        forwarding=True,
        site=addresses.roots[0].code if addresses.roots else None,
    )
    hosts.append(core)
    hosts.extend(city_routers)

    for h in spec.datacenter.hosts:
        hosts.append(place(h.name, h.role.value, ROLE_ZONE[h.role], h.rack, h.kw))
    for d in spec.departments:  # IaaS hosts: a VM department's, or beside a Kubernetes tenant
        for i in range(d.tenant.vm_hosts):
            rack = racks[(len(hosts) + i) % len(racks)]
            hosts.append(place(f"{d.code}-vm-{i + 1}", "vm", dept_zone(d.code), rack, 0.4))
    intranet = zones["intranet"].prefixes[0]
    start, _ = parse_cidr(intranet)
    hosts.append(
        InvHost(
            "intranet-1",
            "intranet",
            "intranet",
            _plain(cidr(start + 10, 1)),
            [Nic("intranet", cidr(start + 10, 256))],
        )
    )
    return hosts


def ansible_group(role: str) -> str:
    """The Ansible group of a role: group names take no dashes (``control-plane`` →
    ``control_plane``)."""
    return role.replace("-", "_")


def ansible_inventory(spec: Spec, hosts: list[InvHost]) -> dict[str, Any]:
    """The inventory as Ansible's YAML inventory structure: one group per role."""
    groups: dict[str, dict[str, Any]] = {}
    for h in hosts:
        if h.zone == "intranet":
            continue  # never managed from the extranet side
        group = groups.setdefault(ansible_group(h.role), {"hosts": {}})
        group["hosts"][h.name] = {
            "ansible_host": h.address,
            "govcloud_zone": h.zone,
            "govcloud_role": h.role,
            **({"govcloud_rack": h.rack} if h.rack else {}),
            **({"govcloud_site": h.site} if h.site else {}),
        }
    return {"all": {"vars": {"govcloud_spec": spec.name}, "children": groups}}
