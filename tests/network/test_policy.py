"""Zones, inter-zone policy and its checks, compiled rulesets and the ACL table."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from govcloud.errors import PlanError, SpecError
from govcloud.spec import parse
from infra.plan import make_plan, render_files


def _plan(raw: dict[str, Any]):  # type: ignore[no-untyped-def]
    return make_plan(parse(raw))


@pytest.mark.unit
def test_lab_zones_and_defaults(lab_raw: dict[str, Any]) -> None:
    plan = _plan(lab_raw)
    names = set(plan.zones)
    assert {"management", "internet-access", "public", "dc-compute", "sites", "intranet"} <= names
    assert {f"dept-{d['code']}" for d in lab_raw["departments"]} <= names
    rules = {r.name: r for r in plan.policy.rules}
    ssh = [
        r for r in plan.policy.rules if 22 in r.ports and r.proto == "tcp" and r.action == "accept"
    ]
    # SSH reaches hosts only from the bastion (and operators reach the bastion itself)
    assert {r.name for r in ssh} == {"ssh-from-bastion", "ssh-to-bastion"}
    assert rules["ssh-from-bastion"].src_prefixes == (
        next(h.address for h in plan.hosts if h.role == "bastion") + "/32",
    )
    bao = [r for r in plan.policy.rules if 8200 in r.ports]
    assert {r.src for r in bao} == {"management", "dc"}
    assert all(r.dst == "role:identity" for r in bao)


@pytest.mark.unit
def test_departments_reach_only_their_own_segment_and_grants(lab_raw: dict[str, Any]) -> None:
    plan = _plan(lab_raw)
    for rule in plan.policy.rules:
        if rule.src.startswith("dept-") and rule.dst.startswith("dept-"):
            assert rule.src == rule.dst, rule
    granted = {
        (r.src, r.ports)
        for r in plan.policy.rules
        if r.origin == "grant" and r.dst == "role:shared"
    }
    for d in lab_raw["departments"]:
        has = any(src == f"dept-{d['code']}" for src, _ in granted)
        assert has == bool(d.get("grants")), d["code"]


@pytest.mark.unit
def test_flow_to_the_intranet_is_refused_with_the_source(lab_raw: dict[str, Any]) -> None:
    lab_raw["network"]["flows"] = [
        {"name": "leak", "src": "public", "dst": "intranet", "ports": [443]}
    ]
    with pytest.raises(PlanError) as info:
        _plan(lab_raw)
    [problem] = info.value.problems
    assert problem.path == "network.flows[0]"
    assert "touches the intranet" in problem.message and "中办发〔2002〕17号" in problem.message


@pytest.mark.unit
def test_link_between_intranet_and_extranet_is_refused(lab_raw: dict[str, Any]) -> None:
    lab_raw["network"]["links"] = [["intranet", "management"]]
    with pytest.raises(PlanError) as info:
        _plan(lab_raw)
    assert any(
        p.path == "network.links[0]" and "physically isolated" in p.message
        for p in info.value.problems
    )


@pytest.mark.unit
def test_unknown_zone_names_the_field(lab_raw: dict[str, Any]) -> None:
    lab_raw["network"]["flows"] = [{"name": "x", "src": "dept-nosuch", "dst": "public"}]
    with pytest.raises(PlanError) as info:
        _plan(lab_raw)
    [problem] = info.value.problems
    assert problem.path == "network.flows[0].src"
    assert 'unknown zone "dept-nosuch"' in problem.message


@pytest.mark.unit
def test_allow_shadowed_by_earlier_deny_is_a_warning(lab_raw: dict[str, Any]) -> None:
    lab_raw["network"]["flows"] = [
        {
            "name": "no-web",
            "src": "*",
            "dst": "internet-access",
            "ports": [80, 443],
            "action": "drop",
        },
    ]
    plan = _plan(lab_raw)
    warnings = [str(w) for w in plan.policy.warnings]
    assert any(
        "halls-to-online-hall" in w and "shadowed by the earlier drop rule R001" in w
        for w in warnings
    )


@pytest.mark.unit
def test_b_grade_single_ups_and_single_cooling_refused_with_the_rule(
    lab_raw: dict[str, Any],
) -> None:
    dc = lab_raw["datacenter"]
    dc["power"]["ups"].update(units=1, redundancy="N")
    dc["cooling"].update(units=1, redundancy="N")
    with pytest.raises(SpecError) as info:
        parse(lab_raw)
    msgs = {p.path: p.message for p in info.value.problems}
    assert "ups-redundant" in msgs["datacenter.power.ups.redundancy"]
    assert "GB 50174-2017" in msgs["datacenter.power.ups.redundancy"]
    assert "cooling-redundant" in msgs["datacenter.cooling.redundancy"]


@pytest.mark.unit
def test_capacity_verdicts_cite_clauses_and_catch_an_undersized_ups(
    lab_raw: dict[str, Any],
) -> None:
    ok = _plan(lab_raw).datacenter
    assert ok["ok"] is True
    assert all(v["clause"].startswith("GB 50174-2017") for vs in ok["chains"].values() for v in vs)
    lab_raw["datacenter"]["power"]["ups"]["unit_kva"] = 2  # 2 × 1.8 kW usable for ~6 kW
    bad = _plan(lab_raw).datacenter
    [cap] = [v for v in bad["chains"]["ups"] if v["item"] == "capacity"]
    assert cap["ok"] is False and "1.1 ×" in cap["detail"]
    assert bad["ok"] is False


@pytest.mark.unit
def test_inventory_has_every_needed_host(lab_raw: dict[str, Any]) -> None:
    plan = _plan(lab_raw)
    roles: dict[str, int] = {}
    for h in plan.hosts:
        roles[h.role] = roles.get(h.role, 0) + 1
    assert roles["router"] == 1 + len(lab_raw["regions"]["52"]["cities"])
    assert roles["identity"] == 3 and roles["bastion"] == 1 and roles["log"] == 1
    assert roles["vm"] == 2  # 民政厅 deploys on VMs; 大数据局 keeps the hall's database on one
    addresses = [h.address for h in plan.hosts]
    assert len(addresses) == len(set(addresses))
    files = render_files(plan)
    assert "bastion:" in files["inventory.yml"] and "ansible_host" in files["inventory.yml"]
    assert files["acl.csv"].splitlines()[0].startswith("id,name,origin,action")
    assert files["acl.csv"].rstrip().endswith("0.0.0.0/0")  # the closing default deny


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("nft") is None, reason="nftables is installed by make deps")
@pytest.mark.parametrize("profile", ["lab", "guizhou"])
def test_every_ruleset_passes_nft_check(
    profile: str, lab_raw: dict[str, Any], guizhou_raw: dict[str, Any], tmp_path: Path
) -> None:
    plan = _plan(lab_raw if profile == "lab" else guizhou_raw)
    files = {k: v for k, v in render_files(plan).items() if k.endswith(".nft")}
    assert len(files) >= 5
    for name, text in files.items():
        path = tmp_path / Path(name).name
        path.write_text(text)
        result = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"
