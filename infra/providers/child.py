"""Provider work in a Python process of its own.

A dynamic provider serves Pulumi over gRPC from threads; ansible-runner forks to start
ansible-playbook, and a fork of a process with gRPC threads running is not safe (the child can
die before the play starts). So providers that run Ansible call ``in_child``: a fresh
interpreter runs ``module:function(payload)`` and prints its JSON result.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from typing import Any

from govcloud.errors import GovcloudError, OperationError


def in_child(target: str, payload: dict[str, Any]) -> Any:
    """``target`` is ``module:function``; the function takes the payload and returns JSON-able
    data. Its failure is raised here as an OperationError with the child's own message."""
    proc = subprocess.run(
        [sys.executable, "-m", "infra.providers.child", target],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise OperationError("\n".join(lines[-8:]) or f"{target} exited {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    module, _, function = sys.argv[1].partition(":")
    payload = json.loads(sys.stdin.read())
    try:
        result = getattr(importlib.import_module(module), function)(payload)
    except GovcloudError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
