"""The Pulumi program for the Guizhou-scale spec against the lab spec, engine mocked: how long
building the resource graph takes and how many resources each stack has.

Bound (issue: the Pulumi program): the province stays within a few thousand resources.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import Result
from govcloud.paths import PROJECT_ROOT
from govcloud.spec.generate import dump, generate
from infra.mocks import run_program
from infra.settings import Settings


def run() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp, "guizhou.yaml")
        spec.write_text(dump(generate("guizhou")), encoding="utf-8")
        start = time.perf_counter()
        lab = run_program(Settings(PROJECT_ROOT / "examples" / "lab.yaml", "lab"))
        t_lab = time.perf_counter() - start
        start = time.perf_counter()
        province = run_program(Settings(spec, "hosts"))
        t_gz = time.perf_counter() - start
    return Result(
        "pulumi program under mocks (guizhou vs lab)",
        {
            "lab_resources": len(lab),
            "lab_seconds": round(t_lab, 2),
            "guizhou_resources": len(province),
            "guizhou_seconds": round(t_gz, 2),
            "ratio": round(t_gz / t_lab, 2),
        },
        {"province within a few thousand resources": len(province) < 3000},
    )
