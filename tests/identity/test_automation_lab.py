"""Automation's certificate login on the lab: the hosts accept it with no plain key anywhere,
OpenBao's audit log shows the certificate issued to the automation identity, the hosts' sshd
logs show its key id, and a break-glass login is listed by the audit report.

Run with GOVCLOUD_KEEP_LAB=1 after `govcloud identity apply` (the identity fixture applies it
when the lab has none yet).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.hosts.apply import lab_credentials, prepare
from security.access import automation, certs, ssh_config
from security.audit import sshd
from security.audit.officer import Officer, auditor
from tests.identitylab import IdentityLab

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _ssh(config: Path, host: str) -> subprocess.CompletedProcess[str]:
    """A new login (no agent; the masters of earlier logins closed, none kept)."""
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    for name in (host, "bastion"):
        subprocess.run(["ssh", "-F", str(config), "-O", "exit", name], capture_output=True)
    return subprocess.run(
        [
            "ssh",
            "-F",
            str(config),
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            host,
            "id -un",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _wait_for(check: Callable[[], bool], timeout: float = 30) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(2)
    return False


def test_automation_logs_in_with_its_certificate_and_is_audited(
    identity_lab: IdentityLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = identity_lab
    monkeypatch.delenv(automation.BREAK_GLASS_ENV, raising=False)
    assert lab.paths.automation_file.is_file(), "identity apply issued no automation credentials"
    absent = ssh_config.Credentials("ops", tmp_path / "no-such-key")  # no plain key at all
    target = prepare(lab.spec, absent)
    assert target.connection.certificate is not None
    for host in ("bastion", "bao-2"):
        ok = _ssh(target.connection.ssh_config, host)
        assert ok.returncode == 0 and ok.stdout.strip() == "ops", ok.stderr
    # the certificate may be one an earlier play had signed (it is reused while 20 min are
    # left): the audit log is read from its signing on
    after, _ = certs.cert_validity(target.connection.certificate)
    since = dt.datetime.fromtimestamp(after - 60, dt.UTC).isoformat()
    officer = Officer(lab.plan, lab.hosts, auditor(lab.plan))
    signed = officer.report(since).certificates
    assert any(k.endswith("ssh-client-signer/automation") for k in signed), signed
    fp = sshd.key_fingerprint(lab_credentials().identity_file)

    def seen() -> bool:
        report = officer.ssh_report([fp])
        return any("<- automation-" in k for k in report.certificates)

    assert _wait_for(seen), "no automation certificate login in the log host's sshd lines"


def test_a_break_glass_login_is_listed_by_the_audit_report(
    identity_lab: IdentityLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = identity_lab
    key = lab_credentials()
    fp = sshd.key_fingerprint(key.identity_file)
    officer = Officer(lab.plan, lab.hosts, auditor(lab.plan))
    before = officer.ssh_report([fp]).break_glass.get(fp)
    count = before.count if before else 0
    monkeypatch.setenv(automation.BREAK_GLASS_ENV, "1")
    target = prepare(lab.spec, key)
    assert target.connection.certificate is None
    ok = _ssh(target.connection.ssh_config, "bao-2")
    assert ok.returncode == 0, ok.stderr

    def listed() -> bool:
        use = officer.ssh_report([fp]).break_glass.get(fp)
        return use is not None and use.count > count and "bao-2" in use.hosts

    assert _wait_for(listed), "the break-glass login is not in the audit report"
