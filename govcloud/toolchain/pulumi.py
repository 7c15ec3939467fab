"""The local Pulumi backend: stacks kept in files under the project's state directory, secrets
encrypted with a passphrase generated once (mode 0600, in the git-ignored ``state/``).

Layout under the state directory (``$GOVCLOUD_STATE``, default ``<project>/state``, the project
being the nearest directory upwards holding ``Pulumi.yaml``):

- ``pulumi/``: the file backend (``pulumi login file://...``);
- ``pulumi-home/``: ``PULUMI_HOME`` (credentials, plugins), so nothing lands in ``~/.pulumi``;
- ``pulumi-passphrase``: the secrets provider's passphrase (``PULUMI_CONFIG_PASSPHRASE_FILE``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from govcloud.errors import OperationError
from govcloud.toolchain.pki import write_private
from govcloud.toolchain.tools import bin_dir, locate


def project_root(start: Path | None = None) -> Path:
    """The nearest directory from ``start`` (default: cwd) upwards holding ``Pulumi.yaml``."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "Pulumi.yaml").is_file():
            return d
    return here


def default_state_dir() -> Path:
    env = os.environ.get("GOVCLOUD_STATE")
    return Path(env) if env else project_root() / "state"


@dataclass(frozen=True)
class LocalBackend:
    state_dir: Path

    @classmethod
    def default(cls) -> LocalBackend:
        return cls(default_state_dir())

    @property
    def backend_dir(self) -> Path:
        return self.state_dir / "pulumi"

    @property
    def url(self) -> str:
        return f"file://{self.backend_dir.resolve()}"

    @property
    def home(self) -> Path:
        return self.state_dir / "pulumi-home"

    @property
    def passphrase_file(self) -> Path:
        return self.state_dir / "pulumi-passphrase"

    def ensure(self) -> None:
        """Create the backend directory and, once, the passphrase (never overwritten)."""
        for d in (self.state_dir, self.backend_dir, self.home):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
        pf = self.passphrase_file
        if not pf.exists():
            write_private(pf, (secrets.token_urlsafe(32) + "\n").encode())
        elif pf.stat().st_mode & 0o077:
            os.chmod(pf, 0o600)

    def env(self, python: Path | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment ``pulumi`` runs in: this backend, its passphrase, the tool cache and
        the Python that runs programs (default: the one running govcloud, i.e. the venv)."""
        env = dict(os.environ if base is None else base)
        python = python or Path(sys.executable)
        venv_bin = python.parent
        env.pop("PULUMI_CONFIG_PASSPHRASE", None)  # the file is the one source
        env.update(
            {
                "PULUMI_BACKEND_URL": self.url,
                "PULUMI_HOME": str(self.home.resolve()),
                "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.passphrase_file.resolve()),
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                # The Python language host built here predates the `virtualenv` runtime option
                # reaching it over RPC; it runs PULUMI_PYTHON_CMD instead.
                "PULUMI_PYTHON_CMD": str(python),
                "VIRTUAL_ENV": str(venv_bin.parent),
                "PATH": os.pathsep.join([str(venv_bin), str(bin_dir()), env.get("PATH", "")]),
            }
        )
        return env

    def run(
        self,
        args: Sequence[str],
        cwd: Path | None = None,
        python: Path | None = None,
        timeout: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``pulumi ARGS`` here; :class:`OperationError` with its output if it fails."""
        self.ensure()
        exe = locate("pulumi")
        locate("pulumi-language-python")
        try:
            proc = subprocess.run(
                [str(exe), *args],
                cwd=cwd,
                env=self.env(python),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OperationError(
                f"pulumi {' '.join(args)} timed out after {timeout:.0f} s"
            ) from exc
        if check and proc.returncode != 0:
            raise OperationError(
                f"pulumi {' '.join(args)} failed (exit {proc.returncode}):\n"
                f"{(proc.stdout + proc.stderr).strip()[-3000:]}"
            )
        return proc

    def login(self) -> str:
        """``pulumi login file://<state>/pulumi``; returns what pulumi said."""
        return self.run(["login", self.url]).stdout.strip()
