"""Log shipping over TLS on the lab (issue 17): real hosts, real rsyslog, certificates issued by
the automation identity from OpenBao's PKI, the firewall from the plan."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from infra.lab.lab import Lab
from tests.cli.test_spec_cli import govcloud

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SENDER = "compute-1"


def _sh(lab: Lab, host: str, cmd: str) -> Any:
    return lab.exec(host, ["sh", "-c", cmd], check=False)


def _kept(lab: Lab, log: str, host: str, text: str, wait: float = 30.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        r = _sh(lab, log, f"grep -rqsF -- '{text}' /var/log/remote/{host}/")
        if r.returncode == 0:
            return True
        time.sleep(1)
    return False


def _lines(lab: Lab, log: str, host: str, text: str) -> str:
    return str(_sh(lab, log, f"grep -rhF -- '{text}' /var/log/remote/{host}/").stdout)


def test_a_hosts_log_reaches_the_log_host_over_tls_and_nothing_plain_is_received(
    configured_lab: tuple[Any, Any], logs_shipped: Any
) -> None:
    target, _ = configured_lab
    lab = Lab(target.plan.spec.name)
    log = next(h for h in target.plan.hosts if h.role == "log")
    token = f"govcloud-logship-{secrets.token_hex(4)}"
    assert _sh(lab, SENDER, f"logger -t govcloud-test {token}").returncode == 0
    assert _kept(lab, log.name, SENDER, token)
    # the sender's connection is the TLS port's, and it is TLS: the log host's rsyslog said so
    live = _sh(lab, SENDER, f"ss -Htn state established dst {log.address} dport = :6514")
    assert live.stdout.strip(), "no connection to the log host's TLS port"
    # plain syslog: 514 is closed by the plan's firewall, and text on 6514 is not kept
    closed = _sh(lab, SENDER, f"nc -z -w 3 {log.address} 514")
    assert closed.returncode != 0, "TCP 514 on the log host is reachable"
    plain = f"govcloud-plain-{secrets.token_hex(4)}"
    _sh(
        lab,
        SENDER,
        f"printf '<13>Dec  1 00:00:00 {SENDER} t: {plain}\\n' | nc -w 3 {log.address} 6514",
    )
    assert not _kept(lab, log.name, SENDER, plain, wait=5)


def test_the_compliance_report_shows_log_shipping_over_tls_with_evidence(
    configured_lab: tuple[Any, Any], logs_shipped: Any, tmp_path: Path
) -> None:
    r = govcloud("compliance", "check", "--report", str(tmp_path), "--limit", "tls-log",
                 "--json", timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:]
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "receives on 6514 over TLS only" in report and "senders without a certificate" in report
    r = govcloud("compliance", "check", "--report", str(tmp_path), "--limit", SENDER, "--json",
                 timeout=300)  # fmt: skip
    doc = json.loads(r.stdout)
    assert r.returncode == 0, doc["failed"][:3]
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "over TLS (x509/name)" in report


def test_a_changed_program_is_reported_to_the_log_host_once_by_the_integrity_check(
    configured_lab: tuple[Any, Any], logs_shipped: Any
) -> None:
    """Issue 16, file integrity: a program added on a node is named by the next check in the
    node's log on the log host; the check after that reports no change (the baseline rolled
    forward), and the program's removal is reported in turn."""
    target, _ = configured_lab
    lab = Lab(target.plan.spec.name)
    log = next(h for h in target.plan.hosts if h.role == "log")
    probe = f"/usr/local/sbin/govcloud-probe-{secrets.token_hex(4)}"
    check = "systemctl start govcloud-integrity.service"
    assert _sh(lab, SENDER, check).returncode == 0  # the baseline is the host as it is now
    assert _sh(lab, SENDER, f"printf '#!/bin/sh\\n' > {probe} && {check}").returncode == 0
    assert _kept(lab, log.name, SENDER, probe)
    assert "changed: f+" in _lines(lab, log.name, SENDER, probe)
    assert _sh(lab, SENDER, check).returncode == 0
    quiet = _sh(lab, SENDER, "journalctl -t govcloud-aide -n 1 -o cat").stdout
    assert "no change since the last check" in quiet, quiet
    assert _sh(lab, SENDER, f"rm {probe} && {check}").returncode == 0
    deadline = time.monotonic() + 30
    while "changed: f-" not in _lines(lab, log.name, SENDER, probe):
        assert time.monotonic() < deadline, _lines(lab, log.name, SENDER, probe)
        time.sleep(1)
