"""Where govcloud keeps things: one cache for what is expensive to build, one state directory
for what a deployment produced (the Pulumi backend, the ssh_config, secrets files, reports)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """``$GOVCLOUD_CACHE``, default ``~/.cache/govcloud``: built tools, the lab image, keys."""
    return Path(os.environ.get("GOVCLOUD_CACHE") or Path.home() / ".cache" / "govcloud")


def state_dir() -> Path:
    """``$GOVCLOUD_STATE``, default ``state/`` in the project (kept out of git)."""
    env = os.environ.get("GOVCLOUD_STATE")
    return Path(env) if env else PROJECT_ROOT / "state"
