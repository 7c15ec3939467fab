"""`pulumi up` of the lab stack with the real engine from the toolchain, on its own backend:
the whole program converges and a second run has nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def govcloud_pulumi(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOVCLOUD_STATE": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "govcloud", "pulumi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.mark.timeout(2400)
def test_up_converges_and_the_second_run_changes_nothing(
    configured_lab: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state = tmp_path_factory.mktemp("stack-state")
    up = govcloud_pulumi(state, "up", "--stack", "lab", "--yes", "--skip-preview")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
    assert "bastion" in up.stdout and "10.255.0.10" in up.stdout  # the exported endpoints
    again = govcloud_pulumi(state, "preview", "--stack", "lab", "--expect-no-changes")
    assert again.returncode == 0, again.stdout[-3000:]
    outputs = govcloud_pulumi(state, "stack", "output", "--stack", "lab", "--json")
    assert '"openbao"' in outputs.stdout and '"hall_urls"' in outputs.stdout
