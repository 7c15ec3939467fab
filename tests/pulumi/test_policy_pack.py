"""The policy pack's rules: each passes the real plan and rejects a crafted violation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from govcloud.spec import load_spec
from infra.plan import make_plan
from security.policy.rules import (
    RULES,
    no_clear_secrets,
    no_intranet_flow,
    ssh_only_from_bastion,
    tenants_restricted,
    two_audit_devices,
)
from tests.conftest import LAB_SPEC

pytestmark = pytest.mark.unit

T = "pulumi-python:dynamic:Resource"


@pytest.fixture(scope="module")
def policy_props() -> dict[str, Any]:
    plan = make_plan(load_spec(LAB_SPEC))
    return {
        "kind": "policy",
        "summary": {
            "rules": [r.as_dict() for r in plan.policy.rules],
            "intranet": plan.spec.network.supernets.intranet,
            "bastion": [h.address for h in plan.hosts if h.role == "bastion"],
        },
    }


def test_the_planned_policy_passes_every_rule(policy_props: dict[str, Any]) -> None:
    for name, (rule, _) in RULES.items():
        assert rule(T, policy_props) == [], name


def test_a_flow_into_the_intranet_is_rejected(policy_props: dict[str, Any]) -> None:
    bad = copy.deepcopy(policy_props)
    bad["summary"]["rules"].append(
        {
            "id": "R900",
            "name": "leak",
            "action": "accept",
            "proto": "tcp",
            "ports": [443],
            "src": "public",
            "dst": "x",
            "src_prefixes": ["10.255.2.0/24"],
            "dst_prefixes": ["172.16.0.0/24"],
        }
    )
    assert no_intranet_flow(T, bad) == ["rule R900 (leak) reaches the intranet 172.16.0.0/12"]


def test_ssh_from_elsewhere_is_rejected(policy_props: dict[str, Any]) -> None:
    bad = copy.deepcopy(policy_props)
    bad["summary"]["rules"].append(
        {
            "id": "R901",
            "name": "ops-ssh",
            "action": "accept",
            "proto": "tcp",
            "ports": [22],
            "src": "management",
            "dst": "*",
            "src_prefixes": ["10.255.0.0/24"],
            "dst_prefixes": ["10.255.3.0/24"],
        }
    )
    assert ssh_only_from_bastion(T, bad) == ["rule R901 (ops-ssh) allows SSH from management"]


def test_one_audit_device_is_rejected() -> None:
    assert two_audit_devices(T, {"kind": "openbao", "summary": {"audit_devices": 2}}) == []
    assert two_audit_devices(T, {"kind": "openbao", "summary": {"audit_devices": 1}})


def test_a_baseline_namespace_is_rejected() -> None:
    ok = {"kind": "tenant", "summary": {"pod_security": {"gat-prod": "restricted"}}}
    assert tenants_restricted(T, ok) == []
    bad = {"kind": "tenant", "summary": {"pod_security": {"gat-prod": "baseline"}}}
    assert tenants_restricted(T, bad) == [
        "namespace gat-prod enforces 'baseline', not 'restricted'"
    ]


def test_a_clear_secret_is_rejected_and_a_pulumi_secret_is_not() -> None:
    assert no_clear_secrets(T, {"summary": {"root_token": "s.abc"}}) == [
        "summary.root_token holds a secret in clear"
    ]
    wrapped = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "value": "s.abc",
    }
    assert no_clear_secrets(T, {"summary": {"root_token": wrapped}}) == []
    assert no_clear_secrets(T, {"token_ttl_minutes": 30}) == []
