"""Who read whose data through the exchange, from its JSON-lines log (streamed, never loaded
whole): what a security officer's ``govcloud audit`` shows beside OpenBao's own log.

Each line is one decision of the exchange (``kind: exchange-read``): the calling department and
identity, the department whose data was asked for, the licence type, the holder (masked, and a
SHA-256 digest an officer can recompute from a number they hold), the case code (一件一码), the
decision (served or refused), the reason and the licences served.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


def holder_digest(holder: str) -> str:
    """The digest the exchange records for a holder identifier."""
    return hashlib.sha256(holder.strip().upper().encode()).hexdigest()


@dataclass
class ExchangeReport:
    since: str | None = None
    case: str | None = None  # only this case code
    holder: str | None = None  # only this holder's digest
    lines: int = 0
    entries: int = 0
    malformed: int = 0
    served: Counter[str] = field(default_factory=Counter)  # "caller -> owner/type"
    refused: Counter[str] = field(default_factory=Counter)  # "caller -> owner/type: reason"
    records: list[dict[str, Any]] = field(default_factory=list)
    keep: int = 200

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "case": self.case,
            "lines": self.lines,
            "entries": self.entries,
            "malformed": self.malformed,
            "served": dict(self.served),
            "refused": dict(self.refused.most_common(50)),
            "records": self.records,
        }


def feed(report: ExchangeReport, line: str) -> None:
    report.lines += 1
    if not line.strip():
        return
    try:
        entry = json.loads(line)
    except ValueError:
        report.malformed += 1
        return
    if not isinstance(entry, dict) or entry.get("kind") != "exchange-read":
        report.malformed += 1
        return
    at = str(entry.get("at", ""))
    if report.since is not None and at[:19] < report.since:
        return
    if report.case is not None and entry.get("case_code") != report.case:
        return
    if report.holder is not None and entry.get("holder_digest") != report.holder:
        return
    report.entries += 1
    what = f"{entry.get('caller')} -> {entry.get('owner')}/{entry.get('type_code')}"
    if entry.get("decision") == "served":
        report.served[what] += 1
    else:
        report.refused[f"{what}: {entry.get('reason')}"] += 1
    if len(report.records) < report.keep:
        report.records.append(
            {
                k: entry.get(k)
                for k in (
                    "at",
                    "caller",
                    "caller_entity",
                    "owner",
                    "type_code",
                    "holder_masked",
                    "case_code",
                    "decision",
                    "status",
                    "reason",
                    "licences",
                )
            }
        )


def build(
    lines: Iterable[str],
    since: str | None = None,
    case: str | None = None,
    holder: str | None = None,
) -> ExchangeReport:
    """``holder`` is a clear identifier: it is digested here, as the exchange does."""
    report = ExchangeReport(
        since=since, case=case, holder=holder_digest(holder) if holder else None
    )
    for line in lines:
        feed(report, line)
    return report
