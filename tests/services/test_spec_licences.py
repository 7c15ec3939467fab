"""Licence types and read grants in the spec: what the exchange enforces comes from here."""

from __future__ import annotations

from typing import Any

import pytest

from govcloud.errors import SpecError
from govcloud.spec.load import parse
from govcloud.spec.model import LicenceHolder

pytestmark = pytest.mark.unit


def _problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as err:
        parse(raw)
    return [(p.path, p.message) for p in err.value.problems]


def _index(raw: dict[str, Any], code: str) -> int:
    return next(i for i, d in enumerate(raw["departments"]) if d["code"] == code)


def test_lab_declares_licence_types_with_their_issuers_and_read_grants(
    lab_raw: dict[str, Any],
) -> None:
    spec = parse(lab_raw)
    by_code = {t.code: t for t in spec.licences}
    assert by_code["id-card"].issuer == "gat"
    assert by_code["business-licence"].holder is LicenceHolder.ENTERPRISE
    dsjj = spec.department("dsjj")
    assert dsjj is not None and "business-licence" in dsjj.licence_reads
    rst = spec.department("rst")
    assert rst is not None and not rst.licence_reads  # the department without the grant


def test_a_read_grant_naming_an_unknown_licence_type_is_refused_with_its_path(
    lab_raw: dict[str, Any],
) -> None:
    i = _index(lab_raw, "wjw")
    lab_raw["departments"][i]["licence_reads"].append("passport")
    problems = _problems(lab_raw)
    j = len(lab_raw["departments"][i]["licence_reads"]) - 1
    assert [p for p, _ in problems] == [f"departments[{i}].licence_reads[{j}]"]
    assert 'unknown licence type "passport"' in problems[0][1]


def test_a_grant_naming_an_unknown_service_is_refused_with_its_path(
    lab_raw: dict[str, Any],
) -> None:
    i = _index(lab_raw, "gat")
    lab_raw["departments"][i]["grants"].append("e-stamp")
    problems = _problems(lab_raw)
    assert problems[0][0] == f"departments[{i}].grants[2]"
    assert "'e-stamp'" in problems[0][1] and "e-licence" in problems[0][1]


def test_reading_licences_needs_the_exchange(lab_raw: dict[str, Any]) -> None:
    i = _index(lab_raw, "mzt")
    lab_raw["departments"][i]["grants"] = ["e-licence"]
    assert _problems(lab_raw) == [
        (
            f"departments[{i}].licence_reads",
            'reading licences goes through the exchange: expected "exchange" in the '
            "department's grants",
        )
    ]


def test_an_issuer_must_be_known_and_granted_the_library(lab_raw: dict[str, Any]) -> None:
    lab_raw["licences"][0]["issuer"] = "nosuch"
    k = next(i for i, t in enumerate(lab_raw["licences"]) if t["issuer"] == "scjgj")
    lab_raw["departments"][_index(lab_raw, "scjgj")]["grants"] = []
    lab_raw["licences"].append(dict(lab_raw["licences"][1]))
    paths = [p for p, _ in _problems(lab_raw)]
    assert paths == [
        f"licences[{len(lab_raw['licences']) - 1}].code",
        "licences[0].issuer",
        f"licences[{k}].issuer",
    ]


def test_guizhou_issuers_are_granted_and_readers_hold_the_exchange(
    guizhou_raw: dict[str, Any],
) -> None:
    types = {t["code"]: t["issuer"] for t in guizhou_raw["licences"]}
    assert len(types) == 6
    readers = [d for d in guizhou_raw["departments"] if d.get("licence_reads")]
    assert readers and all("exchange" in d["grants"] for d in readers)
    assert all(
        types[t] != d["code"] for d in readers for t in d["licence_reads"]
    )  # no department is granted its own type: it reads those without the exchange
