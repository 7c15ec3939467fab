"""Which rules earlier rules take traffic from: full, partial and no overlap (first match wins).

A rule is shadowed only when earlier rules, one or several together, match every packet it
matches (sources, destinations, protocol, ports); partial overlaps are notes, not warnings.
"""

from __future__ import annotations

from typing import Any

import pytest

from govcloud.spec import parse
from infra.network.policy import Rule, check_overlaps
from infra.network.traffic import Box, first_matches, port_spans, rule_box, spans, subtract
from infra.plan import make_plan

pytestmark = pytest.mark.unit

NET = "10.1.0.0/24"
HOST = "10.1.0.7/32"
OTHER = "10.2.0.0/24"


def rule(
    n: int,
    *,
    action: str = "accept",
    proto: str = "tcp",
    ports: tuple[int, ...] = (),
    src: tuple[str, ...] = (NET,),
    dst: tuple[str, ...] = (NET,),
) -> Rule:
    return Rule(f"R{n:03d}", f"r{n}", "spec", "a", "b", src, dst, proto, ports, action)


def check(*rules: Rule) -> tuple[list[str], list[str]]:
    warnings, notes = check_overlaps(list(rules))
    return [str(w) for w in warnings], [str(n) for n in notes]


# -- full overlap: a warning ---------------------------------------------------------------------


def test_an_accept_of_ssh_after_a_drop_of_every_tcp_port_is_shadowed() -> None:
    warnings, notes = check(rule(1, action="drop"), rule(2, ports=(22,)))
    assert warnings == [
        "spec flow r2: accept rule R002 (r2) is shadowed by the earlier drop rule R001 (r1) "
        "and never matches"
    ]
    assert notes == []


def test_a_port_range_inside_a_wider_range_is_shadowed() -> None:
    wide = rule(1, action="drop", ports=tuple(range(1000, 3001)))
    narrow = rule(2, ports=tuple(range(1500, 2001)))
    warnings, _ = check(wide, narrow)
    assert len(warnings) == 1 and "R001" in warnings[0]


def test_a_host_inside_a_dropped_network_is_shadowed() -> None:
    warnings, _ = check(rule(1, action="drop", ports=(443,)), rule(2, src=(HOST,), ports=(443,)))
    assert len(warnings) == 1


def test_protocol_any_shadows_every_protocol() -> None:
    drop_all = rule(1, action="drop", proto="any")
    later = [rule(2, ports=(22,)), rule(3, proto="udp"), rule(4, proto="icmp"), rule(5)]
    warnings, _ = check(drop_all, *later)
    assert [w.split(": ")[0] for w in warnings] == [f"spec flow r{n}" for n in (2, 3, 4, 5)]


def test_protocol_any_with_ports_shadows_tcp_and_udp_on_those_ports_only() -> None:
    drop = rule(1, action="drop", proto="any", ports=(53,))
    warnings, _ = check(drop, rule(2, proto="udp", ports=(53,)), rule(3, ports=(53,)))
    assert len(warnings) == 2
    warnings, notes = check(drop, rule(2, proto="icmp"), rule(3, proto="udp", ports=(53, 54)))
    assert warnings == []
    assert len(notes) == 1 and notes[0].startswith("spec flow r3: accept rule R003 (r3) partly")


def test_several_earlier_rules_together_shadow_a_rule() -> None:
    low = rule(1, action="drop", ports=tuple(range(1, 1024)))
    high = rule(2, action="drop", ports=tuple(range(1024, 65536)))
    icmp = rule(3, action="drop", proto="icmp")
    warnings, _ = check(low, high, icmp, rule(4, ports=(80, 8080)))
    assert warnings == [
        "spec flow r4: accept rule R004 (r4) is shadowed by the earlier drop rules R001 (r1) "
        "and R002 (r2) (together they match all its traffic) and never matches"
    ]
    # halves of the source network, dropped by two rules, cover the whole network
    halves = (
        rule(1, action="drop", src=("10.1.0.0/25",), ports=(22,)),
        rule(2, action="drop", src=("10.1.0.128/25",), ports=(22,)),
    )
    warnings, _ = check(*halves, rule(3, ports=(22,)))
    assert len(warnings) == 1 and "R001 (r1) and R002 (r2)" in warnings[0]


def test_mixed_actions_covering_a_rule_are_named_with_their_actions() -> None:
    warnings, _ = check(
        rule(1, action="drop", ports=(22,)),
        rule(2, action="accept", ports=tuple(range(23, 100))),
        rule(3, action="drop", ports=tuple(range(22, 100))),
    )
    assert warnings == [
        "spec flow r3: drop rule R003 (r3) is shadowed by the earlier rules R001 (r1, drop) "
        "and R002 (r2, accept) (together they match all its traffic) and never matches"
    ]


def test_a_rule_covered_by_rules_of_its_own_action_is_a_redundant_note() -> None:
    warnings, notes = check(rule(1), rule(2, ports=(22,)))
    assert warnings == []
    assert notes == [
        "spec flow r2: accept rule R002 (r2) is redundant: the earlier accept rule R001 (r1) "
        "already accepts all its traffic"
    ]


# -- partial overlap: a note, never a warning ----------------------------------------------------


def test_a_drop_of_ssh_before_an_accept_of_every_tcp_port_only_narrows_it() -> None:
    warnings, notes = check(rule(1, action="drop", ports=(22,)), rule(2))
    assert warnings == []
    assert notes == [
        "spec flow r2: accept rule R002 (r2) partly overlaps the earlier drop rule R001 (r1), "
        "which matches that part of its traffic first"
    ]


@pytest.mark.parametrize(
    "earlier",
    [
        rule(1, action="drop", ports=tuple(range(1000, 2001))),  # a port range, half the ports
        rule(1, action="drop", ports=tuple(range(1, 2001)), src=(HOST,)),  # one source host
        rule(1, action="drop", proto="any", ports=(1500,)),  # any with one port
        rule(1, action="drop", ports=tuple(range(1, 65536)), dst=("10.1.0.0/25",)),
    ],
)
def test_partial_overlaps_are_notes(earlier: Rule) -> None:
    warnings, notes = check(earlier, rule(2, ports=tuple(range(1500, 3001))))
    assert warnings == []
    assert len(notes) == 1 and "partly overlaps the earlier drop rule R001" in notes[0]


def test_a_gap_in_the_union_of_earlier_rules_leaves_the_rule_matching() -> None:
    warnings, notes = check(
        rule(1, action="drop", ports=tuple(range(1, 80))),
        rule(2, action="drop", ports=tuple(range(81, 65536))),
        rule(3, ports=(79, 80, 81)),
    )
    assert warnings == []
    assert notes == [
        "spec flow r3: accept rule R003 (r3) partly overlaps the earlier drop rules R001 (r1) "
        "and R002 (r2), which match that part of its traffic first"
    ]


def test_an_earlier_rule_that_takes_nothing_left_is_not_named() -> None:
    # R002 drops only what R001 already accepted: it is shadowed and takes nothing from R003
    warnings, notes = check(
        rule(1, ports=(22,)), rule(2, action="drop", ports=(22,)), rule(3, ports=(22, 23))
    )
    assert warnings == [
        "spec flow r2: drop rule R002 (r2) is shadowed by the earlier accept rule R001 (r1) "
        "and never matches"
    ]
    assert notes == []


# -- no overlap ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "earlier",
    [
        rule(1, action="drop", ports=(22,)),  # another port
        rule(1, action="drop", ports=tuple(range(1, 443))),  # a range ending just below
        rule(1, action="drop", proto="udp"),  # another protocol
        rule(1, action="drop", proto="icmp"),
        rule(1, action="drop", proto="any", ports=(22,)),
        rule(1, action="drop", src=(OTHER,)),  # other sources
        rule(1, action="drop", dst=(OTHER,)),  # other destinations
    ],
)
def test_disjoint_rules_give_nothing(earlier: Rule) -> None:
    assert check(earlier, rule(2, ports=(443, 8443))) == ([], [])


# -- the sets underneath -------------------------------------------------------------------------


def test_span_arithmetic() -> None:
    assert spans([(5, 9), (1, 3), (4, 4), (20, 30), (25, 26)]) == ((1, 9), (20, 30))
    assert subtract(((1, 100),), ((10, 20), (50, 60), (100, 200))) == (
        (1, 9),
        (21, 49),
        (61, 99),
    )
    assert subtract(((1, 5), (10, 15)), ((3, 12),)) == ((1, 2), (13, 15))
    assert port_spans([22, 23, 24, (100, 200), 201]) == ((22, 24), (100, 201))
    assert port_spans([]) == ((0, 65535),)


def test_box_difference_is_exact() -> None:
    box = rule_box([NET], [NET], "tcp", [])
    hole = rule_box([HOST], [NET], "tcp", [22])  # 1 source × 256 destinations × 1 port
    parts = box.minus(hole)
    assert sum(_size(p) for p in parts) == _size(box) - 256
    assert all(p.meet(hole).empty for p in parts)
    assert all(a.meet(b).empty for i, a in enumerate(parts) for b in parts[i + 1 :])
    assert first_matches(box, [rule_box([NET], [NET], "any", [])]) == ([0], True)
    assert first_matches(box, [hole]) == ([0], False)
    with pytest.raises(ValueError, match="icmp has no ports"):
        rule_box([NET], [NET], "icmp", [1])


def _size(box: Box) -> int:
    total = 1
    for axis in box.axes:
        total *= sum(hi - lo + 1 for lo, hi in axis)
    return total


# -- the lab spec --------------------------------------------------------------------------------


def test_the_lab_policy_has_no_shadow_warnings_and_notes_each_ssh_drop(
    lab_raw: dict[str, Any],
) -> None:
    policy = make_plan(parse(lab_raw)).policy
    assert policy.warnings == []
    narrowed = [n.path for n in policy.notes if "partly overlaps" in n.message]
    assert narrowed == [f"grant flow {d['code']}-internal" for d in lab_raw["departments"]]
