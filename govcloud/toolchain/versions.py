"""The versions file (``toolchain/versions.env``): plain ``KEY=VALUE`` lines shared with bash."""

from __future__ import annotations

import re
from pathlib import Path

from govcloud.errors import InputError, Problem

_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=([0-9A-Za-z.+\-]+)$")
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")

REQUIRED_KEYS = (
    "GO_MIN",
    "PULUMI_VERSION",
    "PULUMI_LANGUAGE_PYTHON_VERSION",
    "KUBERNETES_VERSION",
    "ETCD_VERSION",
    "PULUMI_MIN",
    "KUBE_APISERVER_MIN",
    "KUBECTL_MIN",
    "ETCD_MIN",
)


def versions_file() -> Path:
    """``toolchain/versions.env`` of the source tree this package belongs to."""
    return Path(__file__).resolve().parents[2] / "toolchain" / "versions.env"


def parse_versions(text: str, source: str = "versions.env") -> dict[str, str]:
    """Parse the file; every problem is reported at once, with its line number."""
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            problems.append(Problem(f"line {n}", f"expected KEY=VERSION, got {line!r}", source))
            continue
        key, value = m.groups()
        if key in values:
            problems.append(Problem(f"line {n}", f"{key} is set twice", source))
        if parse_version(value) is None:
            problems.append(Problem(f"line {n}", f"{key}: {value!r} is not N.N.N", source))
        values[key] = value
    problems += [
        Problem(key, "missing", source) for key in REQUIRED_KEYS if key not in values and text
    ]
    if not text.strip():
        problems.append(Problem("", "the file is empty", source))
    if problems:
        raise InputError(problems, title="invalid tool versions file")
    return values


def load_versions(path: Path | None = None) -> dict[str, str]:
    path = path or versions_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the tool versions file {path}: {exc.strerror}") from exc
    return parse_versions(text, source=str(path))


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first ``N.N.N`` in a tool's output (``Kubernetes v1.36.3`` -> ``(1, 36, 3)``)."""
    m = _VERSION.search(text)
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)))


def at_least(version: tuple[int, int, int] | None, minimum: str) -> bool:
    want = parse_version(minimum)
    if want is None:
        raise ValueError(f"not a version: {minimum!r}")
    return version is not None and version >= want
