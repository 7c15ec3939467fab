"""`make bench`: run every benchmark (or those named on the command line) and report."""

from __future__ import annotations

import importlib
import json
import sys

BENCHES = [
    "spec_validate",
    "yaml_limits",
    "plan_guizhou",
    "lab_updown",
    "loadtest_hall",
    "hall_pages",
    "hall_cpu",
    "loadtest_lab",
    "hall_cloud",
    "edge_tls",
    "db_tls",
    "hall_tls",
    "pulumi_preview",
    "hosts_apply",
    "tenants_apply",
    "pod_startup",
    "identity_ssh",
    "identity_audit",
    "elicence",
]


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    failed = False
    report = []
    for name in names:
        result = importlib.import_module(f"bench.{name}").run()
        report.append({"name": result.name, **result.figures, "checks": result.checks})
        status = "ok" if result.ok else "FAILED"
        figures = ", ".join(f"{k}={v}" for k, v in result.figures.items())
        print(f"[{status}] {result.name}: {figures}")
        for check, passed in result.checks.items():
            print(f"    {'pass' if passed else 'FAIL'}: {check}")
        failed |= not result.ok
    print(json.dumps(report, ensure_ascii=False))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
