"""`govcloud compliance check`: run the grade-3 suite on every host and write the evidence.

The suite is pytest + testinfra (``security/compliance/suite``), one case per host and control
item, through the bastion. Its JUnit XML is the raw record; from it come ``results.json``, a
Markdown report an inspector can read (date, spec, hosts, version, every control with its
evidence, the controls a host cannot show and why) and a chart of pass/fail per control family
and per host.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from govcloud.errors import OperationError
from govcloud.paths import PROJECT_ROOT
from govcloud.spec.model import Spec
from infra.inventory import InvHost
from security.compliance.controls import FAMILIES, ITEMS, UNCHECKED

SUITE = Path(__file__).resolve().parent / "suite"


@dataclass(frozen=True)
class Outcome:
    host: str
    item: str
    family: str
    clause: str
    ok: bool
    detail: str  # the evidence, or what is wrong


def targets(
    hosts: list[InvHost], ssh_config: Path, declared: dict[str, set[int]] | None = None
) -> dict[str, Any]:
    """The suite's input. ``declared``: ports a host may listen on beyond its role's, because the
    spec says a department's pods reach them there (``tenant.reaches``: :func:`declared_ports`)."""
    managed = [h for h in hosts if h.zone != "intranet"]
    bastion = next((h.address for h in managed if h.role == "bastion"), "")
    loghost = next((h.address for h in managed if h.role == "log"), "")
    declared = declared or {}
    return {
        "ssh_config": str(ssh_config),
        "bastion": bastion,
        "loghost": loghost,
        "hosts": [
            {
                "name": h.name,
                "address": h.address,
                "role": h.role,
                "ports": sorted(declared.get(h.name, set())),
            }
            for h in managed
        ],
    }


def declared_ports(spec: Spec) -> dict[str, set[int]]:
    """Host name -> the ports departments' tenants declare they reach on it."""
    out: dict[str, set[int]] = {}
    for d in spec.departments:
        for r in d.tenant.reaches:
            out.setdefault(r.host, set()).update(r.ports)
    return out


def run_suite(target: dict[str, Any], out_dir: Path, *, limit: str | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    tfile = out_dir / "targets.json"
    tfile.write_text(json.dumps(target, indent=1))
    junit = out_dir / "junit.xml"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(SUITE),
        "-q",
        "-p",
        "no:cacheprovider",
        "--junitxml",
        str(junit),
        "-o",
        "junit_family=xunit1",
        "--tb=line",
    ]
    if limit:
        argv += ["-k", limit]
    env = dict(os.environ, GOVCLOUD_COMPLIANCE_TARGETS=str(tfile))
    proc = subprocess.run(
        argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    if proc.returncode not in (0, 1) or not junit.is_file():
        raise OperationError(
            "the compliance suite did not run:\n" + (proc.stdout + proc.stderr).strip()[-2000:]
        )
    return junit


def parse_junit(junit: Path) -> list[Outcome]:
    items = {i.id: i for i in ITEMS}
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        if "[" not in name:
            continue
        host, _, item_id = name[name.index("[") + 1 : -1].partition("::")
        props = {p.get("name"): p.get("value", "") for p in case.iter("property")}
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        item = items[item_id]
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip()
            message = message.removeprefix("AssertionError: ").splitlines()[0][:300]
            out.append(Outcome(host, item.id, item.family, item.clause, False, message))
        else:
            out.append(
                Outcome(host, item.id, item.family, item.clause, True, props.get("evidence", ""))
            )
    return out


def _chart(outcomes: list[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "DejaVu Sans"]
    families = [f for f in FAMILIES if any(o.family == f for o in outcomes)]
    hosts = sorted({o.host for o in outcomes})
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, keys, attr, title in (
        (a, families, "family", "per control family"),
        (b, hosts, "host", "per host"),
    ):
        passed = [sum(1 for o in outcomes if getattr(o, attr) == k and o.ok) for k in keys]
        failed = [sum(1 for o in outcomes if getattr(o, attr) == k and not o.ok) for k in keys]
        labels = [str(i + 1) if attr == "family" else k for i, k in enumerate(keys)]
        ax.bar(labels, passed, color="#2e7d32", label="pass")
        ax.bar(labels, failed, bottom=passed, color="#c62828", label="fail")
        ax.set_title(f"grade-3 checks {title}")
        ax.tick_params(axis="x", rotation=60 if attr == "host" else 0)
        ax.legend()
    a.set_xlabel("control family (numbered as in report.md)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(outcomes: list[Outcome], out_dir: Path, *, spec_name: str, spec_path: str) -> Path:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    hosts = sorted({o.host for o in outcomes})
    failed = [o for o in outcomes if not o.ok]
    (out_dir / "results.json").write_text(
        json.dumps([o.__dict__ for o in outcomes], ensure_ascii=False, indent=1)
    )
    _chart(outcomes, out_dir / "summary.png")
    families = [f for f in FAMILIES if any(o.family == f for o in outcomes)]
    lines = [
        "# 等保2.0 第三级 (GB/T 22239-2019 grade 3): host compliance evidence",
        "",
        f"- date: {now}",
        f"- spec: {spec_name} ({spec_path})",
        f"- govcloud version: {version('govcloud')}",
        f"- hosts ({len(hosts)}): {', '.join(hosts)}",
        f"- result: **{'PASS' if not failed else 'FAIL'}** — {len(outcomes) - len(failed)} of "
        f"{len(outcomes)} checks passed",
        "",
        "![pass and fail per control family and per host](summary.png)",
        "",
        "## Control families",
        "",
        "| # | family | checks | passed | failed |",
        "|---|---|---|---|---|",
    ]
    for i, f in enumerate(families):
        mine = [o for o in outcomes if o.family == f]
        lines.append(
            f"| {i + 1} | {f} | {len(mine)} | {sum(o.ok for o in mine)} | "
            f"{sum(not o.ok for o in mine)} |"
        )
    if failed:
        lines += [
            "",
            "## Failures",
            "",
            "| host | control | clause | finding |",
            "|---|---|---|---|",
        ]
        lines += [f"| {o.host} | {o.family} / {o.item} | {o.clause} | {o.detail} |" for o in failed]
    lines += ["", "## Evidence per control", ""]
    for item in ITEMS:
        mine = [o for o in outcomes if o.item == item.id]
        if not mine:
            continue
        lines += [
            f"### {item.family} — {item.title} ({item.clause}, `{item.id}`)",
            "",
            "| host | result | evidence |",
            "|---|---|---|",
        ]
        lines += [f"| {o.host} | {'pass' if o.ok else '**FAIL**'} | {o.detail} |" for o in mine]
        lines.append("")
    lines += [
        "## Controls not checkable on a host",
        "",
        "| family | clause | requirement | where it is covered |",
        "|---|---|---|---|",
    ]
    lines += [f"| {u.family} | {u.clause} | {u.title} | {u.reason} |" for u in UNCHECKED]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report
