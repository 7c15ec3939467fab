"""Host configuration and grade-3 evidence on the lab: real hosts, real Ansible, real testinfra."""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.hosts.apply import apply
from infra.hosts.runner import RunResult, _run
from infra.lab.lab import Lab
from tests.cli.test_spec_cli import govcloud
from tests.conftest import faillock_text, loosen_faillock

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_host_converges_and_a_second_run_changes_nothing(
    configured_lab: tuple[Any, Any],
) -> None:
    target, first = configured_lab
    planned = {h.name for h in target.plan.hosts if h.zone != "intranet"}
    assert set(first.hosts) == planned
    second = apply(target)
    assert second.ok
    assert second.changed == 0, {h.host: h.changed for h in second.hosts.values() if h.changed}
    assert _ran_roles(second) == set()  # every host converged: each is left alone


#: what a host whose managed state is what the last full run left runs: the converged role's
#: argument check, its fingerprint and its sorting
SORTING_TASKS = 3


def _ran_roles(result: RunResult) -> set[str]:
    """The hosts the site's roles ran on (not left alone after the fingerprint)."""
    return {h.host for h in result.hosts.values() if h.ok + h.changed > SORTING_TASKS}


def test_full_runs_every_role_and_the_next_run_is_quick_again(
    configured_lab: tuple[Any, Any],
) -> None:
    target, _ = configured_lab
    hosts = "bastion,compute-1,hall-1"  # one of each kind of profile is enough to show it
    full = apply(target, full=True, limit=hosts)
    assert full.ok and full.changed == 0
    assert _ran_roles(full) == set(full.hosts) == set(hosts.split(","))
    after = apply(target, limit=hosts)  # --full is not carried over to the next run
    assert after.ok and _ran_roles(after) == set()


def test_new_inputs_run_the_roles_on_that_host_only(configured_lab: tuple[Any, Any]) -> None:
    target, _ = configured_lab
    inventory = copy.deepcopy(target.inventory)
    inventory["all"]["children"]["hall"]["hosts"]["hall-1"]["converged_inputs"] = "0" * 16
    changed = apply(dataclasses.replace(target, inventory=inventory))
    assert changed.ok and _ran_roles(changed) == {"hall-1"}
    # the real inputs again: hall-1 differs from its record once more (the others are not
    # touched by either run: the one above shows it)
    back = apply(target, limit="hall-1")
    assert back.ok and back.changed == 0 and _ran_roles(back) == {"hall-1"}
    assert _ran_roles(apply(target, limit="hall-1")) == set()


def test_check_shows_a_drift_untouched_then_the_run_puts_right_that_host_alone(
    configured_lab: tuple[Any, Any],
) -> None:
    """A hand-made change on compute-2: a check run sees it and leaves it; the next run (not in
    check mode: --check is not carried over) runs the roles there alone, every converged host
    left alone after its fingerprint, and puts it right."""
    target, _ = configured_lab
    lab = Lab(target.plan.spec.name)
    loosen_faillock(lab, "compute-2")
    seen = apply(target, check=True)
    assert seen.ok and _ran_roles(seen) == {"compute-2"} and seen.changed >= 1
    assert "deny = 50\n" in faillock_text(lab, "compute-2")
    fixed = apply(target)
    assert fixed.ok and _ran_roles(fixed) == {"compute-2"}
    assert fixed.hosts["compute-2"].changed >= 1
    assert "deny = 5\n" in faillock_text(lab, "compute-2")


def test_compliance_passes_with_evidence_for_every_control(
    configured_lab: tuple[Any, Any], cloud: Any, logs_shipped: Any, tmp_path: Path
) -> None:
    """Every control on every host, the cluster's control plane and nodes included."""
    result = govcloud("compliance", "check", "--report", str(tmp_path), "--json", timeout=600)
    doc = json.loads(result.stdout)
    assert result.returncode == 0, doc["failed"][:5]
    report_text = (tmp_path / "report.md").read_text(encoding="utf-8")
    for item in ("k8s-api-authn-authz", "k8s-etcd-client-tls", "k8s-secrets-encrypted",
                 "k8s-api-audit", "k8s-kubelet-authn-authz", "tls-edge",
                 "tls-database", "tls-log"):  # fmt: skip
        assert item in report_text, item
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    for family in ("身份鉴别", "访问控制", "安全审计", "入侵防范", "集中管控", "恶意代码防范"):
        assert family in report
    assert "Controls not checkable on a host" in report
    assert (tmp_path / "summary.png").stat().st_size > 10_000
    assert (tmp_path / "junit.xml").is_file()


def test_a_non_compliant_host_fails_naming_each_control_and_apply_puts_them_back(
    configured_lab: tuple[Any, Any], logs_shipped: Any, tmp_path: Path
) -> None:
    """Two items undone on a department's VM (a host whose items need nothing but the site and
    the logs): root login allowed again (baseline) and rsyslog's sandboxing taken away
    (hardening). The check fails naming the host and those two items alone (the others still
    hold); the fingerprint sees both, so the next apply restores them."""
    target, _ = configured_lab
    lab = Lab(target.plan.spec.name)
    undo = ("sed -i 's/^PermitRootLogin no/PermitRootLogin yes/' /etc/ssh/sshd_config"
            " && systemctl reload ssh"
            " && rm /etc/systemd/system/rsyslog.service.d/govcloud-sandbox.conf"
            " && systemctl daemon-reload && systemctl restart rsyslog")  # fmt: skip
    # rsyslog's stop waits while its forward has messages in flight: up to systemd's 90 s
    assert lab.exec("mzt-vm-1", ["sh", "-c", undo], timeout=150).returncode == 0
    try:
        result = govcloud(
            "compliance", "check", "--report", str(tmp_path), "--limit", "mzt-vm-1", "--json"
        )
        doc = json.loads(result.stdout)
        assert result.returncode == 1
        assert sorted((f["host"], f["item"]) for f in doc["failed"]) == [
            ("mzt-vm-1", "services-sandboxed"),
            ("mzt-vm-1", "ssh-no-root"),
        ]
        assert "mzt-vm-1" in (tmp_path / "report.md").read_text(encoding="utf-8")
    finally:
        assert apply(target, limit="mzt-vm-1").ok  # the fingerprint sees both: a full run
    again = govcloud("compliance", "check", "--report", str(tmp_path), "--limit", "mzt-vm-1")
    assert again.returncode == 0, again.stdout[-2000:]


def test_a_host_down_mid_run_is_unreachable_and_the_rest_converge(
    configured_lab: tuple[Any, Any],
) -> None:
    target, _ = configured_lab
    lab = Lab(target.plan.spec.name)
    victim = "mzt-vm-1"
    # stop the host as soon as the run has started
    stopper = threading.Timer(1.0, lambda: lab.lxc.stop(lab.container(victim), kill=True))
    stopper.start()
    try:  # every role on two hosts: a run long enough
        result = apply(target, full=True, limit=f"{victim},backup-1")
    finally:
        stopper.join()
        lab.lxc.start(lab.container(victim))
    assert result.hosts[victim].status in ("unreachable", "failed")
    others = [h for h in result.hosts.values() if h.host != victim]
    assert others and all(h.status in ("ok", "changed") for h in others)
    lab.lxc.wait(lab.container(victim), "RUNNING", timeout=60)
    import time

    for _ in range(30):  # sshd back up
        if lab.exec(victim, ["systemctl", "is-active", "ssh"], check=False).returncode == 0:
            break
        time.sleep(1)
    healed = apply(target, limit=victim)
    assert healed.ok and healed.hosts[victim].status in ("ok", "changed")


def test_a_run_ending_leaves_another_runs_command_on_the_same_host_running_once(
    configured_lab: tuple[Any, Any], tmp_path: Path
) -> None:
    """Pulumi runs plays side by side. The first run here ends while the second's command is in
    flight on the same host: that command runs once (with SSH connections shared between runs
    it was cut when the first run ended, and Ansible's retry ran it a second time)."""
    target, _ = configured_lab
    lab = Lab(target.plan.spec.name)
    marker = "/var/tmp/govcloud-two-runs"
    lab.exec("compute-2", ["rm", "-f", marker])

    def run(name: str, command: str) -> RunResult:
        play = [{"hosts": "compute-2", "gather_facts": False,
                 "tasks": [{"name": name, "ansible.builtin.shell": command}]}]  # fmt: skip
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(play))
        (tmp_path / name / "inventory").mkdir(parents=True)
        return _run(path, path.name, tmp_path / name, target.inventory, target.connection,
                    limit=None, check=False, extravars=None, progress=None)  # fmt: skip

    results: dict[str, RunResult] = {}
    first = threading.Thread(target=lambda: results.update(first=run("first", "sleep 14")))
    first.start()
    deadline = time.monotonic() + 90
    while lab.exec("compute-2", ["pgrep", "-fx", "sleep 14"], check=False).returncode != 0:
        assert time.monotonic() < deadline, "the first run's command never started"
        time.sleep(0.5)
    results["second"] = run("second", f"echo ran >> {marker}; sleep 20")
    first.join()
    ran = lab.exec("compute-2", ["cat", marker]).stdout
    lab.exec("compute-2", ["rm", "-f", marker])
    assert results["first"].ok and results["second"].ok
    assert ran == "ran\n"
