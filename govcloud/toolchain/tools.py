"""Finding the external tools: ``$GOVCLOUD_CACHE/bin`` (what ``make tools`` built or linked)
first, then PATH when the tool there is recent enough (``toolchain/versions.env``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from govcloud.errors import OperationError
from govcloud.paths import cache_dir
from govcloud.toolchain.versions import at_least, load_versions, parse_version


def bin_dir() -> Path:
    return cache_dir() / "bin"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    version_args: tuple[str, ...]
    min_key: str  # the versions.env key of the oldest version accepted from PATH
    origin: str  # what builds it, for the "missing" message


TOOLS: dict[str, ToolSpec] = {
    t.name: t
    for t in (
        ToolSpec("pulumi", ("version",), "PULUMI_MIN", "github.com/pulumi/pulumi/pkg/v3"),
        ToolSpec("pulumi-language-python", (), "", "github.com/pulumi/pulumi/sdk/v3"),
        ToolSpec("kube-apiserver", ("--version",), "KUBE_APISERVER_MIN", "k8s.io/kubernetes"),
        ToolSpec(
            "kube-controller-manager", ("--version",), "KUBE_APISERVER_MIN", "k8s.io/kubernetes"
        ),
        ToolSpec("kubectl", ("version", "--client"), "KUBECTL_MIN", "k8s.io/kubernetes"),
        ToolSpec("etcd", ("--version",), "ETCD_MIN", "go.etcd.io/etcd/server/v3"),
    )
}


def missing_message(name: str, detail: str = "") -> str:
    spec = TOOLS.get(name)
    origin = f"the Go module {spec.origin}" if spec else "Go modules"
    why = f": {detail}" if detail else ""
    return (
        f"{name} not found in {bin_dir()} nor on PATH{why}. Run `make tools` "
        f"(toolchain/build builds it from {origin} into $GOVCLOUD_CACHE/bin), "
        "or put a recent enough one on PATH (versions: toolchain/versions.env)."
    )


def tool_version(path: Path, spec: ToolSpec) -> tuple[int, int, int] | None:
    if not spec.version_args:
        return None
    try:
        out = subprocess.run(
            [str(path), *spec.version_args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_version(out.stdout + out.stderr)


def locate(name: str) -> Path:
    """The path of tool ``name``; :class:`OperationError` saying how to get it if there is none."""
    if name not in TOOLS:
        raise OperationError(f"unknown tool {name!r} (known: {', '.join(TOOLS)})")
    cached = bin_dir() / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    spec = TOOLS[name]
    found = shutil.which(name)
    if found is None:
        raise OperationError(missing_message(name))
    path = Path(found)
    if spec.min_key:
        minimum = load_versions()[spec.min_key]
        version = tool_version(path, spec)
        if not at_least(version, minimum):
            have = ".".join(map(str, version)) if version else "no version"
            raise OperationError(
                missing_message(name, f"{path} reports {have}, older than {minimum}")
            )
    return path


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose PATH starts with ``$GOVCLOUD_CACHE/bin``."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(bin_dir()), env.get("PATH", "")])
    return env
