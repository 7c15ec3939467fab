"""`pulumi up` of the lab stack with the real engine from the toolchain, on its own backend:
an interrupted run converges when run again, a second run has nothing to do, and `pulumi
destroy` removes the lab and leaves nothing behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from govcloud.paths import state_dir
from infra.lab import lxc as lx
from infra.lab.lab import Lab
from infra.lab.state import LabPaths

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAB = "lab"  # the lab spec's name: the stack runs on the session's lab


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "GOVCLOUD_STATE": str(state)}


def govcloud_pulumi(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govcloud", "pulumi", *args],
        env=_env(state),
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.fixture(scope="session")  # the destroy test runs last, apart from the module's others
def stack_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory with a Pulumi backend of its own (a new stack) and everything else the
    session's lab left (OpenBao's shares and TLS, SSH files): the operator's state, so the
    stack adopts an identity system earlier tests may have initialised."""
    state = tmp_path_factory.mktemp("stack-state")
    if state_dir().is_dir():
        shutil.copytree(
            state_dir(),
            state,
            ignore=shutil.ignore_patterns("pulumi", "pulumi-*", "ansible", "cm"),
            dirs_exist_ok=True,
        )
    return state


def _interrupted_up(state: Path, when: re.Pattern[str]) -> tuple[int, str]:
    """`govcloud pulumi up` in a process group of its own, Ctrl-C'd (SIGINT to the whole
    group, as a terminal does) at the first output line matching ``when``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "govcloud", "pulumi", "up", "--stack", "lab", "--yes",
         "--skip-preview"],
        env=_env(state), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 900
    for line in proc.stdout:
        seen.append(line)
        if when.search(line):
            os.killpg(proc.pid, signal.SIGINT)
            break
        assert time.monotonic() < deadline, "the interrupt point never came:\n" + "".join(seen)
    seen += proc.stdout.readlines()
    return proc.wait(timeout=900), "".join(seen)


@pytest.mark.timeout(3600)
def test_an_interrupted_up_converges_and_the_next_run_changes_nothing(
    configured_lab: Any, stack_state: Path
) -> None:
    code, out = _interrupted_up(stack_state, re.compile(r"\bsite\b.*creating"))
    assert code != 0, out[-3000:]  # cancelled, not finished
    up = govcloud_pulumi(stack_state, "up", "--stack", "lab", "--yes", "--skip-preview")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
    assert "bastion" in up.stdout and "10.255.0.10" in up.stdout  # the exported endpoints
    again = govcloud_pulumi(stack_state, "preview", "--stack", "lab", "--expect-no-changes")
    assert again.returncode == 0, again.stdout[-3000:]
    outputs = govcloud_pulumi(stack_state, "stack", "output", "--stack", "lab", "--json")
    assert '"openbao"' in outputs.stdout and '"hall_urls"' in outputs.stdout


@pytest.mark.last  # it removes the session's lab: every other lab test has run by then
@pytest.mark.timeout(1800)
def test_destroy_removes_the_lab_and_leaves_nothing_behind(
    configured_lab: Any, stack_state: Path
) -> None:
    gone = govcloud_pulumi(stack_state, "destroy", "--stack", "lab", "--yes", "--skip-preview")
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-2000:]
    assert re.search(r"- \d+ deleted", gone.stdout) and "fabric deleted" in gone.stdout, (
        gone.stdout[-3000:]
    )
    listing = govcloud_pulumi(stack_state, "stack", "--stack", "lab", "--show-urns")
    assert "urn:pulumi" not in listing.stdout, listing.stdout[-2000:]
    lab = Lab(LAB)
    assert lab.our_containers() == [] and lab.our_bridges() == []
    assert not [p for p in LabPaths.default().lxcpath.iterdir() if p.name.startswith(f"{LAB}-")]
    assert f"govcloud_lab_{LAB}" not in lx.run(["nft", "list", "tables"]).stdout
    assert not LabPaths.default().state_file(LAB).exists()
