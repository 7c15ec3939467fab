"""`govcloud ssh HOST [-- CMD]` and `govcloud ssh-config`: SSH with short-lived certificates."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from govcloud.cli.common import console, err_console, read_spec
from govcloud.errors import InputError

if TYPE_CHECKING:
    from infra.inventory import InvHost
    from security.identity.plan import IdentityPlan

UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user", "-u", help="Your OpenBao identity (default: $GOVCLOUD_USER).", show_default=False
    ),
]
PasscodeOpt = Annotated[
    str | None, typer.Option("--passcode", help="TOTP passcode (administrators).")
]
SpecOpt = Annotated[Path | None, typer.Option("--spec", help="The spec (default: the lab's).")]


def _user(user: str | None) -> str:
    user = user or os.environ.get("GOVCLOUD_USER")
    if not user:
        raise InputError("who are you? pass --user NAME or set GOVCLOUD_USER")
    return user


def _context(spec: Path | None) -> tuple[IdentityPlan, list[InvHost]]:
    from infra.plan import make_plan
    from security.identity.plan import make_identity_plan

    s = read_spec(spec)
    hosts = make_plan(s).hosts
    return make_identity_plan(s, hosts), hosts


def ssh_command(
    host: Annotated[str, typer.Argument(help="Host name or address.")],
    command: Annotated[
        list[str] | None, typer.Argument(help="Command to run (after --); none: a shell.")
    ] = None,
    user: UserOpt = None,
    passcode: PasscodeOpt = None,
    account: Annotated[
        str | None, typer.Option(help="Account on the host (default: the one your group maps to).")
    ] = None,
    spec: SpecOpt = None,
) -> None:
    """Log in to OpenBao (or reuse your token), get your key signed by the SSH CA, and connect
    through the bastion. Exits with the remote command's status."""
    from security.access.connect import open_session, run

    plan, hosts = _context(spec)
    session = open_session(plan, hosts, _user(user), host, passcode=passcode, account=account)
    try:
        if command:
            result = run(session, " ".join(command), hide=True)
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            raise typer.Exit(result.exited)
        session.connection.shell()
    finally:
        session.close()


def ssh_config_command(
    user: UserOpt = None,
    passcode: PasscodeOpt = None,
    host: Annotated[
        str, typer.Option(help="A host your certificate is for (chooses the account).")
    ] = "bastion",
    spec: SpecOpt = None,
) -> None:
    """Write the one ssh_config (state/ssh/ssh_config) for you: your key and fresh certificate,
    every host through the bastion, hosts checked against the host CA (no trust on first use).
    OpenSSH, fabric, testinfra and Ansible all read it."""
    from security.access import certs, ssh_config
    from security.identity.session import login
    from security.openbao.cluster import Paths

    plan, hosts = _context(spec)
    name = _user(user)
    paths = Paths.default()
    ca_line = ssh_config.stored_host_ca_line()
    if ca_line is None:
        raise InputError("no host CA known yet: run `govcloud identity apply` first")
    grant, account = certs.choose(plan, name, host)
    bao = login(name, hosts, paths, passcode=passcode)
    pair = certs.key_pair(name, paths)
    cert = certs.sign(bao, pair, grant)
    path = ssh_config.write(
        hosts, ssh_config.Credentials(account, pair.private, cert), host_ca_line=ca_line
    )
    console.print(f"wrote {path} ({account}, certificate {cert.name} for {grant.principal})")
    err_console.print(f"try: ssh -F {path} {host}")
