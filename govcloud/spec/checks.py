"""Cross-checks: rules that relate one part of the spec to another.

Every check appends :class:`~govcloud.errors.Problem` entries with the path of the offending field;
nothing stops at the first problem.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from govcloud.errors import Problem
from govcloud.spec.grades import MIN_UNITS, rules_for
from govcloud.spec.model import (
    CODE_DIGITS,
    HALL_KIND_OF_LEVEL,
    DataCenter,
    Department,
    Hall,
    HostRole,
    Level,
    SharedService,
    Spec,
)


def check(spec: Spec) -> list[Problem]:
    problems: list[Problem] = []
    dept_codes = _check_departments(spec.departments, problems)
    _check_regions(spec, dept_codes, problems)
    _check_licences(spec, dept_codes, problems)
    _check_datacenter(spec.datacenter, problems)
    _check_quotas(spec, problems)
    _check_network(spec, problems)
    _check_cluster(spec, problems)
    _check_identity(spec, problems)
    _check_tls(spec, problems)
    _check_load(spec, problems)
    return problems


# ---------------------------------------------------------------------------------------------


def _check_departments(departments: list[Department], out: list[Problem]) -> set[str]:
    seen: dict[str, int] = {}
    for i, d in enumerate(departments):
        path = f"departments[{i}]"
        if d.code in seen:
            out.append(
                Problem(
                    f"{path}.code",
                    f'duplicate department code "{d.code}", '
                    f"first used at departments[{seen[d.code]}]",
                )
            )
        else:
            seen[d.code] = i
        for j, app in enumerate(d.apps):
            if app.level is not None and app.level not in d.levels:
                out.append(
                    Problem(
                        f"{path}.apps[{j}].level",
                        f"expected one of the levels the department serves "
                        f"({', '.join(lv.value for lv in d.levels)}), "
                        f'got "{app.level.value}"',
                    )
                )
        if d.tenant.deploy.value == "vm" and d.tenant.vm_hosts == 0:
            out.append(
                Problem(
                    f"{path}.tenant.vm_hosts",
                    "expected at least 1 when the department deploys on VMs, got 0",
                )
            )
    return set(seen)


def _check_licences(spec: Spec, depts: set[str], out: list[Problem]) -> None:
    """Licence types name a known issuer that reaches the e-licence library; a department's
    read grants name known licence types and come with the exchange, the one way to read them."""
    types = _duplicates(
        ((f"licences[{i}].code", t.code) for i, t in enumerate(spec.licences)),
        "licence type",
        out,
    )
    for i, t in enumerate(spec.licences):
        issuer = spec.department(t.issuer)
        if issuer is None:
            out.append(
                Problem(
                    f"licences[{i}].issuer",
                    f'unknown department "{t.issuer}" (expected a code from departments)',
                )
            )
        elif SharedService.E_LICENCE not in issuer.grants:
            out.append(
                Problem(
                    f"licences[{i}].issuer",
                    f'department "{t.issuer}" issues licences but is not granted '
                    '"e-licence" (add it to its grants)',
                )
            )
    for i, d in enumerate(spec.departments):
        for j, code in enumerate(d.licence_reads):
            if code not in types:
                known = ", ".join(sorted(types)) or "none declared"
                out.append(
                    Problem(
                        f"departments[{i}].licence_reads[{j}]",
                        f'unknown licence type "{code}" (expected a code from licences: {known})',
                    )
                )
        if d.licence_reads and SharedService.EXCHANGE not in d.grants:
            out.append(
                Problem(
                    f"departments[{i}].licence_reads",
                    'reading licences goes through the exchange: expected "exchange" in '
                    "the department's grants",
                )
            )


def _code_problem(path: str, level: Level, parent: str | None, code: str) -> Problem | None:
    digits = CODE_DIGITS[level]
    if (
        len(code) == digits
        and code.isascii()
        and code.isdigit()
        and (parent is None or code.startswith(parent))
    ):
        return None
    under = f" starting with {parent}" if parent else ""
    return Problem(path, f'expected a {digits}-digit code{under}, got "{code}"')


def _check_hall(
    path: str, hall: Hall | None, level: Level, depts: set[str], out: list[Problem]
) -> None:
    if hall is None:
        return
    want = HALL_KIND_OF_LEVEL[level]
    if hall.kind != want:
        out.append(
            Problem(
                f"{path}.hall.kind",
                f'expected "{want.value}" for a {level.value} hall, got "{hall.kind.value}"',
            )
        )
    for k, code in enumerate(hall.departments):
        if code not in depts:
            out.append(
                Problem(
                    f"{path}.hall.departments[{k}]",
                    f'unknown department "{code}" (expected a code from departments)',
                )
            )


def _check_regions(spec: Spec, depts: set[str], out: list[Problem]) -> None:
    first_use: dict[str, str] = {}

    def unique(path: str, code: str) -> None:
        if code in first_use:
            out.append(Problem(path, f'duplicate code "{code}", first used at {first_use[code]}'))
        else:
            first_use[code] = path

    for pcode, province in spec.regions.items():
        ppath = f"regions.{pcode}"
        if (p := _code_problem(ppath, Level.PROVINCE, None, pcode)) is not None:
            out.append(p)
        _check_hall(ppath, province.hall, Level.PROVINCE, depts, out)
        for ci, city in enumerate(province.cities):
            cpath = f"{ppath}.cities[{ci}]"
            if (p := _code_problem(f"{cpath}.code", Level.CITY, pcode, city.code)) is not None:
                out.append(p)
            unique(f"{cpath}.code", city.code)
            _check_hall(cpath, city.hall, Level.CITY, depts, out)
            for ki, county in enumerate(city.counties):
                kpath = f"{cpath}.counties[{ki}]"
                if (
                    p := _code_problem(f"{kpath}.code", Level.COUNTY, city.code, county.code)
                ) is not None:
                    out.append(p)
                unique(f"{kpath}.code", county.code)
                _check_hall(kpath, county.hall, Level.COUNTY, depts, out)
                for ti, town in enumerate(county.townships):
                    tpath = f"{kpath}.townships[{ti}]"
                    if (
                        p := _code_problem(f"{tpath}.code", Level.TOWNSHIP, county.code, town.code)
                    ) is not None:
                        out.append(p)
                    unique(f"{tpath}.code", town.code)
                    _check_hall(tpath, town.hall, Level.TOWNSHIP, depts, out)
                    tcode = town.code
                    for vi, village in enumerate(town.villages):
                        vcode = village.code
                        # the common case is checked inline: this loop runs for every village
                        if not (
                            len(vcode) == 12
                            and vcode.startswith(tcode)
                            and vcode.isdigit()
                            and vcode.isascii()
                        ) and (
                            p := _code_problem(
                                f"{tpath}.villages[{vi}].code", Level.VILLAGE, tcode, vcode
                            )
                        ):
                            out.append(p)
                        unique(f"{tpath}.villages[{vi}].code", vcode)
                        if village.hall is not None:
                            _check_hall(
                                f"{tpath}.villages[{vi}]", village.hall, Level.VILLAGE, depts, out
                            )


# ---------------------------------------------------------------------------------------------


def _duplicates(names: Iterable[tuple[str, str]], what: str, out: list[Problem]) -> set[str]:
    seen: dict[str, str] = {}
    for path, name in names:
        if name in seen:
            out.append(Problem(path, f'duplicate {what} "{name}", first used at {seen[name]}'))
        else:
            seen[name] = path
    return set(seen)


def _check_datacenter(dc: DataCenter, out: list[Problem]) -> None:
    base = "datacenter"
    racks = _duplicates(
        (
            (f"{base}.rooms[{i}].racks[{j}].name", r.name)
            for i, room in enumerate(dc.rooms)
            for j, r in enumerate(room.racks)
        ),
        "rack name",
        out,
    )
    _duplicates(
        ((f"{base}.rooms[{i}].name", r.name) for i, r in enumerate(dc.rooms)), "room name", out
    )
    _duplicates(
        ((f"{base}.hosts[{i}].name", h.name) for i, h in enumerate(dc.hosts)), "host name", out
    )
    for i, h in enumerate(dc.hosts):
        if h.rack not in racks:
            out.append(
                Problem(
                    f"{base}.hosts[{i}].rack",
                    f'unknown rack "{h.rack}" (expected a rack declared under rooms)',
                )
            )
    for chain, units, red in (
        ("power.ups", dc.power.ups.units, dc.power.ups.redundancy),
        ("cooling", dc.cooling.units, dc.cooling.redundancy),
    ):
        need = MIN_UNITS[red]
        if units < need:
            out.append(
                Problem(
                    f"{base}.{chain}.units",
                    f"expected at least {need} units for redundancy {red.value}, got {units}",
                )
            )
    gens = dc.power.generators
    if gens.units and gens.units < MIN_UNITS[gens.redundancy]:
        out.append(
            Problem(
                f"{base}.power.generators.units",
                f"expected at least {MIN_UNITS[gens.redundancy]} units for redundancy "
                f"{gens.redundancy.value}, got {gens.units}",
            )
        )
    for rule in rules_for(dc.grade):
        if not rule.holds(dc):
            out.append(
                Problem(
                    f"{base}.{rule.path}",
                    f"grade {dc.grade.value} requires {rule.requirement} "
                    f"[{rule.id}; {rule.source}]",
                )
            )


def _check_quotas(spec: Spec, out: list[Problem]) -> None:
    pools = spec.datacenter.pools
    cpu = sum(d.tenant.cpu for d in spec.departments)
    mem = sum(d.tenant.memory_gib for d in spec.departments)
    disk = sum(d.tenant.storage_gib for d in spec.departments)
    limits = (
        (
            "departments[*].tenant.cpu",
            cpu,
            pools.compute.vcpus * pools.compute.cpu_overcommit,
            "datacenter.pools.compute.vcpus × cpu_overcommit",
            "vCPU",
        ),
        (
            "departments[*].tenant.memory_gib",
            mem,
            pools.compute.memory_gib * pools.compute.memory_overcommit,
            "datacenter.pools.compute.memory_gib × memory_overcommit",
            "GiB",
        ),
        (
            "departments[*].tenant.storage_gib",
            disk,
            pools.storage.capacity_gib * pools.storage.overcommit,
            "datacenter.pools.storage.capacity_gib × overcommit",
            "GiB",
        ),
    )
    for path, used, cap, capname, unit in limits:
        if used > cap + 1e-9:
            out.append(
                Problem(
                    path,
                    f"tenant quotas add up to {used:g} {unit}, more than the "
                    f"pool allows ({capname} = {cap:g} {unit})",
                )
            )


def _check_network(spec: Spec, out: list[Problem]) -> None:
    nets = {}
    for name in ("extranet", "intranet", "datacenter"):
        value = getattr(spec.network.supernets, name)
        try:
            nets[name] = ipaddress.IPv4Network(value)
        except ValueError as exc:
            out.append(
                Problem(
                    f"network.supernets.{name}",
                    f'expected an IPv4 prefix such as "10.0.0.0/8", got "{value}" ({exc})',
                )
            )
    if "intranet" in nets:
        for other in ("extranet", "datacenter"):
            if other in nets and nets["intranet"].overlaps(nets[other]):
                out.append(
                    Problem(
                        "network.supernets.intranet",
                        f"the intranet (政务内网) must not overlap the {other} "
                        f"({nets['intranet']} overlaps {nets[other]}): the two are "
                        "physically isolated",
                    )
                )
    if (
        "extranet" in nets
        and "datacenter" in nets
        and nets["extranet"].overlaps(nets["datacenter"])
        and not nets["datacenter"].subnet_of(nets["extranet"])
    ):
        out.append(
            Problem(
                "network.supernets.datacenter",
                "expected the data-center supernet inside the extranet or apart from it",
            )
        )


def _check_cluster(spec: Spec, out: list[Problem]) -> None:
    """Pod and Service addresses: valid, apart from each other and from every government-network
    block (a pod address that is also a hall's would be routed to the wrong place)."""
    c = spec.cluster
    nets: dict[str, ipaddress.IPv4Network] = {}
    for name in ("pod_cidr", "service_cidr"):
        value = getattr(c, name)
        try:
            nets[name] = ipaddress.IPv4Network(value)
        except ValueError as exc:
            out.append(
                Problem(
                    f"cluster.{name}",
                    f'expected an IPv4 prefix such as "100.64.0.0/16", got "{value}" ({exc})',
                )
            )
    if "pod_cidr" in nets and nets["pod_cidr"].prefixlen > c.node_pod_prefix:
        out.append(
            Problem(
                "cluster.node_pod_prefix",
                f"each node's pod subnet (/{c.node_pod_prefix}) must fit in cluster.pod_cidr "
                f"({nets['pod_cidr']})",
            )
        )
    if "service_cidr" in nets and nets["service_cidr"].prefixlen < 12:
        out.append(
            Problem("cluster.service_cidr", "expected a /12 or smaller (the API server's limit)")
        )
    if len(nets) == 2 and nets["pod_cidr"].overlaps(nets["service_cidr"]):
        out.append(Problem("cluster.service_cidr", "must not overlap cluster.pod_cidr"))
    for name, net in nets.items():
        for block in ("extranet", "intranet", "datacenter"):
            value = getattr(spec.network.supernets, block)
            try:
                other = ipaddress.IPv4Network(value)
            except ValueError:
                continue  # reported by the network checks
            if net.overlaps(other):
                out.append(
                    Problem(
                        f"cluster.{name}",
                        f"{net} overlaps the {block} supernet ({other}): pod and Service "
                        "addresses must lie outside every government-network block",
                    )
                )
    nodes = sum(1 for h in spec.datacenter.hosts if h.role is HostRole.COMPUTE)
    planes = sum(1 for h in spec.datacenter.hosts if h.role is HostRole.CONTROL_PLANE)
    if "pod_cidr" in nets and nets["pod_cidr"].prefixlen <= c.node_pod_prefix:
        room = 2 ** (c.node_pod_prefix - nets["pod_cidr"].prefixlen)
        if nodes > room:
            out.append(
                Problem(
                    "cluster.pod_cidr",
                    f"{nets['pod_cidr']} holds {room} node subnets of /{c.node_pod_prefix}, "
                    f"fewer than the {nodes} compute hosts",
                )
            )
    if planes and not any(h.role is HostRole.REGISTRY for h in spec.datacenter.hosts):
        out.append(
            Problem(
                "datacenter.hosts",
                "a cloud with a control-plane host needs a registry host (role: registry) "
                "for its nodes to pull images from",
            )
        )
    if planes > 1:
        out.append(
            Problem(
                "datacenter.hosts",
                f"expected at most one control-plane host, got {planes} (one etcd member "
                "and API server per cloud for now)",
            )
        )
    _check_tenant_paths(spec, planes > 0, out)


def _check_tenant_paths(spec: Spec, cluster: bool, out: list[Problem]) -> None:
    """A tenant's edge ports and reached hosts: a cloud to run on, node ports used once, only
    the department's own IaaS hosts reached."""
    taken: dict[int, str] = {}
    for i, d in enumerate(spec.departments):
        path = f"departments[{i}].tenant"
        if (d.tenant.edge or d.tenant.reaches) and not cluster:
            out.append(
                Problem(
                    path,
                    "edge ports and reached hosts need the cloud's Kubernetes cluster "
                    "(a control-plane host in datacenter.hosts)",
                )
            )
        for j, e in enumerate(d.tenant.edge):
            if e.node_port in taken:
                out.append(
                    Problem(
                        f"{path}.edge[{j}].node_port",
                        f"node port {e.node_port} is already taken by {taken[e.node_port]}",
                    )
                )
            taken.setdefault(e.node_port, f"{path}.edge[{j}]")
        own = {f"{d.code}-vm-{n + 1}" for n in range(d.tenant.vm_hosts)}
        for j, r in enumerate(d.tenant.reaches):
            if r.host not in own:
                out.append(
                    Problem(
                        f"{path}.reaches[{j}].host",
                        f"expected one of the department's own IaaS hosts "
                        f"({', '.join(sorted(own)) or 'none: set tenant.vm_hosts'}), "
                        f'got "{r.host}"',
                    )
                )


def _check_identity(spec: Spec, out: list[Problem]) -> None:
    ident = spec.identity
    roles = {
        "system": ident.admins.system,
        "security": ident.admins.security,
        "audit": ident.admins.audit,
    }
    holder: dict[str, str] = {}
    for role, people in roles.items():
        for i, person in enumerate(people):
            if person in holder and holder[person] != role:
                out.append(
                    Problem(
                        f"identity.admins.{role}[{i}]",
                        f'"{person}" already holds the {holder[person]} administrator '
                        "role; system, security and audit administrators must be "
                        "different people (三权分立, GB/T 22239-2019 grade 3)",
                    )
                )
            holder.setdefault(person, role)
    if ident.ssh_cert_ttl_minutes > ident.ssh_cert_max_ttl_minutes:
        out.append(
            Problem(
                "identity.ssh_cert_ttl_minutes",
                f"expected at most ssh_cert_max_ttl_minutes "
                f"({ident.ssh_cert_max_ttl_minutes}), got {ident.ssh_cert_ttl_minutes}",
            )
        )


def hall_server_names(spec: Spec) -> list[tuple[str, str]]:
    """``(path, name)`` of every hall that declares its public name, in spec order."""
    out: list[tuple[str, str]] = []

    def add(path: str, hall: Hall | None) -> None:
        if hall is not None and hall.server_name is not None:
            out.append((f"{path}.hall.server_name", hall.server_name))

    for pcode, province in spec.regions.items():
        ppath = f"regions.{pcode}"
        add(ppath, province.hall)
        for ci, city in enumerate(province.cities):
            cpath = f"{ppath}.cities[{ci}]"
            add(cpath, city.hall)
            for ki, county in enumerate(city.counties):
                kpath = f"{cpath}.counties[{ki}]"
                add(kpath, county.hall)
                for ti, town in enumerate(county.townships):
                    tpath = f"{kpath}.townships[{ti}]"
                    add(tpath, town.hall)
                    for vi, village in enumerate(town.villages):
                        if village.hall is not None:
                            add(f"{tpath}.villages[{vi}]", village.hall)
    return out


def under_domains(name: str, domains: Iterable[str]) -> bool:
    """``name`` is one of ``domains`` or a name below one of them (label-wise, not by suffix:
    ``evilgov.cn`` is not under ``gov.cn``)."""
    return any(name == d or name.endswith("." + d) for d in domains)


def _check_tls(spec: Spec, out: list[Problem]) -> None:
    tls = spec.tls
    for role in ("edge", "internal"):
        ttl = getattr(tls, role).ttl_hours
        if ttl > tls.max_ttl_hours:
            out.append(
                Problem(
                    f"tls.{role}.ttl_hours",
                    f"expected at most tls.max_ttl_hours ({tls.max_ttl_hours}), the PKI's "
                    f"maximum, got {ttl}",
                )
            )
    allowed = tls.edge.allowed_domains
    first: dict[str, str] = {}
    for path, name in hall_server_names(spec):
        if not under_domains(name, allowed):
            out.append(
                Problem(
                    path,
                    f"expected a name under tls.edge.allowed_domains ({', '.join(allowed)}), "
                    f'got "{name}"',
                )
            )
        if name in first:
            out.append(Problem(path, f'duplicate hall name "{name}", first used at {first[name]}'))
        else:
            first[name] = path


def _check_load(spec: Spec, out: list[Problem]) -> None:
    total = sum(spec.load.level_mix.values())
    if abs(total - 1.0) > 0.01:
        out.append(Problem("load.level_mix", f"expected shares that add up to 1, got {total:g}"))
