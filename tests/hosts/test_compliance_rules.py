"""What the compliance checks read: a host's input chain for SSH openings (rule by rule, in
order), its modprobe configuration, systemd's exposure reading, apt's pending security updates."""

from __future__ import annotations

import pytest

from security.compliance.checks import bastion_ssh_open, ssh_openings

pytestmark = pytest.mark.unit

HEAD = """
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    ip saddr @s_role_bastion tcp dport { 22 } accept comment "R002 ssh-from-bastion"
"""


def test_a_department_segment_closed_to_ssh_before_its_own_accept_is_not_an_opening() -> None:
    chain = HEAD + (
        'ip saddr @s_dept_mzt tcp dport { 22 } drop comment "R021 mzt-internal-no-ssh"\n'
        'ip saddr @s_dept_mzt meta l4proto tcp accept comment "R022 mzt-internal"\n'
    )
    assert ssh_openings(chain) == []


@pytest.mark.parametrize(
    "rule",
    [
        "ip saddr @s_dept_mzt meta l4proto tcp accept",  # every TCP port, 22 included
        "ip saddr @s_sites tcp dport { 22, 80 } accept",
        "tcp dport 22 accept",
        "ip saddr @s_public accept",
    ],
)
def test_an_accept_that_lets_others_reach_port_22_is_named(rule: str) -> None:
    assert ssh_openings(HEAD + rule + "\n") == [rule]


@pytest.mark.parametrize(
    "rule",
    [
        "ip saddr @s_sites tcp dport { 80, 443 } accept",
        "ip saddr @s_sites meta l4proto udp accept",
        "ip saddr @s_management icmp type echo-request accept",
    ],
)
def test_accepts_that_miss_port_22_are_not_openings(rule: str) -> None:
    assert ssh_openings(HEAD + rule + "\n") == []


def test_a_drop_for_another_source_does_not_close_port_22_for_this_one() -> None:
    chain = HEAD + (
        "ip saddr @s_dept_a tcp dport 22 drop\nip saddr @s_dept_b meta l4proto tcp accept\n"
    )
    assert ssh_openings(chain) == ["ip saddr @s_dept_b meta l4proto tcp accept"]


@pytest.mark.parametrize(
    ("rule", "open_"),
    [
        ("ip saddr @s_role_bastion tcp dport { 22 } accept", True),
        # a department's own host: its role's rules name the destination
        ("ip saddr @s_role_bastion ip daddr @s_dept_dsjj tcp dport { 22 } accept", True),
        ("ip saddr @s_role_bastion tcp dport { 22 } drop", False),
        ("ip saddr @s_role_bastion tcp dport { 80 } accept", False),
        ("ip saddr @s_management tcp dport { 22 } accept", False),
    ],
)
def test_the_bastions_ssh_rule_is_found_with_or_without_a_destination(
    rule: str, open_: bool
) -> None:
    assert bastion_ssh_open(HEAD.replace(HEAD.splitlines()[-1], "") + rule + "\n") is open_


def test_a_module_counts_as_disabled_only_with_an_install_line() -> None:
    from security.compliance.checks import DISABLED_MODULES, modules_disabled

    everything = "".join(f"install {m} /bin/false\nblacklist {m}\n" for m in DISABLED_MODULES)
    assert modules_disabled(everything) == []
    # a blacklist alone still lets a module load on request; underscores name the same module
    partial = everything.replace("install sctp /bin/false\n", "").replace(
        "install usb-storage", "install usb_storage"
    )
    assert modules_disabled(partial) == ["sctp"]
    assert modules_disabled("# install dccp /bin/false\n") == list(DISABLED_MODULES)


def test_the_exposure_is_read_from_systemd_analyze() -> None:
    from security.compliance.checks import exposure

    out = "  ✓ PrivateTmp= ...\n→ Overall exposure level for rsyslog.service: 4.4 OK :-)\n"
    assert exposure(out) == 4.4
    assert exposure("→ Overall exposure level for x.service: 9.6 UNSAFE :-{") == 9.6
    assert exposure("Failed to connect to bus") is None


def test_only_updates_from_a_security_archive_count_as_pending_fixes() -> None:
    from security.compliance.checks import pending_security

    sim = (
        "Reading package lists...\n"
        "Inst libssl3 [3.0.20-1~deb12u2] (3.0.22-1~deb12u2 "
        "Debian-Security:12/oldstable-security [amd64])\n"
        "Inst tzdata [2026b-0+deb12u1] (2026c-0+deb12u1 Debian:12.13/oldstable [all])\n"
        "Conf libssl3 (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])\n"
    )
    assert pending_security(sim) == ["libssl3"]
    assert pending_security("0 upgraded, 0 newly installed, 0 to remove.\n") == []
