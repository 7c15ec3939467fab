"""One check per control item, run on a testinfra ``host``; each returns its evidence or fails.

A check asserts with a message that names what was found, so a failure in the report says
exactly what is wrong on which host.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from security.compliance.tls import (
    database_on_host,
    edge_on_host,
    log_receiver_tls,
    log_shipping_tls,
)

GOOD_CIPHERS = {
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
}
GOOD_MACS = {
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
}
GOOD_KEX = {
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
}
HIGH_RISK = (
    "telnet.socket",
    "rpcbind.service",
    "avahi-daemon.service",
    "cups.service",
    "rsync.service",
)
#: TCP ports each role may listen on beyond SSH (non-loopback)
ROLE_PORTS: dict[str, set[int]] = {
    "hall": {80, 443, 8080},
    "identity": {8200, 8201},
    "log": {6514},  # syslog over TLS (RFC 5425)
    "shared": {9443, 9444, 9445, 9446},
    "control-plane": {6443},  # etcd, the controller manager and the scheduler: loopback only
    # kubelet; kube-router's health port (it has no bind-address option)
    "compute": {10250, 20244, 4443},  # kubelet, kube-router's health, metrics-server
    "registry": {443},
}


@dataclass
class Context:
    role: str
    bastion: str
    loghost: str
    ports: frozenset[int] = frozenset()  # declared in the spec for this host (tenant.reaches)
    address: str = ""  # the host's address in the plan
    cache: dict[str, Any] = field(default_factory=dict)


Check = Callable[[Any, Context], str]


def _sshd(host: Any, ctx: Context) -> dict[str, str]:
    if "sshd" not in ctx.cache:
        out = host.check_output("sshd -T")
        ctx.cache["sshd"] = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return ctx.cache["sshd"]


def _value(text: str, key: str, sep: str = r"\s+") -> str | None:
    m = re.search(rf"^\s*{re.escape(key)}{sep}(\S+)", text, re.M)
    return m.group(1) if m else None


def ssh_no_password(host: Any, ctx: Context) -> str:
    conf = _sshd(host, ctx)
    got = (conf.get("passwordauthentication"), conf.get("kbdinteractiveauthentication"))
    assert got == ("no", "no"), f"sshd password / keyboard-interactive auth: {got}"
    return (
        f"sshd -T: passwordauthentication no, authenticationmethods "
        f"{conf.get('authenticationmethods')}"
    )


def ssh_no_root(host: Any, ctx: Context) -> str:
    value = _sshd(host, ctx).get("permitrootlogin")
    assert value == "no", f"sshd permitrootlogin is {value}"
    return "sshd -T: permitrootlogin no"


def password_aging(host: Any, ctx: Context) -> str:
    text = host.file("/etc/login.defs").content_string
    days = _value(text, "PASS_MAX_DAYS")
    assert days is not None and int(days) <= 90, f"PASS_MAX_DAYS is {days}"
    return f"/etc/login.defs: PASS_MAX_DAYS {days}"


def password_complexity(host: Any, ctx: Context) -> str:
    conf = host.file("/etc/security/pwquality.conf").content_string
    minlen, minclass = _value(conf, "minlen", r"\s*=\s*"), _value(conf, "minclass", r"\s*=\s*")
    assert minlen and int(minlen) >= 12, f"pwquality minlen is {minlen}"
    assert minclass and int(minclass) >= 3, f"pwquality minclass is {minclass}"
    pam = host.file("/etc/pam.d/common-password").content_string
    assert "pam_pwquality.so" in pam, "pam_pwquality is not in /etc/pam.d/common-password"
    return f"pwquality minlen {minlen}, minclass {minclass}; pam_pwquality in common-password"


def login_lockout(host: Any, ctx: Context) -> str:
    conf = host.file("/etc/security/faillock.conf").content_string
    deny = _value(conf, "deny", r"\s*=\s*")
    assert deny and 0 < int(deny) <= 5, f"faillock deny is {deny}"
    auth = host.file("/etc/pam.d/common-auth").content_string
    assert "pam_faillock.so" in auth, "pam_faillock is not in /etc/pam.d/common-auth"
    return f"faillock deny {deny}; pam_faillock in common-auth"


def session_timeout(host: Any, ctx: Context) -> str:
    text = host.file("/etc/profile.d/govcloud-tmout.sh").content_string
    tmout = _value(text, "TMOUT", "=")
    assert tmout and 0 < int(tmout) <= 600, f"TMOUT is {tmout}"
    alive = _sshd(host, ctx).get("clientaliveinterval", "0")
    assert 0 < int(alive) <= 300, f"sshd clientaliveinterval is {alive}"
    return f"TMOUT {tmout}; sshd clientaliveinterval {alive}"


def ssh_crypto(host: Any, ctx: Context) -> str:
    conf = _sshd(host, ctx)
    for key, good in (("ciphers", GOOD_CIPHERS), ("macs", GOOD_MACS), ("kexalgorithms", GOOD_KEX)):
        offered = set(conf.get(key, "").split(","))
        bad = offered - good
        assert not bad, f"sshd offers weak {key}: {', '.join(sorted(bad))}"
    return "sshd -T: ciphers, MACs and key exchange all in the modern set"


def uid0_only_root(host: Any, ctx: Context) -> str:
    users = [
        line.split(":")[0]
        for line in host.file("/etc/passwd").content_string.splitlines()
        if line.count(":") >= 3 and line.split(":")[2] == "0"
    ]
    assert users == ["root"], f"accounts with UID 0: {users}"
    return "only root has UID 0"


def no_empty_passwords(host: Any, ctx: Context) -> str:
    shadow = host.file("/etc/shadow").content_string
    empty = [
        line.split(":")[0]
        for line in shadow.splitlines()
        if line.count(":") >= 2 and line.split(":")[1] == ""
    ]
    assert not empty, f"accounts with an empty password: {empty}"
    return "no empty password in /etc/shadow"


def admin_sudo_logged(host: Any, ctx: Context) -> str:
    out = host.run("grep -rh 'logfile' /etc/sudoers /etc/sudoers.d")
    assert "/var/log/sudo.log" in out.stdout, "sudo does not log to /var/log/sudo.log"
    assert host.run("visudo -c").rc == 0, "visudo -c reports errors"
    return "sudoers: Defaults logfile=/var/log/sudo.log; visudo -c ok"


def file_permissions(host: Any, ctx: Context) -> str:
    want = {
        "/etc/passwd": 0o644,
        "/etc/group": 0o644,
        "/etc/shadow": 0o640,
        "/etc/gshadow": 0o640,
        "/etc/ssh/sshd_config": 0o600,
    }
    for path, mode in want.items():
        f = host.file(path)
        assert f.user == "root", f"{path} is owned by {f.user}"
        assert f.mode & ~mode == 0, f"{path} has mode {oct(f.mode)}, at most {oct(mode)} expected"
    return "identity and sshd files: root-owned, modes at most 644/640/600"


def audit_rules(host: Any, ctx: Context) -> str:
    f = host.file("/etc/audit/rules.d/govcloud.rules")
    assert f.exists, "/etc/audit/rules.d/govcloud.rules is missing"
    text = f.content_string
    for watch in ("-w /etc/shadow -p wa", "-w /etc/sudoers -p wa", "path=/usr/bin/sudo"):
        assert watch in text, f"audit rules lack {watch!r}"
    return "audit rules watch identity files, sudoers and privileged commands"


def ssh_verbose_log(host: Any, ctx: Context) -> str:
    level = _sshd(host, ctx).get("loglevel")
    assert level == "VERBOSE", f"sshd loglevel is {level}"
    return "sshd -T: loglevel VERBOSE"


def log_retention(host: Any, ctx: Context) -> str:
    text = host.file("/etc/logrotate.d/govcloud-remote").content_string
    rotate = _value(text, "rotate")
    assert rotate and int(rotate) >= 180, f"logrotate keeps {rotate} days"
    return f"logrotate keeps received logs {rotate} days"


def _input_chain(host: Any) -> str:
    out = host.run("nft list chain inet govcloud input")
    assert out.rc == 0, "no govcloud input chain loaded"
    return str(out.stdout)


def firewall_default_deny(host: Any, ctx: Context) -> str:
    chain = _input_chain(host)
    assert "policy drop" in chain, "the input chain does not drop by default"
    return "nft: table inet govcloud, input chain policy drop"


def ssh_openings(chain: str) -> list[str]:
    """The input chain's rules, in order, that accept SSH from anyone but the bastion: an
    accept matching port 22 (by its port, or by matching every TCP port) from a source whose
    port 22 no earlier drop has closed. Empty when only the bastion gets in."""
    closed: set[str] = set()
    opened: list[str] = []
    for raw in chain.splitlines():
        rule = raw.strip()
        verdict = re.search(r"\b(accept|drop|reject)\b", rule)
        if not verdict or rule.startswith(("ct state", "iif ", "type ")) or "icmp" in rule:
            continue
        ports = re.search(r"dport (\{[^}]*\}|\d+)", rule)
        if ports:
            hits_22 = re.search(r"\b22\b", ports.group(1)) is not None
        else:
            hits_22 = re.search(r"l4proto (?!tcp\b)|\budp\b", rule) is None
        if not hits_22:
            continue
        source = re.search(r"ip saddr (\S+)", rule)
        who = source.group(1) if source else "*"
        if verdict.group(1) != "accept":
            closed.add(who)
        elif who != "@s_role_bastion" and who not in closed and "*" not in closed:
            opened.append(rule)
    return opened


def bastion_ssh_open(chain: str) -> bool:
    """Whether the input chain accepts SSH from the bastion's set. A host of a role spread over
    several zones (the departments' own hosts) names the destination too (ip daddr @set)."""
    rule = r"ip saddr @s_role_bastion (?:ip daddr \S+ )?tcp dport (\{[^}]*\b22\b[^}]*\}|22\b)"
    return re.search(rule + r".*\baccept\b", chain) is not None


def ssh_only_from_bastion(host: Any, ctx: Context) -> str:
    chain = _input_chain(host)
    assert bastion_ssh_open(chain), "no SSH rule for the bastion: SSH is closed to the bastion too"
    opened = ssh_openings(chain)
    assert not opened, f"SSH opened to others: {opened[0]}"
    elements = host.run("nft list set inet govcloud s_role_bastion").stdout
    assert ctx.bastion in elements, f"the bastion set does not hold {ctx.bastion}"
    return f"SSH accepted only from {ctx.bastion} (the bastion)"


def no_high_risk_services(host: Any, ctx: Context) -> str:
    running = [s for s in HIGH_RISK if host.service(s).is_running]
    assert not running, f"running: {running}"
    return "none of " + ", ".join(HIGH_RISK) + " runs"


def minimal_install(host: Any, ctx: Context) -> str:
    found = [tool for tool in ("gcc", "cc", "make") if host.exists(tool)]
    assert not found, f"build tools installed: {found}"
    return "no gcc, cc or make"


def listening_ports(host: Any, ctx: Context) -> str:
    allowed = {22} | ROLE_PORTS.get(ctx.role, set()) | set(ctx.ports)
    ports = set()
    for sock in host.socket.get_listening_sockets():
        m = re.match(r"tcp://(.+):(\d+)$", sock)
        if m and not m.group(1).startswith(("127.", "::1", "[::1]")):
            ports.add(int(m.group(2)))
    extra = ports - allowed
    assert not extra, f"unexpected TCP listeners: {sorted(extra)}"
    return f"TCP listeners {sorted(ports)} within {sorted(allowed)}"


def ssh_forwarding_off(host: Any, ctx: Context) -> str:
    conf = _sshd(host, ctx)
    got = (conf.get("allowtcpforwarding"), conf.get("allowagentforwarding"))
    assert got == ("no", "no"), f"sshd forwarding (tcp, agent): {got}"
    return "sshd -T: allowtcpforwarding no, allowagentforwarding no"


def time_sync(host: Any, ctx: Context) -> str:
    text = host.file("/etc/chrony/chrony.conf").content_string
    assert f"server {ctx.loghost}" in text, "chrony does not follow the management zone"
    return f"chrony follows {ctx.loghost}"


def _unit_flags(host: Any, unit: str) -> dict[str, str]:
    """The ``--flag=value`` arguments of a systemd unit's ExecStart."""
    text = host.file(f"/etc/systemd/system/{unit}.service").content_string
    return dict(re.findall(r"--([a-z0-9-]+)=(\S+)", text))


def k8s_api_authn_authz(host: Any, ctx: Context) -> str:
    f = _unit_flags(host, "kube-apiserver")
    assert f.get("anonymous-auth") == "false", "kube-apiserver: anonymous-auth is not false"
    modes = f.get("authorization-mode", "").split(",")
    assert modes[:2] == ["Node", "RBAC"], f"kube-apiserver: authorization-mode {modes}"
    plugins = set(f.get("enable-admission-plugins", "").split(","))
    missing = {"NodeRestriction", "PodSecurity"} - plugins
    assert not missing, f"kube-apiserver: admission plugins missing {sorted(missing)}"
    assert f.get("allow-privileged") == "false", "kube-apiserver: privileged pods allowed"
    assert host.service("kube-apiserver").is_running, "kube-apiserver is not running"
    return (
        "kube-apiserver: anonymous-auth=false, authorization-mode="
        f"{f['authorization-mode']}, NodeRestriction+PodSecurity, allow-privileged=false"
    )


def k8s_api_audit(host: Any, ctx: Context) -> str:
    f = _unit_flags(host, "kube-apiserver")
    path, age = f.get("audit-log-path"), int(f.get("audit-log-maxage", "0"))
    assert path and f.get("audit-policy-file"), "kube-apiserver: no audit log or policy"
    assert age >= 180, f"kube-apiserver: audit logs kept {age} days (< 180)"
    assert host.file(path).exists, f"{path} does not exist"
    return f"audit log {path}, policy {f['audit-policy-file']}, kept {age} days"


def k8s_etcd_client_tls(host: Any, ctx: Context) -> str:
    f = _unit_flags(host, "etcd")
    assert f.get("client-cert-auth") == "true", "etcd: client-cert-auth is not true"
    assert f.get("peer-client-cert-auth") == "true", "etcd: peer-client-cert-auth is not true"
    urls = f.get("listen-client-urls", "") + "," + f.get("listen-peer-urls", "")
    plain = [u for u in urls.split(",") if u and not u.startswith("https://")]
    assert not plain, f"etcd listens without TLS: {plain}"
    return f"etcd: client and peer certificates required, listening on {urls.strip(',')}"


def k8s_secrets_encrypted(host: Any, ctx: Context) -> str:
    f = _unit_flags(host, "kube-apiserver")
    path = f.get("encryption-provider-config")
    assert path, "kube-apiserver: no encryption-provider-config"
    conf = host.file(path)
    assert conf.mode & 0o077 == 0, f"{path} is readable by others (mode {conf.mode:o})"
    text = conf.content_string
    providers = re.findall(r"^\s*- (secretbox|aescbc|aesgcm|kms|identity):", text, re.M)
    assert providers and providers[0] != "identity", f"{path}: first provider {providers[:1]}"
    return f"Secrets written with {providers[0]} ({path}, mode {conf.mode:o})"


def k8s_kubelet_authn_authz(host: Any, ctx: Context) -> str:
    conf = yaml.safe_load(host.file("/var/lib/kubelet/config.yaml").content_string)
    authn, authz = conf.get("authentication", {}), conf.get("authorization", {})
    assert authn.get("anonymous", {}).get("enabled") is False, "kubelet: anonymous requests on"
    assert authn.get("webhook", {}).get("enabled") is True, "kubelet: webhook authn off"
    assert authz.get("mode") == "Webhook", f"kubelet: authorization mode {authz.get('mode')}"
    assert conf.get("readOnlyPort", 10255) == 0, "kubelet: read-only port open"
    assert host.service("kubelet").is_running, "kubelet is not running"
    return "kubelet: anonymous off, webhook authn, authorization Webhook, readOnlyPort 0"


# -- hardening beyond the baseline --------------------------------------------------------

DISABLED_MODULES = ("usb-storage", "firewire-core", "dccp", "sctp", "rds", "tipc")
MAX_EXPOSURE = 5.0  # systemd-analyze security: 0 (tight) to 10 (unsandboxed)
SANDBOXED = ("rsyslog.service",)  # on every host
SANDBOXED_BY_ROLE = {"identity": ("openbao.service",)}  # where the role runs the service
_EXPOSURE = re.compile(r"Overall exposure level for \S+: ([0-9.]+)")


def umask_027(host: Any, ctx: Context) -> str:
    defs = _value(host.file("/etc/login.defs").content_string, "UMASK")
    assert defs == "027", f"login.defs UMASK is {defs}"
    shell = host.run("bash -lc umask").stdout.strip()  # what a login shell really gets
    assert shell == "0027", f"a login shell's umask is {shell}"
    return f"/etc/login.defs UMASK {defs}; a login shell's umask {shell}"


def password_hash_rounds(host: Any, ctx: Context) -> str:
    text = host.file("/etc/login.defs").content_string
    low, high = _value(text, "SHA_CRYPT_MIN_ROUNDS"), _value(text, "SHA_CRYPT_MAX_ROUNDS")
    assert low is not None and int(low) >= 5000, f"SHA_CRYPT_MIN_ROUNDS is {low}"
    assert high is not None and int(high) >= int(low), f"SHA_CRYPT_MAX_ROUNDS is {high}"
    return f"/etc/login.defs: SHA_CRYPT_MIN_ROUNDS {low}, SHA_CRYPT_MAX_ROUNDS {high}"


def sudoers_private(host: Any, ctx: Context) -> str:
    d = host.file("/etc/sudoers.d")
    assert d.user == "root" and d.mode & 0o007 == 0, f"/etc/sudoers.d is {d.user} {d.mode:o}"
    return f"/etc/sudoers.d: {d.user}:{d.group} {d.mode:o}"


def modules_disabled(text: str) -> list[str]:
    """The modules of :data:`DISABLED_MODULES` that modprobe configuration ``text`` does not
    keep from loading (an ``install M /bin/false`` or ``/bin/true`` line)."""
    blocked = set(re.findall(r"^install\s+(\S+)\s+/bin/(?:false|true)\s*$", text, re.M))
    names = {m.replace("_", "-") for m in blocked}
    return [m for m in DISABLED_MODULES if m not in names]


def kernel_modules_disabled(host: Any, ctx: Context) -> str:
    text = host.run("cat /etc/modprobe.d/*.conf 2>/dev/null").stdout
    missing = modules_disabled(text)
    assert not missing, f"may still load: {', '.join(missing)}"
    return f"install /bin/false for {', '.join(DISABLED_MODULES)} (and more) in /etc/modprobe.d"


def login_banner(host: Any, ctx: Context) -> str:
    banner = _sshd(host, ctx).get("banner", "none")
    assert banner not in ("none", ""), "sshd shows no banner"
    for path in (banner, "/etc/issue"):
        text = host.file(path).content_string if host.file(path).exists else ""
        assert "Authorised use only" in text, f"{path} carries no legal warning"
    return f"sshd -T banner {banner}; /etc/issue and {banner} warn: authorised use only"


def exposure(text: str) -> float | None:
    """The overall exposure of ``systemd-analyze security UNIT``'s output."""
    m = _EXPOSURE.search(text)
    return float(m.group(1)) if m else None


AIDE_CONFIG = "/etc/aide/govcloud.conf"
AIDE_DB = "/var/lib/aide/govcloud.db"


def file_integrity(host: Any, ctx: Context) -> str:
    """AIDE: its configuration parses, a baseline exists, the sandboxed check is scheduled."""
    r = host.run(f"aide --config-check --config={AIDE_CONFIG}")
    assert r.rc == 0, f"{AIDE_CONFIG}: {(r.stdout + r.stderr).strip()[:160] or 'missing'}"
    db = host.file(AIDE_DB)
    assert db.exists and db.size > 0, f"no baseline at {AIDE_DB}"
    assert db.user == "root" and db.mode & 0o077 == 0, f"{AIDE_DB} is {db.user} {db.mode:o}"
    timer = host.service("govcloud-integrity.timer")
    assert timer.is_enabled and timer.is_running, "the integrity check is not scheduled"
    out = host.run("systemd-analyze security --no-pager govcloud-integrity.service").stdout
    level = exposure(out)
    assert level is not None and level <= MAX_EXPOSURE, f"the check's exposure is {level}"
    taken = host.run(f"date -u -r {AIDE_DB} +%Y-%m-%dT%H:%MZ").stdout.strip()
    return (
        f"AIDE baseline {AIDE_DB} ({db.size} bytes, {taken}); govcloud-integrity.timer "
        f"enabled, the check sandboxed (exposure {level}); findings to syslog (govcloud-aide)"
    )


SECURITY_LISTS = "/var/lib/apt/lists/*_debian-security_dists_*_InRelease"


def pending_security(simulation: str) -> list[str]:
    """The packages ``apt-get -s dist-upgrade`` would update from a security archive."""
    return [
        line.split()[1]
        for line in simulation.splitlines()
        if line.startswith("Inst ") and "-security" in line
    ]


def patch_level(host: Any, ctx: Context) -> str:
    """No installed package has a fixed security update pending, against the security
    archive's lists the host carries (hosts reach no mirror: the lists are the image's)."""
    lists = host.run(f"grep -h -m1 '^Date:' {SECURITY_LISTS}")
    assert lists.rc == 0 and lists.stdout.strip(), "apt's lists hold no security archive"
    sim = host.run("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    assert sim.rc == 0, f"apt-get -s dist-upgrade: {sim.stderr.strip()[:160]}"
    pending = pending_security(sim.stdout)
    assert not pending, f"{len(pending)} security update(s) pending: {', '.join(pending[:6])}"
    of = lists.stdout.strip().splitlines()[0].removeprefix("Date:").strip()
    count = host.run("dpkg-query -W -f '.' | wc -c").stdout.strip()
    return f"{count} packages installed, no security update pending (security archive of {of})"


def process_accounting(host: Any, ctx: Context) -> str:
    """acct: the kernel records every process that ends, into a file only root and adm read."""
    acct = host.service("acct")
    assert acct.is_enabled and acct.is_running, "process accounting (acct) is off"
    pacct = host.file("/var/log/account/pacct")
    assert pacct.exists, "no /var/log/account/pacct"
    assert pacct.mode & 0o007 == 0, f"/var/log/account/pacct is mode {pacct.mode:o}"
    last = host.run("lastcomm 2>/dev/null | head -n 1").stdout.strip()
    assert last, "no process recorded"
    return f"acct on: /var/log/account/pacct ({pacct.size} bytes), last record: {last[:60]}"


def services_sandboxed(host: Any, ctx: Context) -> str:
    found = []
    for unit in (*SANDBOXED, *SANDBOXED_BY_ROLE.get(ctx.role, ())):
        if unit not in SANDBOXED and host.run(f"systemctl cat {unit}").rc != 0:
            found.append(f"{unit} not installed yet")  # e.g. before identity apply
            continue
        r = host.run(f"systemd-analyze security --no-pager {unit}")
        level = exposure(r.stdout)
        assert level is not None, f"{unit}: no exposure reading ({r.stderr.strip()[:120]})"
        assert level <= MAX_EXPOSURE, f"{unit}: exposure {level} > {MAX_EXPOSURE}"
        assert host.service(unit.removesuffix(".service")).is_running, f"{unit} is not running"
        found.append(f"{unit} {level}")
    return f"systemd-analyze security: {', '.join(found)} (at most {MAX_EXPOSURE})"


CHECKS: dict[str, Check] = {
    "ssh-no-password": ssh_no_password,
    "ssh-no-root": ssh_no_root,
    "password-aging": password_aging,
    "password-complexity": password_complexity,
    "login-lockout": login_lockout,
    "session-timeout": session_timeout,
    "ssh-crypto": ssh_crypto,
    "uid0-only-root": uid0_only_root,
    "no-empty-passwords": no_empty_passwords,
    "admin-sudo-logged": admin_sudo_logged,
    "file-permissions": file_permissions,
    "audit-rules": audit_rules,
    "ssh-verbose-log": ssh_verbose_log,
    "log-forwarding": log_shipping_tls,
    "tls-log": log_receiver_tls,
    "log-retention": log_retention,
    "firewall-default-deny": firewall_default_deny,
    "ssh-only-from-bastion": ssh_only_from_bastion,
    "no-high-risk-services": no_high_risk_services,
    "minimal-install": minimal_install,
    "listening-ports": listening_ports,
    "ssh-forwarding-off": ssh_forwarding_off,
    "time-sync": time_sync,
    "k8s-api-authn-authz": k8s_api_authn_authz,
    "k8s-api-audit": k8s_api_audit,
    "k8s-etcd-client-tls": k8s_etcd_client_tls,
    "k8s-secrets-encrypted": k8s_secrets_encrypted,
    "k8s-kubelet-authn-authz": k8s_kubelet_authn_authz,
    "tls-edge": edge_on_host,
    "tls-database": database_on_host,
    "umask-027": umask_027,
    "password-hash-rounds": password_hash_rounds,
    "sudoers-private": sudoers_private,
    "kernel-modules-disabled": kernel_modules_disabled,
    "login-banner": login_banner,
    "services-sandboxed": services_sandboxed,
    "file-integrity": file_integrity,
    "patch-level": patch_level,
    "process-accounting": process_accounting,
}
