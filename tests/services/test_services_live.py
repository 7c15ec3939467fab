"""The e-licence library and the exchange with real components: PostgreSQL, an OpenBao dev
server holding the departments' identities and seal keys, both apps as processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clusters.apps.elicence.ids import make_citizen_id, make_credit_code
from clusters.apps.elicence.seal import verify
from security.audit.exchange import build
from security.openbao.seals import SEAL_MOUNT
from tests.services.conftest import Shared, request
from tests.services.test_ids import case_code

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITIZEN = make_citizen_id("520102", "19900101", 11)
COMPANY = make_credit_code("520102", 4242)


def _id_card(shared: Shared, holder: str = CITIZEN) -> dict[str, object]:
    status, body = shared.issue(
        "gat",
        {
            "type": "id-card",
            "holder": holder,
            "holder_name": "张三",
            "data": {"address": "贵阳市西响区", "issued_by": "贵阳市公安局"},
            "valid_until": "2036-01-01",
        },
    )
    assert status == 201, body
    return dict(body)


def _count(shared: Shared) -> int:
    return int(shared.sql("SELECT count(*) FROM licences")[0][0])


def _audit(shared: Shared, case: str) -> list[dict[str, object]]:
    with open(shared.services.audit_file, encoding="utf-8") as fh:
        return build(fh, case=case).records


def test_granted_department_reads_a_sealed_licence_that_verifies_offline(shared: Shared) -> None:
    lic = _id_card(shared)
    case = case_code(1)
    status, body = shared.read("wjw", "id-card", CITIZEN, case)  # wjw: licence_reads id-card
    assert status == 200, body
    assert [x["number"] for x in body["licences"]] == [lic["number"]]
    served = body["licences"][0]
    _, keys = request("GET", shared.library + "/api/seal-keys")
    key = keys["keys"]["gat"]
    assert key["type"] == "ed25519"
    assert verify(served["payload"].encode(), served["seal"], key)
    assert json.loads(served["payload"])["holder"]["id"] == CITIZEN
    # one byte changed anywhere fails verification
    raw = bytearray(served["payload"].encode())
    for i in (0, len(raw) // 2, len(raw) - 2):
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        assert not verify(bytes(tampered), served["seal"], key)
    records = _audit(shared, case)
    assert [(r["caller"], r["owner"], r["decision"], r["case_code"]) for r in records] == [
        ("wjw", "gat", "served", case)
    ]
    assert records[0]["licences"] == [lic["number"]]
    assert records[0]["caller_entity"] != "-"


def test_a_department_without_the_grant_is_refused_and_recorded(shared: Shared) -> None:
    _id_card(shared)
    case = case_code(2)
    # rst issues social-security cards but holds no exchange grant in the spec
    status, body = shared.read("rst", "id-card", CITIZEN, case)
    assert status == 403, body
    assert "rst is not granted licence type id-card" in body["error"]
    # gat holds the exchange but not business-licence
    status, body = shared.read("gat", "business-licence", COMPANY, case)
    assert status == 403, body
    records = _audit(shared, case)
    assert [(r["caller"], r["owner"], r["type_code"], r["decision"]) for r in records] == [
        ("rst", "gat", "id-card", "refused"),
        ("gat", "scjgj", "business-licence", "refused"),
    ]
    rows = shared.sql(
        f"SELECT caller, decision, status FROM exchange_log WHERE case_code = '{case}' ORDER BY id"
    )
    assert rows == [("rst", "refused", 403), ("gat", "refused", 403)]


def test_calls_without_a_valid_token_or_case_code_are_refused_and_recorded(
    shared: Shared,
) -> None:
    case = case_code(3)
    assert shared.read(None, "id-card", CITIZEN, case)[0] == 401
    assert shared.read("not-a-token", "id-card", CITIZEN, case)[0] == 401
    status, body = shared.read("wjw", "id-card", CITIZEN, case[:-1] + "x")
    assert status == 400 and "X-Case-Code" in body["error"]
    assert [(r["caller"], r["status"]) for r in _audit(shared, case)] == [("-", 401), ("-", 401)]


def test_only_the_issuing_department_can_seal(shared: Shared) -> None:
    before = _count(shared)
    status, body = shared.issue(
        "wjw", {"type": "id-card", "holder": CITIZEN, "holder_name": "李四", "data": {}}
    )
    assert status == 403 and "only the issuing department (gat)" in body["error"]
    assert _count(shared) == before


def test_a_revoked_licence_is_not_served(shared: Shared) -> None:
    holder = make_citizen_id("520103", "19851212", 3)
    lic = _id_card(shared, holder)
    number = lic["number"]
    auth = {"Authorization": f"Bearer {shared.tokens['wjw']}"}
    status, _ = request(
        "POST", f"{shared.library}/api/licences/{number}/revoke", {"reason": "x"}, auth
    )
    assert status == 403  # another department cannot revoke it
    auth = {"Authorization": f"Bearer {shared.tokens['gat']}"}
    status, body = request(
        "POST", f"{shared.library}/api/licences/{number}/revoke", {"reason": "挂失补领"}, auth
    )
    assert status == 200, body
    status, body = shared.read("wjw", "id-card", holder, case_code(4))
    assert status == 200 and body["licences"] == []
    reader = {"Authorization": f"Bearer {shared.services.reader_token}"}
    assert request("GET", f"{shared.library}/api/licences/{number}", headers=reader)[0] == 410
    status, hist = request("GET", f"{shared.library}/api/licences/{number}/history", None, reader)
    assert [e["action"] for e in hist["events"]] == ["issued", "revoked"]
    assert hist["events"][1]["detail"]["reason"] == "挂失补领"


def test_malformed_identifiers_get_a_clear_4xx_are_logged_and_nothing_is_written(
    shared: Shared,
) -> None:
    before = _count(shared)
    bad_id = CITIZEN[:-1] + ("0" if CITIZEN[-1] != "0" else "1")
    status, body = shared.issue(
        "gat", {"type": "id-card", "holder": bad_id, "holder_name": "王五", "data": {}}
    )
    assert status == 400 and body["field"] == "holder"
    assert "check character does not match (GB 11643)" in body["error"]
    bad_code = COMPANY[:-1] + ("0" if COMPANY[-1] != "0" else "1")
    status, body = shared.issue(
        "scjgj",
        {"type": "business-licence", "holder": bad_code, "holder_name": "某公司", "data": {}},
    )
    assert status == 400 and "GB 32100" in body["error"]
    assert _count(shared) == before
    case = case_code(5)
    status, body = shared.read("wjw", "id-card", bad_id, case)
    assert status == 400 and "GB 11643" in body["error"]
    status, body = shared.read("dsjj", "business-licence", bad_code, case)
    assert status == 400 and "GB 32100" in body["error"]
    assert [(r["caller"], r["status"], r["decision"]) for r in _audit(shared, case)] == [
        ("wjw", 400, "refused"),
        ("dsjj", 400, "refused"),
    ]
    log = shared.services.workdir / "elicence.jsonl"
    lines = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    assert sum(1 for x in lines if x["status"] == 400 and x["field"] == "holder") >= 4
    assert _count(shared) == before


def test_enterprise_licences_are_issued_and_read_by_credit_code(shared: Shared) -> None:
    status, body = shared.issue(
        "scjgj",
        {"type": "business-licence", "holder": COMPANY.lower(), "holder_name": "某公司",
         "data": {"capital": "100万元"}},
    )  # fmt: skip
    assert status == 201, body
    status, got = shared.read("dsjj", "business-licence", COMPANY, case_code(6))
    assert status == 200 and [x["number"] for x in got["licences"]] == [body["number"]]


def test_the_exchange_log_is_append_only(shared: Shared) -> None:
    import asyncpg

    for stmt in ("UPDATE exchange_log SET reason = 'x'", "DELETE FROM exchange_log"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            shared.sql(stmt)


def test_an_ecdsa_seal_key_verifies_offline_too(shared: Shared) -> None:
    root = shared.root
    root.create_transit_key("seal-test-p256", mount_point=SEAL_MOUNT, key_type="ecdsa-p256")
    key = root.read_transit_key("seal-test-p256", mount_point=SEAL_MOUNT)
    data = "证照".encode() * 50
    seal = root.sign_transit_data("seal-test-p256", data, mount_point=SEAL_MOUNT)
    assert root.verify_transit_signature("seal-test-p256", data, seal, mount_point=SEAL_MOUNT)
    assert verify(data, seal, key)
    assert not verify(data[:-1] + b"!", seal, key)


def test_anyone_verifies_a_licence_offline_with_the_cli(shared: Shared, tmp_path: Path) -> None:
    lic = _id_card(shared, make_citizen_id("520302", "19770707", 9))
    _, keys = request("GET", shared.library + "/api/seal-keys")
    (tmp_path / "key.json").write_text(json.dumps(keys["keys"]["gat"]), encoding="utf-8")
    (tmp_path / "good.json").write_text(json.dumps(lic, ensure_ascii=False), encoding="utf-8")
    bad = dict(lic, payload=str(lic["payload"]).replace("张三", "张四"))
    (tmp_path / "bad.json").write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")

    def cli(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clusters.apps.elicence", "verify",
             str(tmp_path / name), str(tmp_path / "key.json")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    good = cli("good.json")
    assert good.returncode == 0 and '"seal": "valid"' in good.stdout
    tampered = cli("bad.json")
    assert tampered.returncode == 1 and '"seal": "INVALID"' in tampered.stdout
    assert cli("missing.json").returncode == 2
