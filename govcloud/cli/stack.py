"""`govcloud pulumi ...`: the Pulumi CLI on the project's local backend.

Runs `pulumi` (from the tool cache) with the local file backend, its generated passphrase and
the project's Python, so `govcloud pulumi up --stack lab --yes` works on a fresh machine
without `pulumi login`. The stack is created on first use.
"""

from __future__ import annotations

import subprocess

import typer

from govcloud.errors import InputError

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
    stack = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--stack", "-s")), None)
    if stack:  # create it on first use; selecting an existing one changes nothing
        subprocess.run(
            [exe, "stack", "select", "--create", stack],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    proc = subprocess.run([exe, *args], cwd=PROJECT_ROOT, env=env, check=False)
    raise typer.Exit(proc.returncode)
