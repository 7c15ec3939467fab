"""`govcloud net verify` on the lab of the lab spec: real packets across the planned zones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from govcloud.spec import load_spec
from infra.lab.lab import Lab, status, up
from infra.plan import make_plan
from tests.cli.test_spec_cli import govcloud
from tests.conftest import LAB_SPEC

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_planned_host_runs_and_answers(spec_lab: Any) -> None:
    st = status(spec_lab.name)
    assert {h.name for h in st.hosts} == {h.name for h in spec_lab.hosts}
    assert all(h.state == "RUNNING" for h in st.hosts)
    unreachable = [h.name for h in st.hosts if h.reachable is False]
    assert unreachable == []


def test_second_up_changes_nothing(spec_lab: Any) -> None:
    # earlier tests of the session restart hosts (a node, the storage host, a department's
    # host killed mid-run): the first up puts back what a restart lost, the second has nothing
    up(spec_lab)
    again = [f"{c.kind} {c.name}: {c.action} {c.detail}" for c in up(spec_lab).changes]
    assert [c for c in again if ": unchanged" not in c] == []


def test_net_verify_passes_and_counts_the_flows(spec_lab: Any) -> None:
    result = govcloud("net", "verify", "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 0, doc["mismatches"][:5]
    assert doc["ok"] is True and doc["checked"] > 300
    human = govcloud("net", "verify")
    assert f"{doc['checked']} flows checked: all match the plan" in human.stdout


def test_a_flushed_router_ruleset_fails_verify_naming_the_flow(spec_lab: Any) -> None:
    lab = Lab(spec_lab.name)
    plan = make_plan(load_spec(LAB_SPEC))
    lab.exec("core", ["nft", "flush", "ruleset"])
    try:
        result = govcloud("net", "verify", "--json")
        doc = json.loads(result.stdout)
        assert result.returncode == 1 and doc["ok"] is False
        wrong = {m["flow"]: m for m in doc["mismatches"]}
        # with its own input chain gone the core router answers SSH from anyone; the hosts'
        # rulesets still hold, so nothing else opens
        assert "probe-province → core tcp/22" in wrong
        assert wrong["probe-province → core tcp/22"]["observed"] == "open"
        opened = sorted(f for f, m in wrong.items() if m["observed"] == "open")
        assert all(flow.endswith("→ core tcp/22") for flow in opened), opened
    finally:
        assert lab.load_ruleset("core", plan.rulesets["core"]) == "loaded"
    assert govcloud("net", "verify", "--json").returncode == 0
