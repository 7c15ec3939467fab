"""Validating the Guizhou-scale spec from its YAML file, and with 10× the villages.

Bounds (issue: foundation): at most 2 s at real scale; 10× the villages at most 12× the time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Result, best_of
from govcloud.spec.generate import dump, generate
from govcloud.spec.load import load_spec


def run() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        base, big = Path(tmp, "g1.yaml"), Path(tmp, "g10.yaml")
        base.write_text(dump(generate("guizhou")), encoding="utf-8")
        big.write_text(dump(generate("guizhou", scale=10)), encoding="utf-8")
        t1 = best_of(lambda: load_spec(base))
        t10 = best_of(lambda: load_spec(big))
    ratio = t10 / t1
    return Result(
        "spec validate (guizhou)",
        {
            "villages": 17342,
            "seconds": round(t1, 3),
            "seconds_10x": round(t10, 3),
            "ratio_10x": round(ratio, 2),
        },
        {"at most 2 s": t1 <= 2.0, "10x villages at most 12x time": ratio <= 12.0},
    )
