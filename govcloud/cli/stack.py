"""`govcloud pulumi ...`: the Pulumi CLI on the project's local backend.

Runs `pulumi` (from the tool cache) with the local file backend, its generated passphrase and
the project's Python, so `govcloud pulumi up --stack lab --yes` works on a fresh machine
without `pulumi login`. The stack is created on first use.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from govcloud.errors import InputError

SALT = "encryptionsalt:"
PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def pulumi_command(ctx: typer.Context) -> None:
    """Run the Pulumi CLI on the local backend (arguments go to pulumi as they are).

    Example: govcloud pulumi up --stack lab --yes
    """
    from govcloud.paths import PROJECT_ROOT
    from govcloud.toolchain.pulumi import LocalBackend
    from govcloud.toolchain.tools import locate

    args = list(ctx.args)
    if not args:
        raise InputError("expected pulumi arguments, e.g. `govcloud pulumi up --stack lab`")
    backend = LocalBackend.default()
    backend.ensure()
    env = backend.env()
    exe = str(locate("pulumi"))
    stack = option(args, "--stack", "-s")
    config_file = option(args, "--config-file")
    config = None
    if stack:
        config = Path(config_file) if config_file else PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    with backend_salt(stack, backend.state_dir, config):
        if stack:  # create it on first use; selecting an existing one changes nothing
            subprocess.run(
                [exe, "stack", "select", "--create", stack],
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        code = run_forwarding_signals([exe, *args], cwd=PROJECT_ROOT, env=env)
    raise typer.Exit(code)


def run_forwarding_signals(argv: list[str], **kwargs: Any) -> int:
    """Run pulumi and wait for it, whatever signal arrives. Ctrl-C reaches pulumi from the
    terminal (same process group) and SIGTERM is passed on, so pulumi cancels cleanly (what is
    in flight lands in the state) instead of this wrapper dying and leaving it half-way; the
    stack file is restored afterwards either way."""
    proc = subprocess.Popen(argv, **kwargs)
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, lambda _s, _f: None),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda s, _f: proc.send_signal(s)),
    }
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def option(args: list[str], *names: str) -> str | None:
    """The value of a pulumi option given as ``--name value`` or ``--name=value``."""
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            return args[i + 1]
        for n in names:
            if a.startswith(n + "="):
                return a[len(n) + 1 :]
    return None


@contextmanager
def backend_salt(stack: str | None, state: Path, config: Path | None) -> Iterator[None]:
    """The passphrase provider's salt belongs to this backend's passphrase, not to the
    repository: it is kept in the state directory and lent to the stack's configuration file
    (``Pulumi.<stack>.yaml``, or the one ``--config-file`` names) only while pulumi runs, so
    the committed stack file is the same on every machine. What pulumi itself changed in the
    file (``config set``) stays."""
    if stack is None or config is None:
        yield
        return
    kept = state / "pulumi-salts" / stack
    existed = config.exists()
    lines = [
        ln
        for ln in (config.read_text(encoding="utf-8") if existed else "").splitlines()
        if not ln.startswith(SALT)
    ]
    if kept.exists():
        config.write_text("\n".join([*lines, kept.read_text().strip()]) + "\n", encoding="utf-8")
    try:
        yield
    finally:
        now = config.read_text(encoding="utf-8").splitlines() if config.exists() else []
        salt = next((ln for ln in now if ln.startswith(SALT)), None)
        if salt:
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(salt + "\n")
        rest = [ln for ln in now if not ln.startswith(SALT)]
        if not existed and not rest:
            config.unlink(missing_ok=True)
        else:
            config.write_text("\n".join(rest) + "\n", encoding="utf-8")
