"""Per-level time series for the report: requests, failures and a latency histogram per level
and time bucket. Workers ship what they gathered with each report to the master, which merges.
"""

from __future__ import annotations

import time
from typing import Any


def round_ms(ms: float) -> int:
    """Round a response time as locust does (exact below 100 ms, then 2 significant digits)."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


class Timeline:
    def __init__(self, bucket_s: int = 5) -> None:
        self.bucket_s = bucket_s
        # (level, bucket start) -> [requests, failures, {rounded ms: count}]
        self.data: dict[tuple[str, int], list[Any]] = {}
        self.served: dict[str, int] = {}  # the hall replica's X-Served-By -> requests it served

    def on_request(
        self,
        name: str,
        response_time: float,
        exception: Any,
        now: float | None = None,
        served_by: str | None = None,
    ) -> None:
        if served_by:
            self.served[served_by] = self.served.get(served_by, 0) + 1
        end = name.find("]")
        level = name[1:end] if name.startswith("[") and end > 0 else "other"
        at = int((time.time() if now is None else now) // self.bucket_s * self.bucket_s)
        rec = self.data.get((level, at))
        if rec is None:
            rec = self.data[(level, at)] = [0, 0, {}]
        rec[0] += 1
        if exception is not None:
            rec[1] += 1
        hist = rec[2]
        key = round_ms(response_time or 0)
        hist[key] = hist.get(key, 0) + 1

    def drain(self) -> list[list[Any]]:
        """Everything gathered since the last drain, as JSON-friendly rows (then forgotten)."""
        rows = [
            [lv, at, r[0], r[1], [[k, n] for k, n in r[2].items()]]
            for (lv, at), r in self.data.items()
        ]
        self.data = {}
        return rows

    def drain_served(self) -> dict[str, int]:
        served, self.served = self.served, {}
        return served

    def merge_served(self, served: dict[str, int]) -> None:
        for who, n in served.items():
            self.served[who] = self.served.get(who, 0) + int(n)

    def merge(self, rows: list[list[Any]]) -> None:
        for lv, at, n, fails, hist in rows:
            rec = self.data.get((lv, at))
            if rec is None:
                rec = self.data[(lv, at)] = [0, 0, {}]
            rec[0] += n
            rec[1] += fails
            for k, c in hist:
                rec[2][int(k)] = rec[2].get(int(k), 0) + c

    def rows(self) -> list[list[Any]]:
        return sorted(
            ([lv, at, r[0], r[1], sorted(r[2].items())] for (lv, at), r in self.data.items()),
            key=lambda x: (x[1], x[0]),
        )


def percentile(hist: list[tuple[int, int]] | dict[int, int], q: float) -> int:
    items = sorted(hist.items() if isinstance(hist, dict) else hist)
    total = sum(n for _, n in items)
    if total == 0:
        return 0
    rank = q * total
    seen = 0
    for ms, n in items:
        seen += n
        if seen >= rank:
            return int(ms)
    return int(items[-1][0])
