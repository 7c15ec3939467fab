"""Who did what, from OpenBao's audit log, one line at a time (the log is never loaded whole).

An OpenBao file audit device writes one JSON object per line: a ``request`` entry and a
``response`` entry for every request. The report reads the ``response`` entries (they carry
the outcome): logins and failed logins, MFA, policy changes, grant changes (groups, entities,
users, SSH roles, MFA), certificates signed (SSH) and issued (TLS, from the PKI), secrets read
per department, and requests denied.
Strings OpenBao HMACs (tokens, secret values) stay HMACs; ``audit verify`` checks a clear value
against them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from govcloud.errors import InputError

_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
GRANT_PREFIXES = (
    "identity/group/",
    "identity/entity",
    "identity/mfa/",
    "auth/userpass/users/",
    "ssh-client-signer/roles/",
    "ssh-host-signer/roles/",
)
POLICY_PREFIXES = ("sys/policies/acl/", "sys/policy/")
CHANGE_OPS = ("create", "update", "delete")


def parse_since(value: str | None, now: dt.datetime | None = None) -> str | None:
    """``30m`` / ``2h`` / ``7d`` / an ISO time -> an ISO-8601 UTC string (sortable as text)."""
    if not value:
        return None
    now = now or dt.datetime.now(dt.UTC)
    m = _SINCE.match(value.strip())
    if m:
        at = now - dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    else:
        try:
            at = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError(
                f"--since {value!r}: give a duration (30m, 2h, 7d) or an ISO time"
            ) from exc
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Report:
    since: str | None = None
    lines: int = 0
    entries: int = 0
    malformed: int = 0
    first: str | None = None
    last: str | None = None
    logins: Counter[str] = field(default_factory=Counter)
    failed_logins: Counter[str] = field(default_factory=Counter)
    mfa_failures: Counter[str] = field(default_factory=Counter)
    mfa_challenges: Counter[str] = field(default_factory=Counter)
    policy_changes: list[dict[str, str]] = field(default_factory=list)
    grant_changes: list[dict[str, str]] = field(default_factory=list)
    certificates: Counter[str] = field(default_factory=Counter)  # "who -> role"
    secrets_read: dict[str, Counter[str]] = field(default_factory=dict)  # dept -> who -> n
    denied: Counter[str] = field(default_factory=Counter)  # "who path"
    keep: int = 200  # change records kept (counts stay exact)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "lines": self.lines,
            "entries": self.entries,
            "malformed": self.malformed,
            "first": self.first,
            "last": self.last,
            "logins": dict(self.logins),
            "failed_logins": dict(self.failed_logins),
            "mfa_challenges": dict(self.mfa_challenges),
            "mfa_failures": dict(self.mfa_failures),
            "policy_changes": self.policy_changes,
            "grant_changes": self.grant_changes,
            "certificates_signed": dict(self.certificates),
            "secrets_read": {d: dict(c) for d, c in sorted(self.secrets_read.items())},
            "denied": dict(self.denied.most_common(50)),
        }


def _who(entry: dict[str, Any]) -> str:
    auth = entry.get("auth") or {}
    return str(auth.get("display_name") or auth.get("entity_id") or "-")


def _record(report: Report, target: list[dict[str, str]], entry: dict[str, Any], path: str) -> None:
    if len(target) < report.keep:
        req = entry.get("request") or {}
        target.append(
            {
                "time": str(entry.get("time", "")),
                "who": _who(entry),
                "operation": str(req.get("operation", "")),
                "path": path,
                "error": str(entry.get("error", "")),
            }
        )


_DECODE = json.JSONDecoder().raw_decode
_AUTH_KEY = '"auth":'
_REQUEST_KEY = ',"request":'
_ERROR_KEY = ',"error":'
_NEEDS_RESPONSE = ("auth/", "sys/mfa/")


def _fast(line: str) -> dict[str, Any] | None:
    """The fields the report needs, without decoding the (large) response object.

    OpenBao writes a response entry's keys in a fixed order (time, type, auth, request,
    response, error), so the auth and request objects are decoded where they stand and the
    error, when there is one, is the last key. Anything unexpected (and the entries whose
    response matters: logins and MFA) falls back to decoding the whole line."""
    try:
        at = line.index(_AUTH_KEY)
        auth, end = _DECODE(line, at + len(_AUTH_KEY))
        if not line.startswith(_REQUEST_KEY, end):
            return None
        request, end = _DECODE(line, end + len(_REQUEST_KEY))
    except ValueError:
        return None
    if not isinstance(auth, dict) or not isinstance(request, dict):
        return None
    if str(request.get("path", "")).startswith(_NEEDS_RESPONSE):
        return None
    entry: dict[str, Any] = {
        "time": line[9 : line.index('"', 9)] if line.startswith('{"time":"') else "",
        "auth": auth,
        "request": request,
    }
    tail = line.rstrip()
    err = tail.rfind(_ERROR_KEY)
    if err > end and tail.endswith('"}'):
        try:
            value, stop = _DECODE(tail, err + len(_ERROR_KEY))
        except ValueError:
            return None
        if stop != len(tail) - 1:
            return None  # not the last key: decode the whole line
        entry["error"] = value
    return entry


def feed(report: Report, line: str) -> None:
    """Account one audit line."""
    report.lines += 1
    if '"type":"response"' not in line:  # request entries: the response says how it ended
        return
    if report.since is not None:
        at = line.find('"time":"')
        if at >= 0 and line[at + 8 : at + 27] < report.since:
            return
    entry = _fast(line)
    if entry is None:
        try:
            entry = json.loads(line)
        except ValueError:
            report.malformed += 1
            return
    report.entries += 1
    when = str(entry.get("time", ""))
    if report.first is None or when < report.first:
        report.first = when
    if report.last is None or when > report.last:
        report.last = when
    req = entry.get("request") or {}
    path = str(req.get("path", ""))
    op = str(req.get("operation", ""))
    error = str(entry.get("error") or "")
    if path.startswith("auth/") and "/login/" in path:
        user = path.rsplit("/", 1)[-1]
        resp_auth = (entry.get("response") or {}).get("auth") or {}
        if error:
            report.failed_logins[user] += 1
        elif not resp_auth.get("client_token"):
            report.mfa_challenges[user] += 1  # first step: the token comes from sys/mfa/validate
        else:
            report.logins[user] += 1
        return
    if path == "sys/mfa/validate":
        if error:  # the request carries only the MFA request id, not the person
            report.mfa_failures["(login awaiting MFA)"] += 1
        else:
            display = ((entry.get("response") or {}).get("auth") or {}).get("display_name", "")
            report.logins[str(display).split("-", 1)[-1] or "-"] += 1
        return
    if error and "permission denied" in error:
        report.denied[f"{_who(entry)} {op} {path}"] += 1
        return
    if op in CHANGE_OPS and path.startswith(POLICY_PREFIXES):
        _record(report, report.policy_changes, entry, path)
    elif op in CHANGE_OPS and path.startswith(GRANT_PREFIXES):
        _record(report, report.grant_changes, entry, path)
    elif not error and (
        ("/sign/" in path and path.startswith("ssh-"))
        or ("/issue/" in path and path.startswith("pki"))  # TLS certificates of the PKI
    ):
        role = path.rsplit("/", 1)[-1]
        report.certificates[f"{_who(entry)} -> {path.split('/', 1)[0]}/{role}"] += 1
    elif path.startswith("kv-") and "/data/" in path and op == "read" and not error:
        dept = path.split("/", 1)[0].removeprefix("kv-")
        readers = report.secrets_read.get(dept)
        if readers is None:
            readers = report.secrets_read[dept] = Counter()
        readers[_who(entry)] += 1


def build(lines: Iterable[str], since: str | None = None) -> Report:
    report = Report(since=since)
    for line in lines:
        feed(report, line)
    return report
