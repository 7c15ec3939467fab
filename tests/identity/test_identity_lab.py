"""Identity and the bastion on the lab: real OpenBao (3 nodes, raft), real OpenSSH.

Run with GOVCLOUD_KEEP_LAB=1 (the lab is shared). The first run applies the identity system
(about 4 minutes); later runs reuse it.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest

from govcloud.naming import kv_mount
from infra.lab.lab import Lab
from security.access import certs, connect, ssh_config
from security.audit.officer import Officer
from security.identity.plan import SSH_USER_MOUNT, USERPASS
from security.identity.session import login
from security.openbao.client import (
    Bao,
    BaoAuditFailure,
    BaoError,
    BaoForbidden,
    BaoMfaRequired,
    totp_code,
)
from security.openbao.cluster import Paths, bootstrap, read_secret
from security.openbao.cluster import connect as bao_connect
from tests.identitylab import LAB, IdentityLab

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
AUDIT_FILE = "/var/log/openbao/audit-{}/audit.log"


def _password(lab: IdentityLab, user: str) -> str:
    return str((read_secret(lab.paths.credentials_file) or {})["users"][user]["password"])


def _as(lab: IdentityLab, user: str) -> Bao:
    return login(user, lab.hosts, lab.paths)


def _active_host(lab: IdentityLab) -> str:
    url = bao_connect(lab.hosts, lab.paths).endpoint.url
    return next(h.name for h in lab.hosts if f"//{h.address}:" in url)


# -- identity as code -----------------------------------------------------------------------


def test_no_department_reaches_another_departments_secrets(identity_lab: IdentityLab) -> None:
    lab = identity_lab
    codes = lab.plan.departments
    devs = {c: _as(lab, f"{c}-developer") for c in codes}
    for code, bao in devs.items():  # positive control: each reaches its own mount
        bao.write_kv_secret("isolation", {"owner": code}, mount_point=kv_mount(code))
        assert bao.read_kv_secret("isolation", mount_point=kv_mount(code)) == {"owner": code}
    checked = 0
    for a, b in itertools.permutations(codes, 2):
        with pytest.raises(BaoForbidden):
            devs[a].read_kv_secret("isolation", mount_point=kv_mount(b))
        with pytest.raises(BaoForbidden):
            devs[a].write_kv_secret("intrusion", {"by": a}, mount_point=kv_mount(b))
        with pytest.raises(BaoForbidden):
            devs[a].list_kv_secrets(mount_point=kv_mount(b))
        checked += 1
    print(f"department pairs checked (read, write, list): {checked}")
    assert checked == len(codes) * (len(codes) - 1) == 30
    viewer = _as(lab, f"{codes[0]}-viewer")  # a viewer reads its own, writes nothing
    assert viewer.read_kv_secret("isolation", mount_point=kv_mount(codes[0]))["owner"] == codes[0]
    with pytest.raises(BaoForbidden):
        viewer.write_kv_secret("isolation", {"owner": "x"}, mount_point=kv_mount(codes[0]))


def test_audit_administrator_reads_audit_data_and_changes_nothing(
    identity_lab: IdentityLab,
) -> None:
    audit = _as(identity_lab, "auditadmin")
    assert {"primary/", "secondary/"} <= set(audit.list_audit_devices())
    assert audit.calculate_audit_hash("primary", "x").startswith("hmac-sha256:")
    assert audit.read_policy("dept-gat-viewers")
    pub = certs.key_pair("auditadmin", identity_lab.paths).public.read_text()
    attempts = {
        "write a policy": lambda: audit.create_or_update_policy("dept-gat-viewers", "#"),
        "write a group": lambda: audit.create_or_update_group("dept-gat-viewers", policies=[]),
        "create a user": lambda: audit.create_or_update_userpass_user(
            "intruder", "pw-123456789", mount_point=USERPASS
        ),
        "write a secret": lambda: audit.write_kv_secret("x", {"a": 1}, mount_point="kv-gat"),
        "read a secret": lambda: audit.read_kv_secret("isolation", mount_point="kv-gat"),
        "mount an engine": lambda: audit.enable_secrets_engine("kv", mount_point="kv-audit-x"),
        "enable an auth method": lambda: audit.enable_auth_method("userpass", mount_point="up-x"),
        "change an SSH grant": lambda: audit.create_or_update_ssh_role(
            "system", mount_point=SSH_USER_MOUNT, allowed_users="root"
        ),
        "sign as a system administrator": lambda: audit.sign_ssh_key(
            "system", pub, mount_point=SSH_USER_MOUNT
        ),
        "tune a mount": lambda: audit.tune_secrets_engine(mount_point="kv-gat", max_lease_ttl="1h"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(BaoForbidden):
            attempt()
        print(f"audit administrator refused: {what}")


def test_security_administrator_grants_but_reads_no_secret(identity_lab: IdentityLab) -> None:
    lab = identity_lab
    sec = _as(lab, "secadmin")
    for code in lab.plan.departments:
        with pytest.raises(BaoForbidden):
            sec.read_kv_secret("isolation", mount_point=kv_mount(code))
    sec.create_or_update_policy(
        "dept-zz-scratch", 'path "kv-zz/data/*" {\n capabilities=["read"]\n}'
    )
    assert sec.read_policy("dept-zz-scratch")
    sec.delete_policy("dept-zz-scratch")
    with pytest.raises(BaoForbidden):  # cannot widen the administrators' own policies
        sec.create_or_update_policy("govcloud-security-admins", 'path "*" {capabilities=["read"]}')
    with pytest.raises(BaoForbidden):  # nor attach a policy to a person directly
        sec.create_or_update_entity("secadmin", policies=["dept-gat-developers"])
    with pytest.raises(BaoForbidden):
        sec.create_or_update_group("govcloud-audit-admins", policies=[])
    with pytest.raises(BaoForbidden):  # audit data is the audit administrator's
        sec.list_audit_devices()
    system = _as(lab, "sysadmin")  # operates the platform, reads no secret, grants nothing
    assert sum(1 for m in system.read_raft_configuration() if m.get("voter")) == 3
    with pytest.raises(BaoForbidden):
        system.read_kv_secret("isolation", mount_point="kv-gat")
    with pytest.raises(BaoForbidden):
        system.create_or_update_policy("dept-gat-viewers", "#")


def test_administrator_logins_need_totp(identity_lab: IdentityLab) -> None:
    lab = identity_lab
    bao = bao_connect(lab.hosts, lab.paths)
    with pytest.raises(BaoMfaRequired):
        bao.login_userpass("secadmin", _password(lab, "secadmin"), mount_point=USERPASS)
    secret = (read_secret(lab.paths.credentials_file) or {})["users"]["secadmin"]["totp_secret"]
    wrong = f"{(int(totp_code(secret)) + 1) % 1_000_000:06d}"
    with pytest.raises(BaoError):
        bao.login_userpass(
            "secadmin", _password(lab, "secadmin"), mount_point=USERPASS, passcode=wrong
        )
    user = bao.login_userpass("gat-viewer", _password(lab, "gat-viewer"), mount_point=USERPASS)
    assert user.lookup_token()["display_name"] == "userpass-gat-viewer"  # no MFA for staff


# -- SSH CA and the bastion -----------------------------------------------------------------


def _grep_remote_log(host: str, needle: str, timeout: float = 20) -> str:
    lab = Lab("lab")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = lab.exec(
            "loghost", ["sh", "-c", f"grep -rhF -- '{needle}' /var/log/remote/{host}/"], check=False
        ).stdout
        if out.strip():
            return out
        time.sleep(1)
    return ""


def test_certificate_for_ops_reaches_a_node_through_the_bastion(
    identity_lab: IdentityLab,
) -> None:
    lab = identity_lab
    marker = f"govcloud-test-{secrets.token_hex(4)}"
    session = connect.open_session(lab.plan, lab.hosts, "sysadmin", "bao-2", resign=True)
    try:
        result = connect.run(session, f"id -un; hostname; echo {marker}")
    finally:
        session.close()
    assert result.exited == 0 and result.stdout.split()[:2] == ["ops", "bao-2"]
    assert certs.cert_valid_before(session.certificate) - time.time() <= 30 * 60 + 5
    node_log = _grep_remote_log("bao-2", marker)  # the session, shipped to the log host
    assert "govcloud-session" in node_log and "id=userpass-sysadmin" in node_log, node_log
    assert "from=" + lab.host("bastion").address in node_log
    hop = _grep_remote_log("bastion", f"target {lab.host('bao-2').address} port 22")
    assert "server_request_direct_tcpip" in hop


@contextmanager
def _through_bastion(
    lab: IdentityLab, gw_key: paramiko.PKey, account: str, key: paramiko.PKey
) -> Iterator[None]:
    known = ssh_config.Layout.default().pinned_hosts
    gateway = connect._connection(lab.host("bastion").address, "auditor", gw_key, known)
    conn = connect._connection(lab.host("bao-2").address, account, key, known, gateway)
    try:
        conn.open()
        yield
    finally:
        conn.close()
        gateway.close()


def test_everything_but_a_valid_certificate_through_the_bastion_is_refused(
    identity_lab: IdentityLab, tmp_path: Path
) -> None:
    lab = identity_lab
    plan = lab.plan
    audit_grant = certs.Grant("audit", "govcloud-audit-admins")
    auditor = certs.key_pair("auditadmin", lab.paths)
    certs.sign(_as(lab, "auditadmin"), auditor, audit_grant)
    gw_key = connect._key(auditor, auditor.certificate)
    with _through_bastion(lab, gw_key, "auditor", gw_key):  # positive control
        pass
    # a certificate for another principal: the audit administrators' cert as `ops`
    with (
        pytest.raises(paramiko.AuthenticationException),
        _through_bastion(lab, gw_key, "ops", gw_key),
    ):
        pass
    # the right person's plain key without its certificate
    plain = paramiko.Ed25519Key.from_private_key_file(str(auditor.private))
    with (
        pytest.raises(paramiko.AuthenticationException),
        _through_bastion(lab, gw_key, "auditor", plain),
    ):
        pass
    # an expired certificate
    tmp_paths = Paths(tmp_path)
    pair = certs.key_pair("auditadmin", tmp_paths)
    cert = certs.sign(_as(lab, "auditadmin"), pair, audit_grant, ttl="2s", reuse=False)
    time.sleep(4)
    assert certs.cert_valid_before(cert) < time.time()
    with (
        pytest.raises(paramiko.AuthenticationException),
        _through_bastion(lab, gw_key, "auditor", connect._key(pair, cert)),
    ):
        pass
    # a password, at the bastion itself
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.BadAuthenticationType) as refused:
        client.connect(
            lab.host("bastion").address,
            username="ops",
            password="Secret-Passw0rd!",
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()
    assert refused.value.allowed_types == ["publickey"]
    # straight to a node, skipping the bastion: dropped by the node's zone rules
    with pytest.raises(OSError):
        socket.create_connection((lab.host("bao-2").address, 22), timeout=3).close()
    socket.create_connection((lab.host("bastion").address, 22), timeout=3).close()
    assert plan.host_accounts["bao-2"]["ops"] == ["govcloud-system-admins", "automation"]


def test_openssh_checks_hosts_against_the_host_ca(identity_lab: IdentityLab) -> None:
    lab = identity_lab
    tmp_path = Path(tempfile.mkdtemp(prefix="gi-", dir="/tmp"))  # short: ControlPath is a socket
    ca_line = ssh_config.stored_host_ca_line()
    assert ca_line and ca_line.startswith("@cert-authority * ssh-ed25519 ")
    grant, account = certs.choose(lab.plan, "sysadmin", "bao-3")
    pair = certs.key_pair("sysadmin", lab.paths)
    cert = certs.sign(_as(lab, "sysadmin"), pair, grant)
    layout = ssh_config.Layout(tmp_path)
    config = ssh_config.write(
        lab.hosts, ssh_config.Credentials(account, pair.private, cert), layout, host_ca_line=ca_line
    )
    assert "StrictHostKeyChecking yes" in config.read_text()
    argv = ["ssh", "-F", str(config), "-o", "BatchMode=yes", "bao-3", "hostname"]
    ok = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "bao-3", ok.stderr
    # another CA in known_hosts: the same hosts are not trusted any more
    subprocess.run(["ssh", "-F", str(config), "-O", "exit", "bao-3"], capture_output=True)
    subprocess.run(["ssh", "-F", str(config), "-O", "exit", "bastion"], capture_output=True)
    rogue = tmp_path / "rogue"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(rogue)], check=True)
    layout.known_hosts.write_text(f"@cert-authority * {rogue.with_suffix('.pub').read_text()}")
    bad = subprocess.run(
        [*argv[:-2], "bastion", "true"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0 and "Host key verification failed" in bad.stderr, bad.stderr
    hop = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert hop.returncode != 0  # nor anything behind it


def test_ssh_audit_finds_no_failure_on_the_bastion(identity_lab: IdentityLab) -> None:
    exe = Path(sys.executable).parent / "ssh-audit"
    out = subprocess.run(
        [str(exe), "-j", identity_lab.host("bastion").address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(out.stdout)
    failures = [
        f"{section} {alg['algorithm']}: {alg['notes']['fail']}"
        for section in ("kex", "key", "enc", "mac")
        for alg in report.get(section, [])
        if alg.get("notes", {}).get("fail")
    ]
    assert failures == [] and report["cves"] == []
    assert report["recommendations"].get("critical") is None
    print(f"ssh-audit: 0 failures, warnings: {len(report['recommendations'].get('warning', {}))}")


def test_cli_ssh_runs_a_command_and_refuses_cleanly(identity_lab: IdentityLab) -> None:
    env = dict(os.environ, GOVCLOUD_DEBUG="")
    exe = str(Path(sys.executable).parent / "govcloud")
    ok = subprocess.run(
        [exe, "ssh", "bao-1", "-u", "sysadmin", "--", "id", "-un"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "ops", ok.stderr
    refused = subprocess.run(
        [exe, "ssh", "bao-1", "-u", "gat-viewer", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "no group that may log in" in refused.stderr and "Traceback" not in refused.stderr


# -- audit -----------------------------------------------------------------------------------


def test_audit_report_and_verify(identity_lab: IdentityLab) -> None:
    lab = identity_lab
    wrong = f"wrong-{secrets.token_hex(8)}"
    with pytest.raises(BaoError):
        bao_connect(lab.hosts, lab.paths).login_userpass("rst-viewer", wrong, mount_point=USERPASS)
    dev = _as(lab, "gat-developer")
    dev.write_kv_secret("audit-probe", {"v": 1}, mount_point="kv-gat")
    dev.read_kv_secret("audit-probe", mount_point="kv-gat")
    officer = Officer(lab.plan, lab.hosts, "auditadmin")
    start = time.perf_counter()
    report = officer.report(since=None).as_dict()
    seconds = time.perf_counter() - start
    print(f"audit report over {report['lines']} lines of 3 nodes in {seconds:.2f} s")
    assert report["failed_logins"].get("rst-viewer", 0) >= 1
    assert report["secrets_read"]["gat"]["userpass-gat-developer"] >= 1
    assert any("ssh-client-signer" in k for k in report["certificates_signed"])
    assert any(c["path"].startswith("identity/group/") for c in report["grant_changes"])
    assert report["policy_changes"], "the identity apply wrote policies"
    found = officer.verify(wrong)
    assert found["occurrences"] >= 1 and found["hash"].startswith("hmac-sha256:")
    assert officer.verify(f"never-{secrets.token_hex(8)}")["occurrences"] == 0


def _set_device(host: str, device: str, writable: bool) -> None:
    owner, mode = ("openbao:openbao-audit", "0640") if writable else ("root:root", "0400")
    path = AUDIT_FILE.format(device)
    Lab("lab").exec(
        host,
        ["sh", "-c", f"chown {owner} {path} && chmod {mode} {path} && systemctl reload openbao"],
    )


def test_audit_fails_closed_and_status_says_so(identity_lab: IdentityLab) -> None:
    lab = identity_lab
    officer = Officer(lab.plan, lab.hosts, "auditadmin")
    before = officer.status()
    assert before["ok"], before["problems"]
    host = _active_host(lab)
    system = _as(lab, "sysadmin")
    try:
        _set_device(host, "primary", writable=False)
        time.sleep(2)
        assert len(system.read_raft_configuration()) == 3  # one device left: still serving
        one = officer.status()
        assert one["serving"] is True
        assert f"{host}: audit device primary cannot be written" in one["problems"]
        _set_device(host, "secondary", writable=False)
        time.sleep(2)
        with pytest.raises(BaoAuditFailure):
            system.read_raft_configuration()
        both = officer.status()
        assert both["serving"] is False and not both["ok"]
        assert any("fail closed" in p for p in both["problems"]), both["problems"]
        assert f"{host}: audit device secondary cannot be written" in both["problems"]
    finally:
        _set_device(host, "primary", writable=True)
        _set_device(host, "secondary", writable=True)
    time.sleep(2)
    assert len(system.read_raft_configuration()) == 3
    assert officer.status()["ok"]


def test_one_openbao_node_stopped_cluster_serves_and_ssh_works(
    identity_lab: IdentityLab,
) -> None:
    lab = identity_lab
    stopped = _active_host(lab)  # the leader: the hardest one to lose
    other = next(h.name for h in lab.hosts if h.role == "compute")
    try:
        Lab("lab").exec(stopped, ["systemctl", "stop", "openbao"])
        end = time.monotonic() + 60
        new = None
        while time.monotonic() < end:
            try:
                new = _active_host(lab)
                if new != stopped:
                    break
            except BaoError:
                pass
            time.sleep(1)
        assert new and new != stopped, "no new leader"
        session = connect.open_session(lab.plan, lab.hosts, "sysadmin", other, resign=True)
        try:
            assert connect.run(session, "id -un").stdout.strip() == "ops"
        finally:
            session.close()
        print(f"stopped {stopped}; {new} took over; govcloud ssh to {other} still works")
    finally:
        Lab("lab").exec(stopped, ["systemctl", "start", "openbao"])
        bootstrap(lab.hosts, lab.paths)  # unseal it again from the shares
    voters = _as(lab, "sysadmin").read_raft_configuration()
    assert sum(1 for m in voters if m.get("voter")) == 3


def test_refresh_of_the_identity_deployment_sees_a_node_down(identity_lab: IdentityLab) -> None:
    """The provider's ``read`` (what `pulumi refresh` calls) on the real cluster."""
    from infra.providers.identity import IdentityDeploymentProvider

    lab = identity_lab
    provider = IdentityDeploymentProvider()
    props = {"spec": str(LAB), "inputs": "digest"}
    healthy = provider.read_("identity", props)
    assert sorted(healthy["nodes"].values()) == ["active", "standby", "standby"]
    assert healthy["inputs"] == "digest"  # nothing to do
    node = next(h for h in lab.hosts if h.role == "identity" and h.name != _active_host(lab))
    try:
        Lab("lab").exec(node.name, ["systemctl", "stop", "openbao"])
        drifted = provider.read_("identity", healthy)
        assert drifted["nodes"][f"https://{node.address}:8200"] == "down"
        assert drifted["inputs"] == "digest+drift"
        assert provider.read_("identity", drifted)["inputs"] == "digest+drift"  # marked once
    finally:
        Lab("lab").exec(node.name, ["systemctl", "start", "openbao"])
        bootstrap(lab.hosts, lab.paths)  # unseal it again from the shares
    assert provider.read_("identity", drifted)["inputs"] == "digest"


def test_shares_are_kept_0600_and_the_root_token_is_revoked(identity_lab: IdentityLab) -> None:
    init_file = identity_lab.paths.init_file
    assert init_file.stat().st_mode & 0o777 == 0o600
    assert init_file.parent.stat().st_mode & 0o777 == 0o700
    init = read_secret(init_file) or {}
    assert init["shares"] == 5 and init["threshold"] == 3 and len(init["unseal_keys_b64"]) == 5
    assert "WARNING" in init["warning"]
    assert init["root_token_revoked"] is True and init["root_token"] is None
    creds = identity_lab.paths.credentials_file
    assert creds.stat().st_mode & 0o777 == 0o600
    assert identity_lab.paths.secrets.stat().st_mode & 0o777 == 0o700
