"""Check characters of the holder identifiers (GB 11643, GB 32100) and the exchange's small
pure parts: case codes, grants, the audit reader."""

from __future__ import annotations

import json

import pytest

from clusters.apps.elicence.ids import (
    BadIdentifier,
    check_citizen_id,
    check_credit_code,
    check_holder,
    make_citizen_id,
    make_credit_code,
)
from clusters.apps.exchange.app import valid_case_code
from clusters.apps.exchange.auditlog import Record, mask
from clusters.apps.exchange.grants import Grants
from security.audit.exchange import build, holder_digest

pytestmark = pytest.mark.unit


def test_the_standards_examples_pass() -> None:
    assert check_citizen_id("11010519491231002X") == "11010519491231002X"
    assert check_citizen_id("11010519491231002x") == "11010519491231002X"
    assert check_credit_code("91350100M000100Y43") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("110105194912310021", "check character"),
        ("11010519491231002", "18 characters"),
        ("1101051949123100AX", "17 digits"),
        ("110105194913310028", "date of birth"),
        ("11010518000101002Y", "digit or X"),
    ],
)
def test_malformed_citizen_ids_are_refused_saying_why(value: str, why: str) -> None:
    with pytest.raises(BadIdentifier, match=why):
        check_citizen_id(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("91350100M000100Y44", "check character"),
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000I00Y43", "without I, O, Z, S, V"),
        ("9135A100M000100Y43", "division code"),
    ],
)
def test_malformed_credit_codes_are_refused_saying_why(value: str, why: str) -> None:
    with pytest.raises(BadIdentifier, match=why):
        check_credit_code(value)


def test_every_single_character_change_of_an_id_is_caught() -> None:
    good = make_citizen_id("520102", "19900101", 7)
    assert check_citizen_id(good) == good
    for i in range(17):
        for d in "0123456789":
            if d == good[i]:
                continue
            bad = good[:i] + d + good[i + 1 :]
            with pytest.raises(BadIdentifier):
                check_citizen_id(bad)


def test_made_credit_codes_are_valid_and_one_change_is_caught() -> None:
    for n in range(0, 10_000, 97):
        code = make_credit_code("520102", n)
        assert check_credit_code(code) == code
        last = code[-1]
        other = "1" if last != "1" else "2"
        with pytest.raises(BadIdentifier):
            check_credit_code(code[:-1] + other)


def test_holder_kind_picks_the_check() -> None:
    assert check_holder("enterprise", "91350100M000100Y43")
    with pytest.raises(BadIdentifier):
        check_holder("enterprise", "11010519491231002X")
    with pytest.raises(BadIdentifier, match="unknown holder kind"):
        check_holder("robot", "x")


def case_code(seq: int = 1) -> str:
    body = f"520102000000{20261201:08d}{seq:010d}"
    return next(body + d for d in "0123456789" if valid_case_code(body + d))


def test_case_codes_need_31_digits_and_their_check() -> None:
    code = case_code(5)
    assert len(code) == 31 and valid_case_code(code)
    assert not valid_case_code(code[:-1] + str((int(code[-1]) + 1) % 10))
    assert not valid_case_code(code[:-1])
    assert not valid_case_code("")


def test_grants_allow_the_issuer_and_the_granted_only() -> None:
    g = Grants.parse(
        {
            "types": {"id-card": {"issuer": "gat", "holder": "citizen"}},
            "reads": {"wjw": ["id-card"]},
        }
    )
    assert g.allows("gat", "id-card") and g.allows("wjw", "id-card")
    assert not g.allows("rst", "id-card") and not g.allows("wjw", "passport")
    with pytest.raises(ValueError, match="unknown licence types"):
        Grants.parse({"types": {}, "reads": {"wjw": ["id-card"]}})


def test_the_audit_reader_summarises_served_and_refused_by_case() -> None:
    holder = "11010519491231002X"
    lines = [
        json.dumps(
            Record("wjw", "app-wjw", "gat", "id-card", holder, "C1", "served", 200, "granted",
                   ["gat-id-card-1"]).as_json()
        ),
        json.dumps(
            Record("rst", "app-rst", "gat", "id-card", holder, "C2", "refused", 403,
                   "not granted").as_json()
        ),
        "not json",
    ]  # fmt: skip
    whole = build(lines)
    assert whole.served == {"wjw -> gat/id-card": 1}
    assert whole.refused == {"rst -> gat/id-card: not granted": 1}
    assert whole.malformed == 1
    one = build(lines, case="C2")
    assert [r["caller"] for r in one.records] == ["rst"]
    assert one.records[0]["holder_masked"] == mask(holder) == "110105**********2X"
    assert build(lines, holder=holder.lower()).entries == 2
    assert holder not in "".join(lines) and holder_digest(holder) in lines[0]


def test_the_exchange_accepts_the_case_codes_the_hall_makes() -> None:
    from clusters.apps.hall.codes import make_case_code

    for seq in range(0, 5000, 37):
        code = make_case_code("520102", "20261201", seq)
        assert valid_case_code(code)
        assert not valid_case_code(code[:-1] + str((int(code[-1]) + 3) % 10))
