"""The grade-3 (GB/T 22239-2019, 等保2.0 第三级) controls govcloud evidences on every host.

Each item names its control family and the clause of the standard's general requirements
(8.1.4: 安全计算环境; 8.1.5: 安全管理中心). Items a host cannot show are listed with the reason,
so an inspector sees every control, checked or not.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = (
    "身份鉴别",
    "访问控制",
    "安全审计",
    "入侵防范",
    "恶意代码防范",
    "数据完整性/保密性",
    "数据备份恢复",
    "集中管控",
)


@dataclass(frozen=True)
class Item:
    id: str
    family: str
    clause: str
    title: str
    roles: tuple[str, ...] = ()  # host roles it applies to; empty: every host
    not_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unchecked:
    family: str
    clause: str
    title: str
    reason: str


ITEMS: tuple[Item, ...] = (
    Item(
        "ssh-no-password",
        "身份鉴别",
        "8.1.4.1 a)",
        "SSH accepts keys or CA-signed certificates only, no passwords",
    ),
    Item("ssh-no-root", "身份鉴别", "8.1.4.1 a)", "no direct root login over SSH"),
    Item(
        "password-aging", "身份鉴别", "8.1.4.1 a)", "passwords expire within 90 days (login.defs)"
    ),
    Item(
        "password-complexity",
        "身份鉴别",
        "8.1.4.1 a)",
        "pam_pwquality: at least 12 characters of 3 classes",
    ),
    Item(
        "login-lockout",
        "身份鉴别",
        "8.1.4.1 b)",
        "pam_faillock locks an account after at most 5 failures",
    ),
    Item(
        "session-timeout",
        "身份鉴别",
        "8.1.4.1 b)",
        "idle shells and SSH sessions end (TMOUT ≤ 600 s, ClientAlive ≤ 300 s)",
    ),
    Item(
        "ssh-crypto",
        "身份鉴别",
        "8.1.4.1 c)",
        "remote management encrypted with modern key exchange, ciphers and MACs only",
    ),
    Item("uid0-only-root", "访问控制", "8.1.4.2 c)", "root is the only account with UID 0"),
    Item("no-empty-passwords", "访问控制", "8.1.4.2 c)", "no account has an empty password"),
    Item(
        "admin-sudo-logged",
        "访问控制",
        "8.1.4.2 d)",
        "administrators use sudo, every command logged to /var/log/sudo.log",
    ),
    Item(
        "file-permissions",
        "访问控制",
        "8.1.4.2 f)",
        "identity and sshd files owned by root with restrictive modes",
    ),
    Item(
        "audit-rules",
        "安全审计",
        "8.1.4.3 a)",
        "audit rules watch identity files and privileged commands",
    ),
    Item(
        "ssh-verbose-log",
        "安全审计",
        "8.1.4.3 b)",
        "sshd logs key fingerprints of every login (LogLevel VERBOSE)",
    ),
    Item(
        "log-forwarding",
        "安全审计",
        "8.1.4.3 c)",
        "every log line goes to the central log host over TLS only, each end showing a "
        "certificate from the PKI (queued while it is away)",
        not_roles=("log",),
    ),
    Item(
        "log-retention",
        "安全审计",
        "8.1.4.3 c)",
        "the log host keeps received logs at least 180 days",
        roles=("log",),
    ),
    Item(
        "firewall-default-deny",
        "入侵防范",
        "8.1.4.4 c)",
        "nftables input policy drop, the planned ruleset loaded",
    ),
    Item(
        "ssh-only-from-bastion",
        "入侵防范",
        "8.1.4.4 c)",
        "SSH accepted only from the bastion (management terminals restricted by address)",
        not_roles=("bastion",),
    ),
    Item(
        "no-high-risk-services",
        "入侵防范",
        "8.1.4.4 b)",
        "telnet, rpcbind, avahi, cups and rsync do not run",
    ),
    Item("minimal-install", "入侵防范", "8.1.4.4 a)", "no compilers on production hosts"),
    Item(
        "listening-ports",
        "入侵防范",
        "8.1.4.4 c)",
        "TCP listeners limited to SSH and the host role's own services",
    ),
    Item(
        "ssh-forwarding-off",
        "集中管控",
        "8.1.5.4",
        "nodes refuse SSH forwarding; only the bastion relays",
        not_roles=("bastion",),
    ),
    Item("time-sync", "集中管控", "8.1.5.4 d)", "time follows the management zone (chrony server)"),
    # hardening beyond the baseline (an outside host auditor's items)
    Item(
        "umask-027",
        "访问控制",
        "8.1.4.2 c)",
        "new files are not world-readable: umask 027 in login.defs and for login shells",
    ),
    Item(
        "password-hash-rounds",
        "身份鉴别",
        "8.1.4.1 a)",
        "password hashes cost at least 5000 SHA-crypt rounds (login.defs)",
    ),
    Item("sudoers-private", "访问控制", "8.1.4.2 c)", "/etc/sudoers.d is readable by root only"),
    Item(
        "kernel-modules-disabled",
        "入侵防范",
        "8.1.4.4 a)",
        "kernel modules a server never needs (USB storage, FireWire, DCCP, SCTP, RDS, TIPC, "
        "rare file systems) cannot load",
    ),
    Item(
        "login-banner",
        "身份鉴别",
        "8.1.4.1 a)",
        "a legal warning is shown before login, on the console and over SSH",
    ),
    Item(
        "services-sandboxed",
        "入侵防范",
        "8.1.4.4 c)",
        "the project's services run sandboxed (systemd exposure at most 5.0 of 10): the log "
        "service everywhere, OpenBao on the identity hosts",
    ),
    # the cluster's control plane and nodes
    Item(
        "k8s-api-authn-authz",
        "访问控制",
        "8.1.4.2 a)",
        "API server: no anonymous requests, Node+RBAC authorization, NodeRestriction and "
        "PodSecurity admission, no privileged pods",
        roles=("control-plane",),
    ),
    Item(
        "k8s-api-audit",
        "安全审计",
        "8.1.4.3 a)",
        "API server audit log on, kept at least 180 days",
        roles=("control-plane",),
    ),
    Item(
        "k8s-etcd-client-tls",
        "访问控制",
        "8.1.4.2 a)",
        "etcd serves TLS only and requires client certificates (clients and peers)",
        roles=("control-plane",),
    ),
    Item(
        "k8s-secrets-encrypted",
        "数据完整性/保密性",
        "8.1.4.8",
        "Secrets encrypted at rest in etcd (EncryptionConfiguration, key file 0600)",
        roles=("control-plane",),
    ),
    Item(
        "k8s-kubelet-authn-authz",
        "访问控制",
        "8.1.4.2 a)",
        "kubelet: no anonymous requests, webhook authentication and authorization, no "
        "read-only port",
        roles=("compute",),
    ),
    Item(
        "file-integrity",
        "入侵防范",
        "8.1.4.4 f)",
        "AIDE keeps a baseline of programs and configuration; a scheduled, sandboxed check "
        "reports every change to the log host",
    ),
    Item(
        "patch-level",
        "入侵防范",
        "8.1.4.4 e)",
        "no installed package has a security update pending: the image carries the security "
        "archive's lists and every fix in them",
    ),
    Item(
        "process-accounting",
        "安全审计",
        "8.1.4.3 a)",
        "process accounting (acct) records every command run, readable by root and adm only",
    ),
    # citizens' traffic (通信传输: cryptographic protection of data in transit)
    Item(
        "tls-edge",
        "数据完整性/保密性",
        "8.1.2.2 a) b)",
        "the hall edge serves HTTPS only: TLS 1.2/1.3, no weak suite, certificate from the "
        "PKI with days left, HSTS, plain HTTP only redirects",
        roles=("hall",),
    ),
    Item(
        "tls-database",
        "数据完整性/保密性",
        "8.1.2.2 a) b)",
        "a database listening on the network serves TLS only: a client without it is refused, "
        "TLS 1.2/1.3, certificate from the PKI for the host's address with days left",
        roles=("vm",),
    ),
    Item(
        "tls-log",
        "数据完整性/保密性",
        "8.1.2.2 a) b)",
        "the log host receives over TLS only: TLS 1.2/1.3, its certificate from the PKI, "
        "senders without a certificate refused, nothing on 514",
        roles=("log",),
    ),
)

UNCHECKED: tuple[Unchecked, ...] = (
    Unchecked(
        "身份鉴别",
        "8.1.4.1 d)",
        "two or more authentication techniques, one cryptographic",
        "identity system: OpenBao userpass with TOTP MFA plus SSH certificates "
        "(checked by the identity tests, not on each host)",
    ),
    Unchecked(
        "安全审计",
        "8.1.4.3 d)",
        "the audit process cannot be interrupted",
        "auditd cannot run inside LXC containers (kernel audit is not namespaced); on "
        "real hosts the service check applies; OpenBao's two audit devices are checked "
        "by the identity tests",
    ),
    Unchecked(
        "恶意代码防范",
        "8.1.4.5",
        "malicious-code protection",
        "organisational on Linux servers: application whitelisting and anti-malware are "
        "procured separately; the integrity check of programs is item file-integrity",
    ),
    Unchecked(
        "数据完整性/保密性",
        "8.1.4.7-8.1.4.8",
        "cryptographic protection of important data in storage",
        "the identity system's TLS and the department KV mounts are checked by the "
        "identity tests; disk encryption is a property of the storage pool",
    ),
    Unchecked(
        "数据备份恢复",
        "8.1.4.9",
        "local backup and restore; off-site backup; hot redundancy",
        "organisational and per application (raft snapshots of OpenBao, PostgreSQL base "
        "backups of the halls); not a host setting",
    ),
)


def applies(item: Item, role: str) -> bool:
    if item.roles and role not in item.roles:
        return False
    return role not in item.not_roles
