"""The verification matrix computed from the policy (the part of net verify that needs no lab)."""

from __future__ import annotations

from typing import Any

import pytest

from govcloud.spec import parse
from infra.lab.from_plan import lab_topology
from infra.lab.netverify import choose
from infra.network.matrix import build_checks
from infra.plan import make_plan

pytestmark = pytest.mark.unit


@pytest.fixture
def checks(lab_raw: dict[str, Any]) -> list[Any]:
    plan = make_plan(parse(lab_raw))
    sources, targets = choose(lab_topology(plan))
    return build_checks(plan.policy.rules, sources, targets)


def test_ssh_opens_only_from_the_bastion(checks: list[Any]) -> None:
    ssh = [c for c in checks if c.port == 22 and c.dst != "intranet-1"]
    assert ssh
    for c in ssh:
        expect = c.src == "bastion" or (c.dst == "bastion" and c.src == "bao-1")
        assert c.expect_open is expect, c.label


def test_intranet_is_closed_from_everywhere(checks: list[Any]) -> None:
    inner = [c for c in checks if c.dst == "intranet-1"]
    assert {c.proto for c in inner} == {"tcp", "icmp"}
    assert not any(c.expect_open for c in inner)
    assert not any(c.expect_open for c in checks if c.src == "intranet-1")


def test_every_level_reaches_the_online_hall_and_nothing_private(checks: list[Any]) -> None:
    for level in ("province", "city", "county", "township", "village"):
        mine = [c for c in checks if c.src == f"probe-{level}"]
        opened = {(c.dst, c.port) for c in mine if c.expect_open}
        assert {("hall-1", 443), ("hall-2", 80)} <= opened
        assert not any(dst in ("mzt-vm-1", "shared-1", "bao-1") for dst, _ in opened)


def test_departments_reach_only_granted_shared_services(
    checks: list[Any], lab_raw: dict[str, Any]
) -> None:
    from govcloud.spec.model import SharedService
    from infra.network.policy import SERVICE_PORTS

    gat = {(c.dst, c.port) for c in checks if c.src == "probe-gat" and c.expect_open}
    assert not any(d == "mzt-vm-1" for d, _ in gat)  # another department's host: nothing
    grants = next(d.get("grants", []) for d in lab_raw["departments"] if d["code"] == "gat")
    want = {SERVICE_PORTS[SharedService(g)][1] for g in grants}
    assert {p for d, p in gat if d == "shared-1"} == want
