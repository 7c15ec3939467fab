"""Compile the policy to nftables rulesets: one per router, one per host role.

Each ruleset owns one table, ``inet govcloud``, and replaces it atomically (declare, delete,
redefine, all in one transaction); other tables on the host are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from infra.inventory import InvHost
from infra.network.policy import Policy, Rule
from infra.network.zones import EXTRANET, Zone

TABLE = "govcloud"


def _set_name(endpoint: str) -> str:
    if endpoint == "*":
        return "s_extranet"
    return "s_" + "".join(c if c.isalnum() else "_" for c in endpoint)


def _elements(prefixes: Iterable[str]) -> str:
    return ", ".join(sorted(set(prefixes), key=lambda p: (p.split("/")[0], p)))


def _match(rule: Rule, *, with_dst: bool = True) -> str:
    parts = [f"ip saddr @{_set_name(rule.src)}"]
    if with_dst:
        parts.append(f"ip daddr @{_set_name(rule.dst)}")
    if rule.proto == "icmp":
        parts.append("icmp type echo-request")
    elif rule.ports:
        ports = ", ".join(map(str, rule.ports))
        parts.append(f"{rule.proto} dport {{ {ports} }}")
    else:
        parts.append(f"meta l4proto {rule.proto}")
    return " ".join(parts)


def _sets(rules: list[Rule], *, with_dst: bool = True) -> list[str]:
    sets: dict[str, tuple[str, ...]] = {}
    for r in rules:
        sets[r.src] = r.src_prefixes
        if with_dst:
            sets[r.dst] = r.dst_prefixes
    return [
        f"\tset {_set_name(name)} {{\n\t\ttype ipv4_addr\n\t\tflags interval\n"
        f"\t\tauto-merge\n\t\telements = {{ {_elements(prefixes)} }}\n\t}}"
        for name, prefixes in sorted(sets.items())
    ]


def _rule_line(rule: Rule, *, with_dst: bool = True) -> str:
    return f'\t\t{_match(rule, with_dst=with_dst)} {rule.action} comment "{rule.id} {rule.name}"'


def _ruleset(title: str, sets: list[str], chains: list[str]) -> str:
    head = [
        f"# govcloud {title}: generated from the spec by `govcloud plan`; do not edit by hand.",
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
    ]
    return "\n".join(head + sets + chains + ["}", ""])


def _chain(name: str, hook: str, policy: str, lines: list[str]) -> str:
    body = [f"\tchain {name} {{", f"\t\ttype filter hook {hook} priority filter; policy {policy};"]
    return "\n".join(body + lines + ["\t}"])


_STATEFUL = ["\t\tct state established,related accept", "\t\tct state invalid drop"]


def _input_rules(rules: list[Rule], mine: set[str]) -> list[Rule]:
    """Rules whose destination includes one of ``mine`` (addresses with /32)."""
    import ipaddress

    nets = [ipaddress.IPv4Network(a) for a in mine]
    out = []
    for r in rules:
        dsts = [ipaddress.IPv4Network(p) for p in r.dst_prefixes]
        if any(n.subnet_of(d) for n in nets for d in dsts):
            out.append(r)
    return out


def router_ruleset(router: InvHost, policy: Policy) -> str:
    """The forward policy (every rule, default drop) and the router's own input chain."""
    # a router's own services are only what names it: every host (*), its role or itself
    inbound = [r for r in policy.rules if r.dst in ("*", "role:router", f"host:{router.name}")]
    forward = _STATEFUL + [_rule_line(r) for r in policy.rules]
    forward.append('\t\tcounter comment "default deny"')
    input_ = _STATEFUL + ['\t\tiif "lo" accept'] + [_rule_line(r, with_dst=False) for r in inbound]
    sets = _sets(policy.rules)
    return _ruleset(
        f"router {router.name}",
        sets,
        [
            _chain("forward", "forward", "drop", forward),
            _chain("input", "input", "drop", input_),
            _chain("output", "output", "accept", []),
        ],
    )


def role_ruleset(role: str, hosts: list[InvHost], policy: Policy, zones: dict[str, Zone]) -> str:
    """Input filtering for every host of a role: only what the policy lets reach them."""
    mine = {h.address + "/32" for h in hosts}
    inbound = _input_rules(policy.rules, mine)
    # hosts of one role in several zones (the departments' own IaaS hosts): each rule also names
    # its destination, or one department's rule would let its addresses into another's host
    spread = len({h.zone for h in hosts}) > 1
    gateways = sorted({h.gateway for h in hosts if h.gateway})
    lines = [*_STATEFUL, '\t\tiif "lo" accept']
    if gateways:  # the router may check that its hosts are up
        lines.append(f"\t\tip saddr {{ {', '.join(gateways)} }} icmp type echo-request accept")
    lines += [_rule_line(r, with_dst=spread) for r in inbound]
    return _ruleset(
        f"host role {role} ({', '.join(sorted(h.name for h in hosts))})",
        _sets(inbound, with_dst=spread),
        [_chain("input", "input", "drop", lines), _chain("output", "output", "accept", [])],
    )


def compile_rulesets(
    hosts: list[InvHost], policy: Policy, zones: dict[str, Zone]
) -> dict[str, str]:
    """File name (without .nft) → ruleset text: ``<router>`` for routers, ``role-<role>``."""
    out: dict[str, str] = {}
    by_role: dict[str, list[InvHost]] = {}
    for h in hosts:
        if h.role == "router":
            out[h.name] = router_ruleset(h, policy)
        elif zones[h.zone].network == EXTRANET:
            by_role.setdefault(h.role, []).append(h)
    for role, members in sorted(by_role.items()):
        out[f"role-{role}"] = role_ruleset(role, members, policy, zones)
    return out
