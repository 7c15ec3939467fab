"""Automation's login without a server: the certificate-or-break-glass decision, the
automation identity in the plan, and the sshd log parser the audit report lists break-glass
logins with."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from govcloud.errors import OperationError
from govcloud.naming import admin_group
from govcloud.spec import load_spec
from infra.plan import make_plan
from security.access import automation, ssh_config
from security.audit import sshd
from security.identity.plan import (
    APPROLE,
    AUTOMATION,
    AUTOMATION_POLICY,
    check_isolation,
    make_identity_plan,
    policy_paths,
)
from security.openbao.client import BaoSealed, BaoUnauthorized, BaoUnavailable
from security.openbao.cluster import Paths, write_secret

pytestmark = pytest.mark.unit
LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
FP = "SHA256:6FSD/XkfuId7beTLV8ZisE1mo/jH7uzAXoCfxuWh45w"
CA = "SHA256:F5WsXbsATLmlVOBgernAkf2bd3bwSbOBqxiRRxB5CnQ"


@pytest.fixture(scope="module")
def plan() -> Any:
    spec = load_spec(LAB)
    return make_identity_plan(spec, make_plan(spec).hosts)


# -- the decision ---------------------------------------------------------------------------


def test_before_the_identity_system_exists_the_key_is_used() -> None:
    d = automation.decide(None, identity_ready=False)
    assert d.mode == automation.BREAK_GLASS and "no automation identity" in d.reason


def test_once_it_exists_a_certificate_is_used_unless_break_glass_is_asked() -> None:
    assert automation.decide(None, identity_ready=True).mode == automation.CERTIFICATE
    assert automation.decide("0", identity_ready=True).mode == automation.CERTIFICATE
    for yes in ("1", "true", "YES", "on"):
        d = automation.decide(yes, identity_ready=True)
        assert d.mode == automation.BREAK_GLASS and "GOVCLOUD_BREAK_GLASS" in d.reason
    with pytest.raises(OperationError, match="give 1"):
        automation.decide("maybe", identity_ready=True)
    assert automation.fallback_allowed(None) and automation.fallback_allowed("1")
    assert not automation.fallback_allowed("0") and not automation.fallback_allowed("no")


def _with_credentials(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path)
    write_secret(paths.automation_file, {"role_id": "r", "secret_id": "s"})
    return paths


def test_openbao_down_falls_back_to_the_key_and_says_so(tmp_path: Path) -> None:
    base = ssh_config.Credentials("ops", tmp_path / "id_ed25519")
    for exc in (BaoUnavailable("no node serves"), BaoSealed("sealed")):

        def down(exc: Exception = exc) -> Any:
            raise exc

        said: list[str] = []
        got = automation.login_credentials(
            base, [], paths=_with_credentials(tmp_path), environ={}, connect=down, say=said.append
        )
        assert got == base
        assert "BREAK-GLASS" in said[0] and "OpenBao cannot sign" in said[0]
        assert "govcloud audit report" in said[0]


def test_a_refusal_by_openbao_never_falls_back(tmp_path: Path) -> None:
    class Revoked:
        def login_approle(self, *_a: Any, **_k: Any) -> Any:
            raise BaoUnauthorized("invalid secret id")

    with pytest.raises(BaoUnauthorized):
        automation.login_credentials(
            ssh_config.Credentials("ops", tmp_path / "key"),
            [],
            paths=_with_credentials(tmp_path),
            environ={},
            connect=lambda: Revoked(),  # type: ignore[arg-type,return-value]
            say=lambda _m: None,
        )


def test_no_credentials_no_signing(tmp_path: Path) -> None:
    base = ssh_config.Credentials("ops", tmp_path / "key")
    said: list[str] = []
    got = automation.login_credentials(
        base,
        [],
        paths=Paths(tmp_path),
        environ={},
        connect=lambda: pytest.fail("asked OpenBao"),  # type: ignore[arg-type,return-value]
        say=said.append,
    )
    assert got == base and "no automation identity yet" in said[0]


def test_the_ssh_config_carries_the_certificate(tmp_path: Path) -> None:
    layout = ssh_config.Layout(tmp_path)
    creds = ssh_config.Credentials("ops", tmp_path / "k", tmp_path / "k-cert.pub")
    text = ssh_config.render([], creds, layout)
    assert f"IdentityFile {tmp_path / 'k'}" in text
    assert f"CertificateFile {tmp_path / 'k-cert.pub'}" in text
    assert "IdentitiesOnly yes" in text


# -- the automation identity in the plan ------------------------------------------------------


def test_automation_may_only_sign_for_its_own_principal_and_issue_host_certificates(
    plan: Any,
) -> None:
    policy = plan.policies[AUTOMATION_POLICY]
    assert policy_paths(policy.hcl) == [
        f"ssh-client-signer/sign/{AUTOMATION}",
        "pki-int/issue/edge",
        "pki-int/issue/internal",
        "auth/token/revoke-self",
    ]
    assert APPROLE in plan.auth_methods
    params = plan.automation.approle_params()
    assert params["token_policies"] == AUTOMATION_POLICY and params["token_no_default_policy"]
    role = plan.automation.ssh_role_params()
    assert role["allowed_users"] == role["default_user"] == AUTOMATION
    assert "permit-port-forwarding" in str(role["allowed_extensions"])  # ProxyJump
    assert role["ttl"] == role["max_ttl"] == "30m"
    assert "automation" in str(role["key_id_format"])
    assert check_isolation(plan) == []


def test_the_administrator_account_accepts_automation_everywhere(plan: Any) -> None:
    for host, accounts in plan.host_accounts.items():
        assert accounts["ops"] == [admin_group("system"), AUTOMATION], host
        assert all(AUTOMATION not in p for a, p in accounts.items() if a != "ops")


def test_the_grant_and_the_credentials_are_separated(plan: Any) -> None:
    security = plan.policies[admin_group("security")].hcl
    system = plan.policies[admin_group("system")].hcl
    assert (
        f'path "auth/{APPROLE}/role/{AUTOMATION}" {{\n'
        '  capabilities = ["create", "read", "update"]\n'
        f'  allowed_parameters = {{ "token_policies" = ["{AUTOMATION_POLICY}"], "*" = [] }}'
    ) in security
    assert f"auth/{APPROLE}/role/{AUTOMATION}/secret-id" in system
    assert f"auth/{APPROLE}/role/{AUTOMATION}/secret-id" not in security
    assert f'path "auth/{APPROLE}/role/{AUTOMATION}" {{' not in system


# -- the sshd log ---------------------------------------------------------------------------

PLAIN = (
    "2025-03-04T10:11:12.123456+08:00 bao-2 sshd[812]: Accepted publickey for ops from "
    f"10.255.0.10 port 50124 ssh2: ED25519 {FP}"
)
CERT = (
    "Mar  4 10:12:13 bastion sshd[90]: Accepted publickey for ops from 10.255.0.1 port 40022 "
    "ssh2: ED25519-CERT SHA256:xBvHACatEftGXeoZTWazLZo6YD7g7RJO3cch7Pxjl0c ID "
    f"automation-approle-c41bc700 (serial 16598556429976358786) CA ED25519 {CA}"
)
PERSON = (
    "2025-03-04T10:13:00+08:00 bao-1 sshd-session[4411]: Accepted publickey for auditor from "
    "10.255.0.2 port 40100 ssh2: ED25519-CERT SHA256:abc ID userpass-auditadmin (serial 3) "
    f"CA ED25519 {CA}"
)
OTHER = (
    "2025-03-05T09:00:00+08:00 hall-1 sshd[7]: Accepted publickey for ops from 10.255.0.9 "
    "port 1 ssh2: RSA SHA256:Zm9vYmFy"
)


def test_a_plain_key_login_is_parsed() -> None:
    login = sshd.parse_line(PLAIN)
    assert login is not None and not login.certificate
    assert (login.time, login.host, login.user, login.source) == (
        "2025-03-04T10:11:12.123456+08:00",
        "bao-2",
        "ops",
        "10.255.0.10",
    )
    assert (login.kind, login.fingerprint) == ("ED25519", FP)


def test_a_certificate_login_is_parsed_with_its_key_id() -> None:
    login = sshd.parse_line(CERT)
    assert login is not None and login.certificate
    assert (login.time, login.host, login.kind) == ("Mar  4 10:12:13", "bastion", "ED25519-CERT")
    assert login.key_id == "automation-approle-c41bc700"
    assert login.serial == 16598556429976358786 and login.ca == CA
    person = sshd.parse_line(PERSON)
    assert person is not None and person.key_id == "userpass-auditadmin" and person.host == "bao-1"


def test_other_lines_are_not_logins() -> None:
    for line in (
        "2025-03-04T10:11:12+08:00 bao-2 sshd[1]: Failed publickey for ops from 1.2.3.4 port 1",
        "2025-03-04T10:11:12+08:00 bao-2 sshd[1]: Accepted key ED25519 SHA256:x found at /e:1",
        "",
        "garbage Accepted publickey for",
    ):
        assert sshd.parse_line(line) is None


def test_a_line_without_syslog_prefix_takes_the_host_given() -> None:
    bare = PLAIN.split(": ", 1)[1]
    login = sshd.parse_line(bare, host="bao-2")
    assert login is not None and login.host == "bao-2" and login.time == ""


def test_the_report_lists_break_glass_logins_apart() -> None:
    lines = [PLAIN, CERT, PERSON, OTHER, PLAIN.replace("10:11:12", "11:00:00"), "noise"]
    report = sshd.build(lines, [FP])
    data = report.as_dict()
    assert data["logins"] == 5 and data["lines"] == 6
    use = data["break_glass_logins"][FP]
    assert use["count"] == 2 and use["hosts"] == {"bao-2": 2} and use["users"] == {"ops": 2}
    assert use["first"].startswith("2025-03-04T10:11:12") and use["last"].startswith(
        "2025-03-04T11:00:00"
    )
    assert list(data["plain_key_logins"]) == ["SHA256:Zm9vYmFy"]
    assert data["certificate_logins"] == {
        "ops <- automation-approle-c41bc700": 1,
        "auditor <- userpass-auditadmin": 1,
    }
    assert sshd.build(lines, []).as_dict()["break_glass_logins"] == {}


def test_fingerprint_is_opensshs() -> None:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
    line = "ssh-ed25519 " + base64.b64encode(blob).decode() + " someone"
    want = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert sshd.fingerprint(line) == f"SHA256:{want}"
