"""Inter-zone policy: default deny, the allowed flows as data, and the checks on them.

Endpoints of a flow: a zone name, ``host:NAME``, ``role:ROLE``, ``dc`` (every data-center
segment) or ``*`` (every extranet zone). The intranet may appear in no flow and no link.
Rules from the spec come first (so a spec ``drop`` can narrow a default), then the defaults,
then the shared-service grants of each department.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from govcloud.errors import PlanError, Problem
from govcloud.spec.model import Department, Flow, SharedService, Spec
from infra.inventory import InvHost
from infra.network.cluster import CLUSTER_FLOWS
from infra.network.traffic import first_matches, rule_box
from infra.network.zones import EXTRANET, INTRANET, ISOLATION_SOURCE, Zone, dept_zone

#: where each shared service listens
SERVICE_PORTS: dict[SharedService, tuple[str, int]] = {
    SharedService.ONLINE_HALL: ("internet-access", 443),
    SharedService.EXCHANGE: ("role:shared", 9443),
    SharedService.E_LICENCE: ("role:shared", 9444),
    SharedService.E_SEAL: ("role:shared", 9445),
    SharedService.PAYMENT: ("role:shared", 9446),
}
OPENBAO_PORTS = (8200, 8201)
LOG_TLS_PORT = 6514  # syslog over TLS (RFC 5425): the roles logship and loghost

DEFAULT_FLOWS: tuple[Flow, ...] = (
    Flow(name="halls-to-online-hall", src="sites", dst="internet-access", ports=[80, 443]),
    Flow(name="ssh-from-bastion", src="role:bastion", dst="*", ports=[22]),
    Flow(name="ssh-to-bastion", src="management", dst="role:bastion", ports=[22]),
    Flow(
        name="openbao-from-management",
        src="management",
        dst="role:identity",
        ports=list(OPENBAO_PORTS),
    ),
    Flow(name="openbao-from-dc-hosts", src="dc", dst="role:identity", ports=[OPENBAO_PORTS[0]]),
    # syslog over TLS (RFC 5425) only: plain TCP and UDP 514 are not opened
    Flow(name="logs-to-loghost", src="*", dst="role:log", ports=[LOG_TLS_PORT]),
    Flow(name="ping-from-management", src="management", dst="*", proto="icmp"),
)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    origin: str  # spec, default, grant or tenant
    src: str
    dst: str
    src_prefixes: tuple[str, ...]
    dst_prefixes: tuple[str, ...]
    proto: str
    ports: tuple[int, ...]
    action: str
    path: str | None = None  # where the spec declares it

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "origin": self.origin,
            "src": self.src,
            "dst": self.dst,
            "src_prefixes": list(self.src_prefixes),
            "dst_prefixes": list(self.dst_prefixes),
            "proto": self.proto,
            "ports": list(self.ports),
            "action": self.action,
        }


@dataclass
class Policy:
    rules: list[Rule]
    warnings: list[Problem]  # rules that never match because earlier ones reverse them
    notes: list[Problem] = field(default_factory=list)  # partial overlaps, redundant rules


class _Resolver:
    def __init__(self, zones: dict[str, Zone], hosts: list[InvHost]) -> None:
        self.zones = zones
        self.hosts = {h.name: h for h in hosts}
        self.roles: dict[str, list[str]] = {}
        for h in hosts:
            self.roles.setdefault(h.role, []).append(h.name)

    def expected(self) -> str:
        fixed = sorted(n for n, z in self.zones.items() if z.department is None)
        return f"a zone ({', '.join(fixed)}, dept-<code>), host:NAME, role:ROLE, dc or *"

    def networks(self, endpoint: str) -> set[str] | None:
        """The networks an endpoint names ({"extranet"} / {"intranet"}), None if unknown."""
        if endpoint in ("*", "dc"):
            return {EXTRANET}
        if endpoint.startswith("host:"):
            h = self.hosts.get(endpoint[5:])
            return {self.zones[h.zone].network} if h else None
        if endpoint.startswith("role:"):
            names = self.roles.get(endpoint[5:])
            return {self.zones[self.hosts[n].zone].network for n in names} if names else None
        z = self.zones.get(endpoint)
        return {z.network} if z else None

    def prefixes(self, endpoint: str) -> tuple[str, ...]:
        if endpoint == "*":
            return tuple(
                p for z in self.zones.values() if z.network == EXTRANET for p in z.prefixes
            )
        if endpoint == "dc":
            return tuple(
                p
                for z in self.zones.values()
                if z.network == EXTRANET and z.kind != "sites"
                for p in z.prefixes
            )
        if endpoint.startswith("host:"):
            return (self.hosts[endpoint[5:]].address + "/32",)
        if endpoint.startswith("role:"):
            return tuple(self.hosts[n].address + "/32" for n in self.roles[endpoint[5:]])
        return self.zones[endpoint].prefixes


def _describe(rules: list[Rule]) -> str:
    """Rules named in a message: 'drop rule R009 (x)', 'drop rules R001 (x) and R002 (y)'
    or, with mixed actions, 'rules R001 (x, drop) and R002 (y, accept)'."""
    actions = {r.action for r in rules}
    if len(actions) == 1:
        named = [f"{r.id} ({r.name})" for r in rules]
        head = f"{rules[0].action} rule{'s' if len(rules) > 1 else ''}"
    else:
        named = [f"{r.id} ({r.name}, {r.action})" for r in rules]
        head = "rules"
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f"{head} {listed}"


def check_overlaps(rules: list[Rule]) -> tuple[list[Problem], list[Problem]]:
    """Warnings and notes about rules that earlier rules take traffic from (first match wins).

    A rule whose every packet (source, destination, protocol, port) an earlier rule matches,
    or several earlier rules together, never matches. That is a warning when one of those
    earlier rules has the other action (the rule's intent is reversed), a note when they all
    have its action (it is only redundant). A rule of which an earlier rule of the other action
    takes only part, as a drop of SSH narrows an accept of every TCP port, is a note.
    """
    warnings: list[Problem] = []
    notes: list[Problem] = []
    boxes = [rule_box(r.src_prefixes, r.dst_prefixes, r.proto, r.ports) for r in rules]
    for j, later in enumerate(rules):
        where = later.path or f"{later.origin} flow {later.name}"
        taken, all_of_it = first_matches(boxes[j], boxes[:j])
        takers = [rules[i] for i in taken]
        opposed = [r for r in takers if r.action != later.action]
        subject = f"{later.action} rule {later.id} ({later.name})"
        if all_of_it and opposed:
            together = " (together they match all its traffic)" if len(takers) > 1 else ""
            warnings.append(
                Problem(
                    where,
                    f"{subject} is shadowed by the earlier {_describe(takers)}{together} "
                    "and never matches",
                )
            )
        elif all_of_it:
            notes.append(
                Problem(
                    where,
                    f"{subject} is redundant: the earlier {_describe(takers)} already "
                    f"{later.action}{'' if len(takers) > 1 else 's'} all its traffic",
                )
            )
        elif opposed:
            notes.append(
                Problem(
                    where,
                    f"{subject} partly overlaps the earlier {_describe(opposed)}, "
                    f"which {'match' if len(opposed) > 1 else 'matches'} that part of "
                    "its traffic first",
                )
            )
    return warnings, notes


POSTGRES_PORT = 5432
EDGE_FLOW_PREFIX = "edge-to-"  # a tenant's edge port: the cluster's NodePort, not a host's listener


def tenant_flows(d: Department, index: int, storage: bool = False) -> list[tuple[Flow, str]]:
    """What a department's tenant declares it needs of the network: the edge reaching its
    apps' node ports on the nodes, its pods (leaving the nodes with the node's address) reaching
    its own IaaS hosts; with ``storage`` hosts in the plan, they reach a reached host's
    PostgreSQL to take its backups."""
    path = f"departments[{index}].tenant"
    out = [
        (
            Flow(
                name=f"{EDGE_FLOW_PREFIX}{d.code}-{e.app}",
                src="internet-access",
                dst="role:compute",
                ports=[e.node_port],
            ),
            f"{path}.edge[{j}]",
        )
        for j, e in enumerate(d.tenant.edge)
    ]
    out += [
        (
            Flow(
                name=f"{d.code}-pods-to-{r.host}",
                src="role:compute",
                dst=f"host:{r.host}",
                ports=list(r.ports),
            ),
            f"{path}.reaches[{j}]",
        )
        for j, r in enumerate(d.tenant.reaches)
    ]
    out += [
        (
            Flow(
                name=f"backups-from-{r.host}",
                src="role:storage",
                dst=f"host:{r.host}",
                ports=[POSTGRES_PORT],
            ),
            f"{path}.reaches[{j}]",
        )
        for j, r in enumerate(d.tenant.reaches)
        if storage and POSTGRES_PORT in r.ports
    ]
    return out


def plan_policy(spec: Spec, zones: dict[str, Zone], hosts: list[InvHost]) -> Policy:
    res = _Resolver(zones, hosts)
    problems: list[Problem] = []
    flows: list[tuple[Flow, str, str | None]] = [
        (f, "spec", f"network.flows[{i}]") for i, f in enumerate(spec.network.flows)
    ]
    flows += [(f, "default", None) for f in DEFAULT_FLOWS]
    if any(h.role == "control-plane" for h in hosts):
        flows += [(f, "default", None) for f in CLUSTER_FLOWS]
    for d in spec.departments:
        zone = dept_zone(d.code)
        # a department's hosts talk freely among themselves, except SSH (only from the bastion)
        flows.append(
            (
                Flow(
                    name=f"{d.code}-internal-no-ssh", src=zone, dst=zone, ports=[22], action="drop"
                ),
                "grant",
                None,
            )
        )
        flows.append((Flow(name=f"{d.code}-internal", src=zone, dst=zone), "grant", None))
        storage = any(h.role == "storage" for h in hosts)
        flows += [
            (f, "tenant", path) for f, path in tenant_flows(d, spec.departments.index(d), storage)
        ]
        for service in d.grants:
            dst, port = SERVICE_PORTS[service]
            flows.append(
                (
                    Flow(
                        name=f"{d.code}-to-{service.value}",
                        src=dept_zone(d.code),
                        dst=dst,
                        ports=[port],
                    ),
                    "grant",
                    None,
                )
            )

    for i, (a, b) in enumerate(spec.network.links):
        nets = [res.networks(a), res.networks(b)]
        for end, value, n in (("0", a, nets[0]), ("1", b, nets[1])):
            if n is None:
                problems.append(
                    Problem(
                        f"network.links[{i}][{end}]",
                        f'unknown zone "{value}" (expected {res.expected()})',
                    )
                )
        if nets[0] and nets[1] and nets[0] != nets[1]:
            problems.append(
                Problem(
                    f"network.links[{i}]",
                    f"a link between {a} and {b} would connect the intranet "
                    f"(政务内网) to the extranet [{ISOLATION_SOURCE}]",
                )
            )

    rules: list[Rule] = []
    for flow, origin, path in flows:
        where = path or f"{origin} flow {flow.name}"
        ok = True
        ends: dict[str, set[str]] = {}
        for end in ("src", "dst"):
            value = getattr(flow, end)
            found = res.networks(value)
            if found is None:
                problems.append(
                    Problem(f"{where}.{end}", f'unknown zone "{value}" (expected {res.expected()})')
                )
                ok = False
            else:
                ends[end] = found
        if not ok:
            continue
        if INTRANET in ends["src"] | ends["dst"]:
            problems.append(
                Problem(
                    where,
                    f"flow {flow.name} ({flow.src} → {flow.dst}) touches "
                    f"the intranet (政务内网); no flow may cross into or "
                    f"out of it [{ISOLATION_SOURCE}]",
                )
            )
            continue
        if flow.proto == "icmp" and flow.ports:
            problems.append(Problem(f"{where}.ports", "expected no ports for icmp"))
            continue
        src_p, dst_p = res.prefixes(flow.src), res.prefixes(flow.dst)
        if not src_p or not dst_p:
            continue  # a role with no host: nothing to allow
        rules.append(
            Rule(
                f"R{len(rules) + 1:03d}",
                flow.name,
                origin,
                flow.src,
                flow.dst,
                src_p,
                dst_p,
                flow.proto,
                tuple(flow.ports),
                flow.action,
                path,
            )
        )
    if problems:
        raise PlanError(problems, title="the network policy is refused")

    warnings, notes = check_overlaps(rules)
    return Policy(rules, warnings, notes)


def acl_rows(policy: Policy) -> list[dict[str, str]]:
    """The vendor-neutral ACL table: one row per rule, prefixes joined with spaces."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "origin": r.origin,
            "action": r.action,
            "proto": r.proto,
            "ports": " ".join(map(str, r.ports)) or "any",
            "src": r.src,
            "src_prefixes": " ".join(r.src_prefixes),
            "dst": r.dst,
            "dst_prefixes": " ".join(r.dst_prefixes),
        }
        for r in policy.rules
    ] + [
        {
            "id": "R999",
            "name": "default-deny",
            "origin": "default",
            "action": "drop",
            "proto": "any",
            "ports": "any",
            "src": "*",
            "src_prefixes": "0.0.0.0/0",
            "dst": "*",
            "dst_prefixes": "0.0.0.0/0",
        }
    ]
