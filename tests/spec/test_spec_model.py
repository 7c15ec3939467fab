"""The spec model and its cross-checks, on generated and deliberately broken specs."""

from __future__ import annotations

from typing import Any

import pytest

from govcloud.errors import SpecError
from govcloud.spec import Level, parse
from govcloud.spec.generate import dump, generate
from govcloud.spec.grades import RULES
from govcloud.spec.model import Redundancy

pytestmark = pytest.mark.unit


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(raw)
    return [str(p) for p in info.value.problems]


def test_lab_spec_counts(lab_raw: dict[str, Any]) -> None:
    spec = parse(lab_raw)
    assert spec.counts() == {
        Level.PROVINCE: 1,
        Level.CITY: 2,
        Level.COUNTY: 4,
        Level.TOWNSHIP: 8,
        Level.VILLAGE: 16,
    }
    assert len(spec.departments) == 6
    assert spec.datacenter.grade.value == "B"


def test_guizhou_spec_is_real_scale(guizhou_raw: dict[str, Any]) -> None:
    spec = parse(guizhou_raw)
    counts = spec.counts()
    assert (counts[Level.CITY], counts[Level.COUNTY]) == (9, 88)
    assert (counts[Level.TOWNSHIP], counts[Level.VILLAGE]) == (1521, 17342)
    assert len(spec.departments) == 59
    assert sum(d.items.administrative for d in spec.departments) == 1337
    assert sum(d.items.public_service for d in spec.departments) == 236


def test_generators_are_deterministic() -> None:
    assert dump(generate("lab")) == dump(generate("lab"))
    assert dump(generate("guizhou", scale=0.1)) == dump(generate("guizhou", scale=0.1))
    assert dump(generate("guizhou", scale=0.1)) != dump(generate("guizhou", scale=0.1, seed=7))


def test_village_compact_and_mapping_forms_agree(lab_raw: dict[str, Any]) -> None:
    town = lab_raw["regions"]["52"]["cities"][0]["counties"][0]["townships"][0]
    first = town["villages"][0]
    town["villages"][0] = f"{first['code']} {first['name']}"
    spec = parse(lab_raw)
    village = spec.regions["52"].cities[0].counties[0].townships[0].villages[0]
    assert (village.code, village.name) == (first["code"], first["name"])


def test_wrong_code_prefix_names_the_path(lab_raw: dict[str, Any]) -> None:
    lab_raw["regions"]["52"]["cities"][1]["code"] = "5301"
    msgs = problems_of(lab_raw)
    assert 'regions.52.cities[1].code: expected a 4-digit code starting with 52, got "5301"' in msgs


def test_duplicate_code_points_at_first_use(lab_raw: dict[str, Any]) -> None:
    county = lab_raw["regions"]["52"]["cities"][0]["counties"][0]
    county["townships"][1]["code"] = county["townships"][0]["code"]
    for v in county["townships"][1]["villages"]:
        v["code"] = county["townships"][0]["code"] + v["code"][9:]
    msgs = problems_of(lab_raw)
    assert any(
        m.startswith("regions.52.cities[0].counties[0].townships[1].code: duplicate code")
        and "first used at regions.52.cities[0].counties[0].townships[0].code" in m
        for m in msgs
    )


def test_unknown_department_in_hall(lab_raw: dict[str, Any]) -> None:
    lab_raw["regions"]["52"]["hall"]["departments"].append("nosuch")
    msgs = problems_of(lab_raw)
    assert any(m.startswith("regions.52.hall.departments[6]: unknown department") for m in msgs)


def test_quota_over_the_pools(lab_raw: dict[str, Any]) -> None:
    lab_raw["departments"][0]["tenant"]["cpu"] = 1000
    msgs = problems_of(lab_raw)
    assert any(m.startswith("departments[*].tenant.cpu: tenant quotas add up to") for m in msgs)


def test_b_grade_with_n_only_ups_cites_the_clause(lab_raw: dict[str, Any]) -> None:
    lab_raw["datacenter"]["power"]["ups"]["redundancy"] = "N"
    msgs = problems_of(lab_raw)
    [msg] = [m for m in msgs if m.startswith("datacenter.power.ups.redundancy")]
    assert "grade B requires UPS configured N+1 or better" in msg
    assert "GB 50174-2017" in msg


def test_redundancy_needs_enough_units(lab_raw: dict[str, Any]) -> None:
    lab_raw["datacenter"]["cooling"]["units"] = 1
    msgs = problems_of(lab_raw)
    assert "datacenter.cooling.units: expected at least 2 units for redundancy N+1, got 1" in msgs


def test_every_problem_is_reported_at_once(lab_raw: dict[str, Any]) -> None:
    lab_raw["regions"]["52"]["cities"][0]["code"] = "5301"
    lab_raw["departments"][1]["tenant"]["memory_gib"] = 10_000
    lab_raw["datacenter"]["cooling"]["redundancy"] = "N"
    lab_raw["identity"]["admins"]["audit"] = ["sysadmin"]
    msgs = problems_of(lab_raw)
    heads = {m.split(":")[0] for m in msgs}
    assert {
        "regions.52.cities[0].code",
        "departments[*].tenant.memory_gib",
        "datacenter.cooling.redundancy",
        "identity.admins.audit[0]",
    } <= heads


def test_missing_field_and_wrong_type(lab_raw: dict[str, Any]) -> None:
    del lab_raw["datacenter"]["grade"]
    lab_raw["departments"][0]["tenant"]["cpu"] = "lots"
    lab_raw["regions"]["52"]["cities"][0]["code"] = 5201
    msgs = problems_of(lab_raw)
    assert "datacenter.grade: required field is missing" in msgs
    assert any(m.startswith("departments[0].tenant.cpu: expected a valid number") for m in msgs)
    assert any(m.startswith("regions.52.cities[0].code: expected a string (quote it") for m in msgs)


def test_unknown_field_is_refused(lab_raw: dict[str, Any]) -> None:
    lab_raw["datacenter"]["grdae"] = "B"
    assert any(m.startswith("datacenter.grdae: unknown field") for m in problems_of(lab_raw))


def test_intranet_overlapping_extranet_is_refused(lab_raw: dict[str, Any]) -> None:
    lab_raw["network"]["supernets"]["intranet"] = "10.20.0.0/16"
    msgs = problems_of(lab_raw)
    assert any(m.startswith("network.supernets.intranet: the intranet") for m in msgs)


@pytest.mark.parametrize(
    ("redundancy", "units", "usable"),
    [("N", 3, 3), ("N+1", 3, 2), ("2N", 4, 2), ("2(N+1)", 6, 2), ("N+1", 1, 0)],
)
def test_usable_units(redundancy: str, units: int, usable: int) -> None:
    assert Redundancy(redundancy).usable_units(units) == usable


def test_every_grade_rule_names_its_clause_and_unverified_ones_say_so() -> None:
    for rule in RULES:
        assert "GB 50174-2017" in rule.clause
        assert ("UNVERIFIED" in rule.source) is (not rule.verified)
