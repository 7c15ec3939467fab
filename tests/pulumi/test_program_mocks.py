"""The Pulumi program's resource graph, with the engine mocked (no hosts touched): what each
stack builds, how it is parented, what depends on what."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from govcloud.spec.generate import dump, generate
from infra.mocks import run_program
from infra.settings import Settings
from tests.conftest import LAB_SPEC

pytestmark = pytest.mark.unit


def _name(record: dict[str, Any]) -> str:
    return str(record["name"])


@pytest.fixture(scope="module")
def lab_graph() -> list[dict[str, Any]]:
    return run_program(Settings(LAB_SPEC, "lab"))


@pytest.fixture(scope="module")
def guizhou_graph(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    spec = tmp_path_factory.mktemp("gz") / "guizhou.yaml"
    spec.write_text(dump(generate("guizhou")), encoding="utf-8")
    return run_program(Settings(spec, "hosts"))


def test_lab_graph_counts_per_type(lab_graph: list[dict[str, Any]]) -> None:
    kinds = Counter(r["type"] for r in lab_graph)
    assert kinds["govcloud:index:GovNetwork"] == 1
    assert kinds["govcloud:index:DataCenter"] == 1
    names = {_name(r) for r in lab_graph}
    # 1 province + 2 cities + 4 counties; 3 routers + 10 host roles; 19 hosts; the lab fabric
    assert sum(n.startswith("block-") for n in names) == 7
    assert {"ruleset-core", "ruleset-city-5201", "ruleset-role-hall"} <= names
    assert sum(n.startswith("host-") for n in names) == 19
    assert {"fabric", "site"} <= names


def test_children_are_parented_to_their_component(lab_graph: list[dict[str, Any]]) -> None:
    by_name = {_name(r): r for r in lab_graph}
    network = next(r for r in lab_graph if r["type"] == "govcloud:index:GovNetwork")
    assert "GovNetwork" in by_name["block-520102"]["parent"]
    assert "DataCenter" in by_name["fabric"]["parent"]
    assert "DataCenter" in by_name["site"]["parent"]
    assert network["parent"].endswith("govcloud-test")  # components hang off the stack


def test_site_play_waits_for_the_hosts_and_the_rulesets(lab_graph: list[dict[str, Any]]) -> None:
    site = next(r for r in lab_graph if _name(r) == "site")
    deps = " ".join(site["deps"])
    assert "::fabric" in deps and "::ruleset-core" in deps


def test_province_stack_stays_small_villages_are_data(
    guizhou_graph: list[dict[str, Any]],
) -> None:
    names = [_name(r) for r in guizhou_graph]
    assert len(names) < 1000
    assert sum(n.startswith("block-") for n in names) == 1 + 9 + 88  # no village resource
    assert "fabric" not in names  # existing hosts are registered, not created
    assert sum(n.startswith("host-") for n in names) > 50


def _contents(graph: list[dict[str, Any]]) -> dict[str, str]:
    return {_name(r): r["inputs"].get("content", "") for r in graph if "content" in r["inputs"]}


def test_a_changed_quota_changes_exactly_that_tenant(tmp_path: Path) -> None:
    raw = generate("lab")
    spec = tmp_path / "lab.yaml"
    spec.write_text(dump(raw), encoding="utf-8")
    kubeconfig = tmp_path / "kubeconfig"  # never read: the engine is mocked
    before = run_program(Settings(spec, "hosts", kubeconfig))
    raw["departments"][1]["tenant"]["cpu"] += 1
    spec.write_text(dump(raw), encoding="utf-8")
    after = run_program(Settings(spec, "hosts", kubeconfig))
    old, new = _contents(before), _contents(after)
    assert sum(n.startswith("tenant-") for n in new) == len(raw["departments"])
    changed = sorted(n for n in new if old.get(n) != new[n])
    assert changed == [f"tenant-{raw['departments'][1]['code']}"]


def _play_inputs(graph: list[dict[str, Any]]) -> dict[str, str]:
    return {_name(r): r["inputs"]["inputs"] for r in graph if "inputs" in r["inputs"]}


def test_more_service_items_rerun_the_hall_play_only(tmp_path: Path) -> None:
    raw = generate("lab")
    spec = tmp_path / "lab.yaml"
    spec.write_text(dump(raw), encoding="utf-8")
    before = _play_inputs(run_program(Settings(spec, "lab")))
    raw["departments"][0]["items"]["administrative"] += 40  # more guides in the hall catalog
    spec.write_text(dump(raw), encoding="utf-8")
    after = _play_inputs(run_program(Settings(spec, "lab")))
    assert set(before) == set(after) == {"site", "identity", "cluster", "halls", "logs", "hall-app"}
    assert sorted(n for n in after if before[n] != after[n]) == ["halls"]


def test_a_spec_moved_elsewhere_unchanged_reruns_nothing(tmp_path: Path) -> None:
    """The plays and the identity deployment are diffed on what the spec holds (their inputs'
    digest), not on the path it was read from."""
    from infra.providers.ansible import AnsiblePlayProvider
    from infra.providers.cluster import ClusterDeploymentProvider
    from infra.providers.hallapp import HallAppProvider
    from infra.providers.identity import IdentityDeploymentProvider

    first, second = tmp_path / "a" / "lab.yaml", tmp_path / "b" / "lab.yaml"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(dump(generate("lab")), encoding="utf-8")
    before = {_name(r): r["inputs"] for r in run_program(Settings(first, "lab"))}
    after = {_name(r): r["inputs"] for r in run_program(Settings(second, "lab"))}
    providers = {"site": AnsiblePlayProvider(), "halls": AnsiblePlayProvider(),
                 "logs": AnsiblePlayProvider(),
                 "identity": IdentityDeploymentProvider(),
                 "cluster": ClusterDeploymentProvider(),
                 "hall-app": HallAppProvider()}  # fmt: skip
    for name, provider in providers.items():
        assert before[name]["spec"] != after[name]["spec"]
        assert provider.diff_(before[name], after[name]) == [], name
        edited = {**after[name], "inputs": "another digest"}
        assert provider.diff_(before[name], edited) == ["inputs"], name
