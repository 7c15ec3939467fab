"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import csv
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def best_of(fn: Callable[[], object], runs: int = 3) -> float:
    """The fastest of ``runs`` wall-clock timings, in seconds (least disturbed by the machine)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class Result:
    name: str
    figures: dict[str, float | int | str] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used; 0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def locust_p95(report: Path) -> float | None:
    """The p95 of every request of a load run, from locust's stats CSV in its report directory."""
    with open(report / "stats_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                return float(row["95%"]) if row["95%"] not in ("", "N/A") else None
    return None


def free_ports(n: int) -> list[int]:
    """``n`` consecutive free loopback ports (a cluster's etcd peer port is its client's + 1)."""
    for start in range(27000, 60000, 11):
        ok = True
        for p in range(start, start + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return list(range(start, start + n))
    raise RuntimeError("no free loopback ports")
