"""What an operator sees of the hall: Prometheus-style metrics and JSON access-log lines.

Standard library only (the hall runs on Debian bookworm's packages): the metrics are rendered in
the Prometheus text exposition format by hand.
"""

from __future__ import annotations

import bisect
import json
import os
import sys
import time
from typing import IO, Any

#: latency histogram buckets, seconds
BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    """Request counts by route, method and status; a latency histogram by route and method."""

    def __init__(self) -> None:
        self.started = time.time()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.hist: dict[tuple[str, str], list[float]] = {}  # bucket counts..., sum, count
        self.in_flight = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        h = self.hist.get((route, method))
        if h is None:
            h = self.hist[(route, method)] = [0.0] * (len(BUCKETS) + 2)
        i = bisect.bisect_left(BUCKETS, seconds)  # the first bucket with seconds <= bound
        if i < len(BUCKETS):
            h[i] += 1
        h[-2] += seconds
        h[-1] += 1

    def render(self, extra: dict[str, float] | None = None) -> str:
        out = [
            "# HELP hall_http_requests_total HTTP requests served, by route, method and status.",
            "# TYPE hall_http_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(
                f'hall_http_requests_total{{route="{route}",method="{method}",'
                f'status="{status}"}} {n}'
            )
        out += [
            "# HELP hall_http_request_duration_seconds Time to serve a request.",
            "# TYPE hall_http_request_duration_seconds histogram",
        ]
        for (route, method), h in sorted(self.hist.items()):
            labels = f'route="{route}",method="{method}"'
            cumulative = 0
            for bound, count in zip(BUCKETS, h, strict=False):
                cumulative += int(count)
                out.append(
                    f'hall_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} '
                    f"{int(cumulative)}"
                )
            out.append(
                f'hall_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {int(h[-1])}'
            )
            out.append(f"hall_http_request_duration_seconds_sum{{{labels}}} {h[-2]:.6f}")
            out.append(f"hall_http_request_duration_seconds_count{{{labels}}} {int(h[-1])}")
        out += [
            "# HELP hall_http_requests_in_flight Requests being served now.",
            "# TYPE hall_http_requests_in_flight gauge",
            f"hall_http_requests_in_flight {self.in_flight}",
            "# HELP hall_process_start_time_seconds Start time of the process (Unix time).",
            "# TYPE hall_process_start_time_seconds gauge",
            f"hall_process_start_time_seconds {self.started:.3f}",
        ]
        for name, value in (extra or {}).items():
            out += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(out) + "\n"


_quote = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept as is


STDOUT_FD = 1


class AccessLog:
    """One JSON object per request, one per line; buffered, flushed about once a second.

    ``request`` writes the line with one format (no dict, no encoder pass, no call per field,
    the timestamp's seconds formatted once a second): a few microseconds per request.
    """

    def __init__(self, target: str) -> None:
        self.stream: IO[str] | None
        if target in ("off", "none", ""):
            self.stream = None
        elif target == "-":
            # standard output (a pod's log) through a buffer of its own, whatever
            # PYTHONUNBUFFERED says: one write a second, not one per request
            self.stream = open(  # noqa: SIM115
                STDOUT_FD, "w", encoding="utf-8", buffering=1 << 16, closefd=False
            )
        else:
            self.stream = open(target, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115

    _second = -1
    _stamp = ""

    def request(
        self,
        remote: str | None,
        method: str,
        path: str,
        route: str,
        status: int,
        seconds: float,
        caller: str | None,
        request_id: str | None,
    ) -> None:
        """One request's line: ts, remote, method, path, route, status, ms, caller, request_id."""
        stream = self.stream
        if stream is None:
            return
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        millis = min(999, int((now - second) * 1000))
        stream.write(
            f'{{"ts":"{self._stamp}.{millis:03d}+00:00",'
            f'"remote":{"null" if remote is None else _quote(remote)},'
            f'"method":{_quote(method)},"path":{_quote(path)},"route":{_quote(route)},'
            f'"status":{status},"ms":{seconds * 1000:.2f},'
            f'"caller":{"null" if caller is None else _quote(caller)},'
            f'"request_id":{_quote(request_id or os.urandom(8).hex())}}}\n'
        )

    def write(self, record: dict[str, Any]) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        if self.stream is not None:
            self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()
