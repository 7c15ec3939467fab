"""Security zones of the government network and the data-center segments.

The extranet (政务外网) has its 互联网接入区, 公用网络区, one 专用网络区 segment per department
and a 管理区 (from the 等保 安全管理中心 requirement); the data center adds compute and storage
segments;
the five-level hall LANs form the `sites` zone. The intranet (政务内网) is a separate network with
no route, rule or shared host to the extranet (中办发〔2002〕17号).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from govcloud.errors import PlanError
from govcloud.spec.model import HostRole, Spec
from infra.network.addressing import AddressPlan, cidr, parse_cidr, pow2

ISOLATION_SOURCE = "中办发〔2002〕17号: the intranet and the extranet are physically isolated"

EXTRANET, INTRANET = "extranet", "intranet"


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str  # management, internet-access, public, private, datacenter, sites, intranet
    label: str
    network: str  # extranet or intranet
    prefixes: tuple[str, ...]
    department: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "network": self.network,
            "prefixes": list(self.prefixes),
        }
        if self.department:
            d["department"] = self.department
        return d


#: fixed data-center segments, in the order they take /24s (or the policy's size) of the supernet
FIXED_SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("management", "management", "管理区"),
    ("internet-access", "internet-access", "互联网接入区"),
    ("public", "public", "公用网络区"),
    ("dc-compute", "datacenter", "数据中心计算区"),
    ("dc-storage", "datacenter", "数据中心存储区"),
)

#: the zone each kind of data-center host lives in
ROLE_ZONE: dict[HostRole, str] = {
    HostRole.BASTION: "management",
    HostRole.IDENTITY: "management",
    HostRole.LOG: "management",
    HostRole.HALL: "internet-access",
    HostRole.SHARED: "public",
    HostRole.COMPUTE: "dc-compute",
    HostRole.CONTROL_PLANE: "dc-compute",
    HostRole.REGISTRY: "dc-storage",
    HostRole.STORAGE: "dc-storage",
}


def dept_zone(code: str) -> str:
    return f"dept-{code}"


def plan_zones(
    spec: Spec, addresses: AddressPlan, previous: dict[str, list[str]] | None = None
) -> dict[str, Zone]:
    """Every zone with its prefixes. Segments keep the prefixes of ``previous`` when given."""
    previous = previous or {}
    seg_size = pow2(spec.network.allocation.segment_hosts + 2)
    dc_start, dc_size = parse_cidr(spec.network.supernets.datacenter)
    wanted: list[tuple[str, str, str, str | None]] = [(*seg, None) for seg in FIXED_SEGMENTS]
    wanted += [
        (dept_zone(d.code), "private", f"专用网络区 {d.name}", d.code) for d in spec.departments
    ]
    taken = set()
    for name, *_ in wanted:
        for p in previous.get(name, []):
            taken.add(parse_cidr(p)[0])
    free = (dc_start + i * seg_size for i in range(dc_size // seg_size))
    zones: dict[str, Zone] = {}
    for name, kind, label, dept in wanted:
        held = previous.get(name)
        if held:
            prefix = held[0]
        else:
            start = next((s for s in free if s not in taken), None)
            if start is None:
                raise PlanError(
                    f"address plan exhausted at the data-center level: "
                    f"network.supernets.datacenter {spec.network.supernets.datacenter} holds "
                    f"{dc_size // seg_size} segments of {seg_size} addresses, the spec needs "
                    f"{len(wanted)} ({len(wanted) - dc_size // seg_size} more)"
                )
            prefix = cidr(start, seg_size)
        zones[name] = Zone(name, kind, label, EXTRANET, (prefix,), dept)
    zones["sites"] = Zone(
        "sites",
        "sites",
        "五级政务服务大厅",
        EXTRANET,
        tuple(cidr(*r.block) for r in addresses.roots),
    )
    zones["intranet"] = Zone(
        "intranet", "intranet", "政务内网", INTRANET, (spec.network.supernets.intranet,)
    )
    return zones
