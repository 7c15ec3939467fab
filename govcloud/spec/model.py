"""The spec: one typed description of the whole cloud.

Shape and field types are checked here (pydantic v2, unknown keys refused); rules that relate one
part of the spec to another (code prefixes, references, capacities, the data-center grade) live in
:mod:`govcloud.spec.checks` so every problem can be reported at once with its path.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

# ---------------------------------------------------------------------------------------------
# small shared types


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


Code = StrictStr  # division codes are strings: YAML must quote them ("52", not 52)
SLUG_PATTERN = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
Slug = Annotated[StrictStr, Field(pattern=SLUG_PATTERN)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]

#: a lower-case DNS name of two labels or more (no wildcard, no trailing dot)
DNS_NAME_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
DnsName = Annotated[StrictStr, Field(pattern=DNS_NAME_PATTERN, max_length=253)]

_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class Level(StrEnum):
    """The five administrative levels a hall can serve."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


LEVELS: tuple[Level, ...] = tuple(Level)
#: digits of an administrative-division code at each level (GB/T 2260 style, extended to
#: township (9) and village (12) as the statistical division codes do)
CODE_DIGITS: dict[Level, int] = {
    Level.PROVINCE: 2,
    Level.CITY: 4,
    Level.COUNTY: 6,
    Level.TOWNSHIP: 9,
    Level.VILLAGE: 12,
}


class HallKind(StrEnum):
    CENTER = "政务服务中心"  # province, city, county
    TOWNSHIP_CENTER = "便民服务中心"  # township
    VILLAGE_STATION = "便民服务站"  # village


#: the hall kind each level runs
HALL_KIND_OF_LEVEL: dict[Level, HallKind] = {
    Level.PROVINCE: HallKind.CENTER,
    Level.CITY: HallKind.CENTER,
    Level.COUNTY: HallKind.CENTER,
    Level.TOWNSHIP: HallKind.TOWNSHIP_CENTER,
    Level.VILLAGE: HallKind.VILLAGE_STATION,
}
#: service windows a hall has when the spec does not say
DEFAULT_WINDOWS: dict[Level, int] = {
    Level.PROVINCE: 120,
    Level.CITY: 60,
    Level.COUNTY: 30,
    Level.TOWNSHIP: 6,
    Level.VILLAGE: 1,
}


# ---------------------------------------------------------------------------------------------
# the region tree


class Hall(_Model):
    kind: HallKind
    windows: NonNegativeInt = 1
    hours: StrictStr = "09:00-17:00"
    departments: list[Slug] = Field(default_factory=list)
    server_name: DnsName | None = None  # its public name at the edge, under tls.edge's domains

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        if not _HOURS.match(v):
            raise ValueError(f'expected opening hours as "HH:MM-HH:MM", got "{v}"')
        start, end = v.split("-")
        if start >= end:
            raise ValueError(f'opening hours must end after they start, got "{v}"')
        return v


class _Site(_Model):
    name: StrictStr = Field(min_length=1)
    population: NonNegativeInt | None = None
    hall: Hall | None = None


class Village(_Site):
    """A village; written either as a mapping or, compactly, as one string "CODE NAME"."""

    code: Code

    @model_validator(mode="before")
    @classmethod
    def _compact(cls, data: Any) -> Any:
        if isinstance(data, str):
            parts = data.split(None, 1)
            if len(parts) != 2:
                raise ValueError(
                    f'expected "CODE NAME" or a mapping with code and name, got "{data}"'
                )
            return {"code": parts[0], "name": parts[1]}
        return data


class Township(_Site):
    code: Code
    villages: list[Village] = Field(default_factory=list)


class County(_Site):
    code: Code
    townships: list[Township] = Field(default_factory=list)


class City(_Site):
    code: Code
    counties: list[County] = Field(default_factory=list)


class Province(_Site):
    """A province; its code is its key under ``regions``."""

    cities: list[City] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# departments


class Environment(StrEnum):
    PROD = "prod"
    TEST = "test"


class DeployKind(StrEnum):
    KUBERNETES = "kubernetes"
    VM = "vm"


class EdgePort(_Model):
    """An app's port the edge (the internet-access zone's hosts) forwards citizens to: a
    NodePort on every node, open to the internet-access zone alone, in the prod namespace."""

    app: Slug
    port: Annotated[int, Field(ge=1, le=65535)]  # the container port
    node_port: Annotated[int, Field(ge=30000, le=32767)]


class Reach(_Model):
    """One of the department's own IaaS hosts its pods may connect to (a database, say)."""

    host: Slug
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(min_length=1)


class TenantSizing(_Model):
    cpu: PositiveFloat  # cores
    memory_gib: PositiveFloat
    storage_gib: PositiveFloat
    environments: list[Environment] = Field(default_factory=lambda: [Environment.PROD])
    deploy: DeployKind = DeployKind.KUBERNETES
    vm_hosts: NonNegativeInt = 0
    edge: list[EdgePort] = Field(default_factory=list)
    reaches: list[Reach] = Field(default_factory=list)


class ServiceItems(_Model):
    administrative: NonNegativeInt = 0  # 行政权力事项
    public_service: NonNegativeInt = 0  # 公共服务事项

    @property
    def total(self) -> int:
        return self.administrative + self.public_service


class SharedService(StrEnum):
    """Services in the public zone that departments may be granted."""

    ONLINE_HALL = "online-hall"  # 网上办事大厅
    EXCHANGE = "exchange"  # 数据共享交换平台
    E_LICENCE = "e-licence"  # 电子证照库
    E_SEAL = "e-seal"  # 电子印章
    PAYMENT = "payment"  # 统一支付


class LicenceHolder(StrEnum):
    """Who holds a licence type, and so which identifier looks it up."""

    CITIZEN = "citizen"  # 18-character citizen ID number (GB 11643)
    ENTERPRISE = "enterprise"  # 18-character unified social credit code (GB 32100)


class LicenceType(_Model):
    """A type of e-licence (电子证照) one department issues into the e-licence library."""

    code: Slug
    name: StrictStr = Field(min_length=1)
    issuer: Slug  # the issuing department's code
    holder: LicenceHolder = LicenceHolder.CITIZEN


class App(_Model):
    name: Slug
    level: Level | None = None  # the hall level it serves, if any


class Department(_Model):
    code: Slug
    name: StrictStr = Field(min_length=1)
    levels: list[Level] = Field(min_length=1)
    items: ServiceItems = Field(default_factory=ServiceItems)
    tenant: TenantSizing
    apps: list[App] = Field(default_factory=list)
    grants: list[SharedService] = Field(default_factory=list)  # shared services it may reach
    # licence types (codes from ``licences``) it may read through the exchange
    licence_reads: list[Slug] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# the data center (GB 50174-2017)


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class Redundancy(StrEnum):
    N = "N"
    N1 = "N+1"
    N2 = "2N"
    N2_1 = "2(N+1)"

    @property
    def spare_units(self) -> str:
        return {"N": "none", "N+1": "one", "2N": "a full set", "2(N+1)": "a full set plus one"}[
            self.value
        ]

    @property
    def rank(self) -> int:
        return {"N": 0, "N+1": 1, "2N": 2, "2(N+1)": 3}[self.value]

    def usable_units(self, units: int) -> int:
        """Units whose capacity may carry load: the rest is the redundancy."""
        spare = {"N": units, "N+1": units - 1, "2N": units // 2, "2(N+1)": units // 2 - 1}
        return max(0, spare[self.value])


class Rack(_Model):
    name: StrictStr = Field(min_length=1)
    kw: PositiveFloat  # power budget of the rack


class Room(_Model):
    name: StrictStr = Field(min_length=1)
    racks: list[Rack] = Field(min_length=1)


class Ups(_Model):
    units: PositiveInt
    unit_kva: PositiveFloat
    power_factor: Annotated[float, Field(gt=0, le=1)] = 0.9
    redundancy: Redundancy
    battery_minutes: PositiveFloat


class Generators(_Model):
    units: NonNegativeInt
    unit_kw: NonNegativeFloat = 0
    redundancy: Redundancy = Redundancy.N
    fuel_hours: NonNegativeFloat = 12


class Power(_Model):
    utility_feeds: PositiveInt
    ups: Ups
    generators: Generators = Field(default_factory=lambda: Generators(units=0))


class Cooling(_Model):
    units: PositiveInt
    unit_kw: PositiveFloat
    redundancy: Redundancy


class ComputePool(_Model):
    vcpus: PositiveInt
    memory_gib: PositiveFloat
    cpu_overcommit: Annotated[float, Field(ge=1, le=16)] = 1.0
    memory_overcommit: Annotated[float, Field(ge=1, le=4)] = 1.0


class StoragePool(_Model):
    capacity_gib: PositiveFloat
    overcommit: Annotated[float, Field(ge=1, le=8)] = 1.0


class Pools(_Model):
    compute: ComputePool
    storage: StoragePool


class HostRole(StrEnum):
    COMPUTE = "compute"
    STORAGE = "storage"
    HALL = "hall"
    IDENTITY = "identity"
    BASTION = "bastion"
    LOG = "log"
    ROUTER = "router"
    SHARED = "shared"  # shared services of the public zone (exchange, e-licence, ...)
    CONTROL_PLANE = "control-plane"  # the tenant cloud's Kubernetes control plane
    REGISTRY = "registry"  # the cloud's OCI image registry


class Host(_Model):
    name: Slug
    role: HostRole
    rack: StrictStr
    kw: PositiveFloat = 0.5  # nameplate draw


class Backups(_Model):
    """Backups of the departments' databases onto the storage hosts (等保 数据备份恢复): taken
    this often by the storage host itself, the newest ``keep`` kept."""

    every_hours: Annotated[int, Field(ge=1, le=168)] = 24
    keep: Annotated[int, Field(ge=1, le=365)] = 14


class DataCenter(_Model):
    name: StrictStr = Field(min_length=1)
    grade: Grade
    rooms: list[Room] = Field(min_length=1)
    power: Power
    cooling: Cooling
    pools: Pools
    hosts: list[Host] = Field(default_factory=list)
    backups: Backups = Field(default_factory=Backups)


# ---------------------------------------------------------------------------------------------
# network, identity, load: typed placeholders the later parts fill in


class Supernets(_Model):
    extranet: StrictStr = "10.0.0.0/8"  # 政务外网
    intranet: StrictStr = "172.16.0.0/12"  # 政务内网 (physically separate)
    datacenter: StrictStr = "10.255.0.0/16"  # data-center segments on the extranet side


DEFAULT_LAN_HOSTS: dict[Level, int] = {
    Level.PROVINCE: 254,
    Level.CITY: 126,
    Level.COUNTY: 62,
    Level.TOWNSHIP: 30,
    Level.VILLAGE: 14,
}


class Allocation(_Model):
    """How the five-level address plan sizes its blocks."""

    headroom: Annotated[float, Field(ge=0, le=4)] = 0.25  # spare share of children, per level
    hall_lan_hosts: dict[Level, PositiveInt] = Field(
        default_factory=lambda: dict(DEFAULT_LAN_HOSTS)
    )  # addresses each hall LAN needs; levels left out keep these defaults
    mgmt_hosts: PositiveInt = 6  # management addresses at each site above the village
    segment_hosts: PositiveInt = 254  # addresses of each data-center segment

    @field_validator("hall_lan_hosts")
    @classmethod
    def _keep_defaults(cls, v: dict[Level, int]) -> dict[Level, int]:
        return {**DEFAULT_LAN_HOSTS, **v}


class Flow(_Model):
    """One allowed flow between zones (everything else is denied)."""

    name: StrictStr
    src: StrictStr
    dst: StrictStr
    proto: Literal["tcp", "udp", "icmp"] = "tcp"
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)
    action: Literal["accept", "drop"] = "accept"


class Network(_Model):
    supernets: Supernets = Field(default_factory=Supernets)
    allocation: Allocation = Field(default_factory=Allocation)
    flows: list[Flow] = Field(default_factory=list)
    links: list[tuple[StrictStr, StrictStr]] = Field(
        default_factory=list, description="extra router links between zones"
    )


class AuthMethod(StrEnum):
    USERPASS = "userpass"
    OIDC = "oidc"
    LDAP = "ldap"


class AdminRoles(_Model):
    """Holders of the separated administrator roles (三权分立)."""

    system: list[Slug] = Field(min_length=1)
    security: list[Slug] = Field(min_length=1)
    audit: list[Slug] = Field(min_length=1)


class Identity(_Model):
    auth_methods: list[AuthMethod] = Field(default_factory=lambda: [AuthMethod.USERPASS])
    admins: AdminRoles
    mfa: bool = True
    ssh_cert_ttl_minutes: Annotated[int, Field(ge=1, le=1440)] = 30
    ssh_cert_max_ttl_minutes: Annotated[int, Field(ge=1, le=1440)] = 120
    token_ttl_minutes: Annotated[int, Field(ge=1, le=1440)] = 60


class TlsRole(_Model):
    """One use of the PKI's certificates: how long they live, which names they may carry."""

    ttl_hours: PositiveInt
    allowed_domains: list[DnsName] = Field(min_length=1)  # the names themselves and below them


class Tls(_Model):
    """Service certificates from OpenBao's PKI (security.pki): the edge's public names and the
    services' own (the hall to PostgreSQL, log shipping), renewed before they run out."""

    max_ttl_hours: PositiveInt = 2160  # no certificate of the PKI lives longer (90 days)
    renew_before: Annotated[float, Field(gt=0, lt=1)] = 0.34  # share of its life left: renew
    edge: TlsRole = Field(
        default_factory=lambda: TlsRole(ttl_hours=720, allowed_domains=["gov.cn"])
    )
    internal: TlsRole = Field(
        default_factory=lambda: TlsRole(ttl_hours=720, allowed_domains=["govcloud.local"])
    )


class Slo(_Model):
    p95_ms: PositiveFloat = 500
    p99_ms: PositiveFloat = 1500
    error_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01


class Load(_Model):
    peak_factor: PositiveFloat = 3.0  # the morning peak against the day's average
    surge_factor: Annotated[float, Field(ge=1, le=50)] = 8.0  # a deadline surge against the peak
    level_mix: dict[Level, NonNegativeFloat] = Field(
        default_factory=lambda: {
            Level.PROVINCE: 0.08,
            Level.CITY: 0.2,
            Level.COUNTY: 0.4,
            Level.TOWNSHIP: 0.22,
            Level.VILLAGE: 0.1,
        }
    )
    slo: dict[Level, Slo] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------


class Cluster(_Model):
    """The tenant cloud's Kubernetes network: pods and Services take addresses outside every
    government-network block (checked against the supernets), one pod subnet per node."""

    pod_cidr: StrictStr = "100.64.0.0/16"
    node_pod_prefix: int = Field(default=24, ge=16, le=28)  # each node's share of pod_cidr
    service_cidr: StrictStr = "100.96.0.0/16"
    dns_domain: StrictStr = "cluster.local"
    registry_name: StrictStr = "registry.govcloud.local"
    # how long a node may be unreachable before its pods are recreated elsewhere
    eviction_seconds: int = Field(default=30, ge=5, le=600)


class Spec(_Model):
    version: Literal[1] = 1
    name: Slug
    regions: dict[StrictStr, Province] = Field(min_length=1)
    departments: list[Department] = Field(min_length=1)
    licences: list[LicenceType] = Field(default_factory=list)  # e-licence types (电子证照)
    datacenter: DataCenter
    network: Network = Field(default_factory=Network)
    identity: Identity
    load: Load = Field(default_factory=Load)
    cluster: Cluster = Field(default_factory=Cluster)
    tls: Tls = Field(default_factory=Tls)

    # -- convenience walks -------------------------------------------------------------------

    def department(self, code: str) -> Department | None:
        for d in self.departments:
            if d.code == code:
                return d
        return None

    def counts(self) -> dict[Level, int]:
        n = dict.fromkeys(LEVELS, 0)
        for province in self.regions.values():
            n[Level.PROVINCE] += 1
            for city in province.cities:
                n[Level.CITY] += 1
                for county in city.counties:
                    n[Level.COUNTY] += 1
                    n[Level.TOWNSHIP] += len(county.townships)
                    for township in county.townships:
                        n[Level.VILLAGE] += len(township.villages)
        return n


def hall_of(site: _Site, level: Level) -> Hall:
    """The hall a site runs: the declared one, or the level's default."""
    if site.hall is not None:
        return site.hall
    return Hall(kind=HALL_KIND_OF_LEVEL[level], windows=DEFAULT_WINDOWS[level])
