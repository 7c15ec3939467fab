"""Identity as code without a server: the plan, isolation by construction, TOTP, certificates,
and the audit report's parser."""

from __future__ import annotations

import base64
import itertools
import json
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from govcloud.errors import InputError
from govcloud.naming import admin_group, department_group, kv_mount
from govcloud.spec import load_spec
from infra.plan import make_plan
from security.access import certs
from security.audit.report import build, parse_since
from security.identity.plan import (
    Policy,
    Rule,
    check_isolation,
    make_identity_plan,
    policy_paths,
)
from security.openbao.client import totp_code

pytestmark = pytest.mark.unit
LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


@pytest.fixture(scope="module")
def lab() -> Any:
    spec = load_spec(LAB)
    hosts = make_plan(spec).hosts
    return spec, hosts, make_identity_plan(spec, hosts)


def test_every_department_policy_names_only_its_own_mount(lab: Any) -> None:
    spec, _hosts, plan = lab
    codes = [d.code for d in spec.departments]
    pairs = 0
    for a, b in itertools.permutations(codes, 2):
        for role in ("developer", "operator", "viewer"):
            hcl = plan.policies[department_group(a, role)].hcl
            assert all(not p.startswith(kv_mount(b) + "/") for p in policy_paths(hcl)), (a, b)
        pairs += 1
    print(f"department pairs checked by construction: {pairs}")
    assert pairs == len(codes) * (len(codes) - 1)
    assert check_isolation(plan) == []


def test_isolation_check_catches_a_cross_department_path(lab: Any) -> None:
    _spec, _hosts, plan = lab
    name = department_group("gat", "viewer")
    bad = plan.policies[name]
    plan.policies[name] = Policy(
        name, (*bad.rules, Rule("kv-rst/data/*", ("read",))), department="gat"
    )
    try:
        problems = check_isolation(plan)
    finally:
        plan.policies[name] = bad
    assert problems and "kv-rst/data/*" in problems[0]


def test_a_glob_prefix_that_would_match_another_mount_is_caught(lab: Any) -> None:
    _spec, _hosts, plan = lab
    name = department_group("gat", "viewer")
    bad = plan.policies[name]
    plan.policies[name] = Policy(name, (Rule("kv-ga*", ("read",)),), department="gat")
    try:
        assert check_isolation(plan)
    finally:
        plan.policies[name] = bad


def test_administrators_are_separated(lab: Any) -> None:
    _spec, _hosts, plan = lab
    system = plan.policies[admin_group("system")].hcl
    security = plan.policies[admin_group("security")].hcl
    audit = plan.policies[admin_group("audit")].hcl
    for hcl in (system, security, audit):  # no administrator reaches department secrets
        assert not any(p.startswith("kv-") and "/" in p for p in policy_paths(hcl))
    assert "sys/policies/acl/dept-*" in security and "sys/policies/acl/dept-*" not in system
    assert 'path "sys/policies/acl/govcloud-*" {\n  capabilities = ["read"]' in security
    assert 'denied_parameters = { "policies" = [], "token_policies" = [] }' in security
    assert "sys/audit" not in security and "sys/audit" not in system
    # the audit administrator changes nothing: no create/delete anywhere, updates only to hash
    # values and to get an SSH certificate for reading the audit files
    for block in audit.split("path ")[1:]:
        path = block.split('"')[1]
        if "create" in block or "delete" in block:
            pytest.fail(f"audit policy may change {path}")
        if '"update"' in block:
            assert path in ("sys/audit-hash/*", "ssh-client-signer/sign/audit"), path


def test_mfa_and_ttls_follow_the_spec(lab: Any) -> None:
    spec, _hosts, plan = lab
    admins = {*spec.identity.admins.system, *spec.identity.admins.security}
    admins |= set(spec.identity.admins.audit)
    assert {n for n, u in plan.users.items() if u.mfa} == admins
    assert plan.ssh_ttl == f"{spec.identity.ssh_cert_ttl_minutes}m" == "30m"
    assert plan.token_ttl == f"{spec.identity.token_ttl_minutes}m"


def test_principals_are_groups_and_the_bastion_carries_every_account(lab: Any) -> None:
    _spec, _hosts, plan = lab
    assert all(r.principal in plan.groups for r in plan.ssh_roles.values())
    bastion = plan.host_accounts["bastion"]
    for accounts in plan.host_accounts.values():
        for account, principals in accounts.items():
            assert set(principals) <= set(bastion[account])
    assert plan.host_accounts["bao-1"]["auditor"] == [admin_group("audit")]
    assert "auditor" not in plan.host_accounts["hall-1"]
    assert plan.host_accounts["mzt-vm-1"]["deploy"] == [department_group("mzt", "operator")]
    assert "intranet-1" not in plan.host_accounts
    grant, account = certs.choose(plan, "mzt-operator", "mzt-vm-1")
    assert (grant.role, account) == ("dept-mzt", "deploy")
    with pytest.raises(InputError, match="may not log in to bao-1"):
        certs.choose(plan, "mzt-operator", "bao-1")
    with pytest.raises(InputError, match="no group that may log in"):
        certs.choose(plan, "gat-viewer", "bao-1")


def test_totp_matches_rfc_6238() -> None:
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp_code(secret, at=59, digits=8) == "94287082"
    assert totp_code(secret, at=1111111109, digits=8) == "07081804"
    assert totp_code(secret, at=59) == "287082"


def _fake_cert(principals: list[str], valid_before: int) -> str:
    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    packed = b"".join(s(p.encode()) for p in principals)
    blob = (
        s(b"ssh-ed25519-cert-v01@openssh.com")
        + s(b"n" * 32)
        + s(b"k" * 32)
        + struct.pack(">QI", 7, 1)
        + s(b"userpass-sysadmin")
        + s(packed)
        + struct.pack(">QQ", 0, valid_before)
    )
    return "ssh-ed25519-cert-v01@openssh.com " + base64.b64encode(blob).decode()


def test_certificate_expiry_and_principals_are_read(tmp_path: Path) -> None:
    path = tmp_path / "id_ed25519-cert.pub"
    later = int(time.time()) + 600
    path.write_text(_fake_cert(["govcloud-system-admins"], later))
    assert certs.cert_valid_before(path) == later
    pair = certs.KeyPair(tmp_path / "id_ed25519", tmp_path / "id_ed25519.pub")
    assert certs.usable(pair, certs.Grant("system", "govcloud-system-admins"))
    assert not certs.usable(pair, certs.Grant("audit", "govcloud-audit-admins"))
    path.write_text(_fake_cert(["govcloud-system-admins"], int(time.time()) + 30))
    assert not certs.usable(pair, certs.Grant("system", "govcloud-system-admins"))


def test_a_real_certificate_validity_window_is_read(tmp_path: Path) -> None:
    """ssh-keygen signs it: the window read back is the one asked for."""
    for name in ("ca", "user"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True
        )
    window = "20260101000000Z:20260101003000Z"
    sign = ["ssh-keygen", "-q", "-s", str(tmp_path / "ca"), "-I", "t", "-n", "ops", "-V", window]
    subprocess.run([*sign, str(tmp_path / "user.pub")], check=True)
    after, before = certs.cert_validity(tmp_path / "user-cert.pub")
    assert (after, before) == (1767225600.0, 1767225600.0 + 1800)
    assert certs.cert_validity(tmp_path / "user.pub") == (0.0, 0.0)  # a plain key


def _line(kind: str, path: str, op: str, who: str = "", error: str = "", **extra: Any) -> str:
    entry: dict[str, Any] = {
        "time": extra.pop("time", "2026-11-23T10:00:00.000Z"),
        "type": kind,
        "auth": {"display_name": who} if who else {},
        "request": {"operation": op, "path": path},
    }
    entry.update(extra)
    if error:  # OpenBao writes the error last, after the response
        entry["response"] = {"data": {"error": "hmac-sha256:00"}}
        entry["error"] = error
    return json.dumps(entry, separators=(",", ":"))


def test_report_counts_who_did_what() -> None:
    lines = [
        _line("request", "auth/userpass/login/gat-developer", "update"),
        _line(
            "response",
            "auth/userpass/login/gat-developer",
            "update",
            response={"auth": {"client_token": "hmac-sha256:1", "display_name": "u-gat"}},
        ),
        _line("response", "auth/userpass/login/rst-viewer", "update", error="invalid credentials"),
        _line(
            "response",
            "auth/userpass/login/sysadmin",
            "update",
            response={"auth": {"token_type": "default"}, "warnings": ["... mfa/validate ..."]},
        ),
        _line(
            "response",
            "sys/mfa/validate",
            "update",
            response={"auth": {"display_name": "userpass-sysadmin"}},
        ),
        _line("response", "sys/policies/acl/dept-gat-viewers", "update", "userpass-secadmin"),
        _line("response", "identity/group/name/dept-gat-viewers", "update", "userpass-secadmin"),
        _line("response", "ssh-client-signer/sign/system", "update", "userpass-sysadmin"),
        _line("response", "pki-int/issue/edge", "update", "approle"),
        _line("response", "pki-int/issue/edge", "update", "approle", "1 error: permission denied"),
        _line("response", "kv-gat/data/db", "read", "userpass-gat-developer"),
        _line("response", "kv-gat/data/db", "read", "userpass-gat-developer"),
        _line(
            "response",
            "kv-rst/data/db",
            "read",
            "userpass-gat-developer",
            "1 error: permission denied",
        ),
        '{"time":"2026-11-23T10:00:01Z","type":"response","request":{"pa',  # a torn line
    ]
    r = build(lines).as_dict()
    assert r["lines"] == len(lines)
    assert r["logins"] == {"gat-developer": 1, "sysadmin": 1}
    assert r["failed_logins"] == {"rst-viewer": 1}
    assert r["mfa_challenges"] == {"sysadmin": 1}
    assert [c["path"] for c in r["policy_changes"]] == ["sys/policies/acl/dept-gat-viewers"]
    assert [c["path"] for c in r["grant_changes"]] == ["identity/group/name/dept-gat-viewers"]
    assert r["certificates_signed"] == {
        "userpass-sysadmin -> ssh-client-signer/system": 1,
        "approle -> pki-int/edge": 1,  # a TLS certificate of the PKI, issued by the automation
    }
    assert r["secrets_read"] == {"gat": {"userpass-gat-developer": 2}}
    assert r["denied"] == {
        "userpass-gat-developer read kv-rst/data/db": 1,
        "approle update pki-int/issue/edge": 1,
    }
    assert r["malformed"] == 1


def test_report_since_skips_older_entries() -> None:
    old = _line("response", "kv-gat/data/a", "read", "u", time="2026-01-01T00:00:00Z")
    new = _line("response", "kv-gat/data/a", "read", "u", time="2026-06-01T00:00:00Z")
    r = build([old, new], since=parse_since("2026-03-01T00:00:00Z"))
    assert r.entries == 1 and r.secrets_read["gat"]["u"] == 1


def test_since_accepts_durations_and_rejects_nonsense() -> None:
    import datetime as dt

    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    assert parse_since("2h", now) == "2026-11-23T10:00:00"
    assert parse_since("7d", now) == "2026-11-16T12:00:00"
    assert parse_since(None) is None
    with pytest.raises(InputError, match="duration"):
        parse_since("yesterday-ish")


def test_the_secrets_of_a_destroyed_cluster_are_moved_aside_not_deleted(tmp_path: Path) -> None:
    from security.openbao.cluster import Paths, read_secret, retire_identity_state, write_secret

    paths = Paths(tmp_path)
    assert retire_identity_state(paths) is None  # nothing to move
    write_secret(paths.init_file, {"shares": 5})
    write_secret(paths.credentials_file, {"ops": "x"})
    edge = tmp_path / "pki" / "edge"  # the hosts' certificates from that cluster's intermediate
    edge.mkdir(parents=True)
    (edge / "hall-1.crt").write_text("issued by the retired cluster\n")
    root = paths.root / "identity" / "pki"  # the offline root, which outlives it
    root.mkdir(parents=True)
    to = retire_identity_state(paths)
    assert to is not None and to.parent == paths.secrets / "retired"
    assert not paths.init_file.exists() and not paths.credentials_file.exists()
    assert read_secret(to / "openbao" / "init.json") == {"shares": 5}
    assert read_secret(to / "identity" / "credentials.json") == {"ops": "x"}
    assert (to / "pki" / "edge" / "hall-1.crt").is_file() and not edge.exists()
    assert root.is_dir()
    assert to.stat().st_mode & 0o777 == 0o700


def test_status_without_the_ca_certificate_names_it_for_every_node(
    lab: Any, tmp_path: Path
) -> None:
    from security.openbao.cluster import Paths, status

    paths = Paths(tmp_path)  # a state directory the deployment's TLS is not in
    rows = status(lab[1], paths)
    assert [r["state"] for r in rows] == ["unknown"] * 3
    assert all(str(paths.ca_cert) in r["error"] for r in rows)
