"""Who logged in to the hosts over SSH, and with what: sshd's ``Accepted publickey`` lines.

Every host ships its log to the log host (``/var/log/remote/<host>/<day>.log``). sshd writes
one line per accepted key, and the line tells a certificate from a plain key:

    Accepted publickey for ops from 10.0.0.2 port 50022 ssh2: ED25519 SHA256:<key fingerprint>
    Accepted publickey for ops from 10.0.0.2 port 50022 ssh2: ED25519-CERT SHA256:<key
        fingerprint> ID <key id> (serial 7) CA ED25519 SHA256:<CA fingerprint>

People and automation log in with certificates from OpenBao's SSH CA (their key id names
them). A plain-key login is outside the CA: with the provisioning key's fingerprint it is a
**break-glass** login; with any other key it is a plain-key login the report lists too.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

_PREFIX = re.compile(
    r"^(?:(?P<time>\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s+"
    r"(?P<host>\S+)\s+)?\S*sshd(?:-session)?\[\d+\]:\s"
)
_ACCEPTED = re.compile(
    r"Accepted publickey for (?P<user>\S+) from (?P<source>\S+) port \d+ ssh2: "
    r"(?P<kind>\S+) (?P<fingerprint>SHA256:[A-Za-z0-9+/]+=*)"
    r"(?: ID (?P<key_id>.*) \(serial (?P<serial>\d+)\) CA (?P<ca_kind>\S+) "
    r"(?P<ca>SHA256:[A-Za-z0-9+/]+=*))?\s*$"
)
KEEP_TIMES = 50  # times kept per key (counts stay exact)


@dataclass(frozen=True)
class Login:
    time: str
    host: str
    user: str
    source: str
    kind: str  # ED25519, ED25519-CERT, RSA, ...
    fingerprint: str  # of the key (for a certificate: of the certified key)
    key_id: str | None = None
    serial: int | None = None
    ca: str | None = None  # the signing CA's fingerprint

    @property
    def certificate(self) -> bool:
        return self.key_id is not None


def parse_line(line: str, host: str = "") -> Login | None:
    """The login an sshd line records, or None for any other line. ``host``: where the line
    came from, when the line itself does not say (a local file)."""
    at = line.find("Accepted publickey for ")
    if at < 0:
        return None
    m = _ACCEPTED.search(line, at)
    if m is None:
        return None
    prefix = _PREFIX.match(line)
    when = (prefix.group("time") if prefix else None) or ""
    return Login(
        time=when,
        host=(prefix.group("host") if prefix else None) or host,
        user=m.group("user"),
        source=m.group("source"),
        kind=m.group("kind"),
        fingerprint=m.group("fingerprint"),
        key_id=m.group("key_id"),
        serial=int(m.group("serial")) if m.group("serial") else None,
        ca=m.group("ca"),
    )


def fingerprint(public_key: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line (``ssh-ed25519 AAAA... comment``)."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def key_fingerprint(path: Path) -> str:
    """The fingerprint of a key file: a public key, or an OpenSSH private key (its ``.pub``
    beside it if there is one, else the public half computed from it)."""
    text = path.read_text(encoding="utf-8").strip()
    if not text.startswith("-----BEGIN"):
        return fingerprint(text)
    pub = path.with_name(path.name + ".pub")
    if pub.is_file():
        return fingerprint(pub.read_text(encoding="utf-8"))
    key = serialization.load_ssh_private_key(text.encode(), password=None)
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return fingerprint(line.decode())


@dataclass
class KeyUse:
    """How often one plain key was accepted: on which hosts, for which accounts, when."""

    count: int = 0
    hosts: Counter[str] = field(default_factory=Counter)
    users: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    first: str | None = None
    last: str | None = None
    times: list[str] = field(default_factory=list)

    def add(self, login: Login) -> None:
        self.count += 1
        self.hosts[login.host or "-"] += 1
        self.users[login.user] += 1
        self.sources[login.source] += 1
        if login.time:
            self.first = login.time if self.first is None else min(self.first, login.time)
            self.last = login.time if self.last is None else max(self.last, login.time)
            if len(self.times) < KEEP_TIMES:
                self.times.append(f"{login.time} {login.host} {login.user}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "hosts": dict(self.hosts),
            "users": dict(self.users),
            "sources": dict(self.sources),
            "first": self.first,
            "last": self.last,
            "times": self.times,
        }


@dataclass
class SshReport:
    """Break-glass logins (the provisioning key), other plain-key logins, certificate logins
    per key id."""

    break_glass_keys: set[str] = field(default_factory=set)  # fingerprints
    lines: int = 0
    logins: int = 0
    break_glass: dict[str, KeyUse] = field(default_factory=dict)  # fingerprint -> use
    plain: dict[str, KeyUse] = field(default_factory=dict)  # other plain keys
    certificates: Counter[str] = field(default_factory=Counter)  # "user <- key id" -> n

    def feed(self, line: str, host: str = "") -> None:
        self.lines += 1
        login = parse_line(line, host)
        if login is None:
            return
        self.logins += 1
        if login.certificate:
            self.certificates[f"{login.user} <- {login.key_id}"] += 1
            return
        into = self.break_glass if login.fingerprint in self.break_glass_keys else self.plain
        use = into.get(login.fingerprint)
        if use is None:
            use = into[login.fingerprint] = KeyUse()
        use.add(login)

    def as_dict(self) -> dict[str, Any]:
        return {
            "break_glass_keys": sorted(self.break_glass_keys),
            "lines": self.lines,
            "logins": self.logins,
            "break_glass_logins": {k: v.as_dict() for k, v in self.break_glass.items()},
            "plain_key_logins": {k: v.as_dict() for k, v in self.plain.items()},
            "certificate_logins": dict(self.certificates.most_common(100)),
            "certificate_login_count": sum(self.certificates.values()),
        }


def build(lines: Iterable[str], break_glass_keys: Iterable[str], host: str = "") -> SshReport:
    report = SshReport(set(break_glass_keys))
    for line in lines:
        report.feed(line, host)
    return report
