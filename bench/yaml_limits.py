"""Reading YAML within limits (govcloud/yamlsafe.py) against libyaml's plain loader.

Bounds (issue: hostile input): at 10× Guizhou scale (6.3 MB, about 191,000 nodes) the limits
cost one pass of libyaml's parser in C, which counts the file's nodes before any is built
(about 0.06 s of CPU), and one walk of the composed node graph (about 0.015 s): the YAML alone
at most 12 % slower than the plain loader (``yaml.load`` with ``CSafeLoader``, what govcloud
used before), loading the spec (YAML, validation, cross-checks) at most 8 % slower. CPU time,
best of several runs each, interleaved, with the cyclic collector paused as ``load_spec`` does.
The lab spec (anchors and aliases) and the Guizhou spec load to the same data as with the plain
loader, and a nine-level alias bomb is refused in under a second.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.common import Result
from govcloud.errors import InputError
from govcloud.spec.generate import dump, generate
from govcloud.spec.load import _gc_paused, load_spec, parse
from govcloud.yamlsafe import load_yaml


def _plain(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def _plain_spec(path: Path) -> Any:
    """``load_spec`` as it was: the plain loader, then validation and cross-checks."""
    with _gc_paused():
        data = _plain(path)
        return parse(data, {str(k): str(path) for k in data})


def _limited_yaml(path: Path) -> Any:
    with _gc_paused():
        return load_yaml(path)


def _plain_yaml(path: Path) -> Any:
    with _gc_paused():
        return _plain(path)


def alias_bomb(levels: int) -> str:
    """Each level a list of nine aliases of the one before: 9**levels strings in about 1 KB."""
    lines = ["l1: &l1 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(2, levels + 1)]
    return "\n".join(lines) + "\n"


def _interleaved(
    a: Callable[[], object], b: Callable[[], object], runs: int
) -> tuple[float, float]:
    """The fastest of ``runs`` timings of each, alternating, so both meet the same machine.
    CPU time of this process, after a full collection: what other processes on a shared
    machine do, and the garbage the previous run left, are not the loader's cost."""
    best = [float("inf"), float("inf")]
    for _ in range(runs):
        for i, fn in enumerate((a, b)):
            gc.collect()
            start = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - start)
    return best[0], best[1]


def run() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        lab, g1, g10 = Path(tmp, "lab.yaml"), Path(tmp, "g1.yaml"), Path(tmp, "g10.yaml")
        bomb = Path(tmp, "bomb.yaml")
        lab.write_text(dump(generate("lab")), encoding="utf-8")
        g1.write_text(dump(generate("guizhou")), encoding="utf-8")
        g10.write_text(dump(generate("guizhou", scale=10)), encoding="utf-8")
        bomb.write_text(alias_bomb(9), encoding="utf-8")
        size = g10.stat().st_size
        same = all(load_yaml(p) == _plain(p) for p in (lab, g1))
        plain, limited = _interleaved(lambda: _plain_yaml(g10), lambda: _limited_yaml(g10), 7)
        plain_spec, limited_spec = _interleaved(lambda: _plain_spec(g10), lambda: load_spec(g10), 5)
        start = time.perf_counter()
        try:
            load_yaml(bomb)
            refused = False
        except InputError:
            refused = True
        bomb_seconds = time.perf_counter() - start
    ratio, ratio_spec = limited / plain, limited_spec / plain_spec
    return Result(
        "yaml limits (guizhou 10x)",
        {
            "bytes_10x": size,
            "yaml_plain_s": round(plain, 3),
            "yaml_limited_s": round(limited, 3),
            "yaml_ratio": round(ratio, 3),
            "spec_plain_s": round(plain_spec, 3),
            "spec_limited_s": round(limited_spec, 3),
            "spec_ratio": round(ratio_spec, 3),
            "bomb_refused_ms": round(bomb_seconds * 1000, 2),
        },
        {
            "lab and guizhou load as with the plain loader": same,
            "10x guizhou spec loads within 8 % of the plain loader": ratio_spec <= 1.08,
            "10x guizhou YAML within 12 % of the plain loader": ratio <= 1.12,
            "nine-level alias bomb refused in under a second": refused and bomb_seconds < 1.0,
        },
    )
