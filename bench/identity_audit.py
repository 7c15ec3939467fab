"""`govcloud audit report` over a large audit log: 100,000 lines in at most 5 s (issue 6).

The log is generated in OpenBao's file-device format (a request and a response entry per
request, HMAC'd strings, about the size of real entries): logins and failed logins, MFA,
secrets read per department, certificates signed, policy and grant changes, denied requests.
The report must count them exactly, and stream: peak Python memory stays far below the file's
size. The baseline, in the same run, is the bare loop (read every line, ``json.loads`` each),
so the ratio shows what the report costs against parsing every line. Times are the best of
three wall-clock runs; the CPU seconds of one run are reported too (the lab shares 2 cores).

Run: ``python -m bench.identity_audit [--lines N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.common import Result, best_of
from security.audit.officer import report_file

BOUND_S = 5.0
DEPTS = ["gat", "rst", "scjgj", "wjw", "mzt", "dsjj"]
HMAC = "hmac-sha256:" + "ab" * 32


def _entry(kind: str, at: str, path: str, op: str, who: str, **extra: object) -> str:
    auth = {
        "client_token": HMAC,
        "accessor": HMAC,
        "display_name": who,
        "policies": ["default", "dept-gat-developers"],
        "token_policies": ["default"],
        "entity_id": "41e21e2d-8419-23d5-b035-a3a39862d55a",
        "token_type": "service",
        "token_ttl": 3600,
    }
    request = {
        "id": "6744b214-5f80-2aea-f422-82eb2f1273e6",
        "operation": op,
        "mount_point": path.split("/", 1)[0] + "/",
        "mount_type": "kv",
        "namespace": {"id": "root"},
        "path": path,
        "remote_address": "10.255.0.254",
        "remote_port": 37482,
    }
    body: dict[str, object] = {"time": at, "type": kind, "auth": auth, "request": request}
    error = extra.pop("error", None)
    body.update(extra)
    if kind == "response":  # OpenBao's key order: ..., response, error
        data = {"error": HMAC} if error else {"x": HMAC}
        body.setdefault("response", {"mount_point": request["mount_point"], "data": data})
        if error:
            body["error"] = error
    return json.dumps(body, separators=(",", ":"))


def generate(path: Path, lines: int, seed: int = 6) -> dict[str, int]:
    """Write ``lines`` audit lines; return what a correct report must count."""
    rng = random.Random(seed)
    expect = {"logins": 0, "failed": 0, "reads": 0, "signs": 0, "policy": 0, "denied": 0}
    with path.open("w") as fh:
        for i in range(lines // 2):
            at = f"2026-11-23T{8 + i * 9 // (lines // 2):02d}:{i % 60:02d}:{i % 59:02d}.000000Z"
            r = rng.random()
            dept = DEPTS[i % len(DEPTS)]
            who = f"userpass-{dept}-developer"
            extra: dict[str, object] = {}
            if r < 0.05:
                path_, op = f"auth/userpass/login/{dept}-developer", "update"
                if rng.random() < 0.2:
                    extra["error"] = "invalid username or password"
                    expect["failed"] += 1
                else:
                    extra["response"] = {"auth": {"client_token": HMAC, "display_name": who}}
                    expect["logins"] += 1
            elif r < 0.08:
                path_, op = "ssh-client-signer/sign/system", "update"
                expect["signs"] += 1
            elif r < 0.09:
                path_, op = "sys/policies/acl/dept-gat-viewers", "update"
                expect["policy"] += 1
            elif r < 0.11:
                path_, op = f"kv-{DEPTS[(i + 1) % len(DEPTS)]}/data/app", "read"
                extra["error"] = "1 error occurred:\n\t* permission denied\n\n"
                expect["denied"] += 1
            else:
                path_, op = f"kv-{dept}/data/app/db", "read"
                expect["reads"] += 1
            fh.write(_entry("request", at, path_, op, who) + "\n")
            fh.write(_entry("response", at, path_, op, who, **extra) + "\n")
    return expect


def _bare(path: Path) -> int:
    n = 0
    with path.open() as fh:
        for line in fh:
            json.loads(line)
            n += 1
    return n


def run(lines: int = 100_000) -> Result:
    with tempfile.TemporaryDirectory(prefix="govcloud-audit-") as tmp:
        log = Path(tmp) / "audit.log"
        expect = generate(log, lines)
        size_mib = log.stat().st_size / 2**20
        cpu = time.process_time()
        report = report_file(log, None)
        cpu = time.process_time() - cpu
        seconds = best_of(lambda: report_file(log, None))  # wall, least disturbed of 3
        bare = best_of(lambda: _bare(log))
        tracemalloc.start()
        report_file(log, "2026-11-23T12:00:00")
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    d = report.as_dict()
    counted = {
        "logins": sum(d["logins"].values()),
        "failed": sum(d["failed_logins"].values()),
        "reads": sum(sum(c.values()) for c in d["secrets_read"].values()),
        "signs": sum(d["certificates_signed"].values()),
        "policy": len(d["policy_changes"]) if expect["policy"] <= report.keep else report.keep,
        "denied": sum(d["denied"].values()),
    }
    if expect["policy"] > report.keep:
        expect = {**expect, "policy": report.keep}
    return Result(
        "identity_audit",
        figures={
            "lines": d["lines"],
            "file_mib": round(size_mib, 1),
            "report_s": round(seconds, 2),
            "report_cpu_s": round(cpu, 2),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "lines_per_s": round(d["lines"] / seconds),
            "bare_json_loop_s": round(bare, 2),
            "ratio_vs_bare": round(seconds / bare, 2) if bare else 0.0,
            "peak_python_mib": round(peak / 2**20, 2),
        },
        checks={
            f"{lines} lines in <= {BOUND_S:.0f} s": seconds <= BOUND_S and d["lines"] == lines,
            "every event counted exactly": counted == expect,
            "streams (peak memory < 5 % of the file)": peak / 2**20 < 0.05 * size_mib,
        },
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.identity_audit")
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args(argv)
    result = run(args.lines)
    print(json.dumps({"name": result.name, **result.figures, "checks": result.checks}))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
