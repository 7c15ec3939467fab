"""The ``govcloud`` command: one typer app, one sub-app per area."""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from govcloud.cli import apps as apps_cli
from govcloud.cli import audit as audit_cli
from govcloud.cli import cluster as cluster_cli
from govcloud.cli import compliance as compliance_cli
from govcloud.cli import hosts as hosts_cli
from govcloud.cli import identity as identity_cli
from govcloud.cli import images as images_cli
from govcloud.cli import k8s as k8s_cli
from govcloud.cli import lab as lab_cli
from govcloud.cli import loadtest as loadtest_cli
from govcloud.cli import pki as pki_cli
from govcloud.cli import plan as plan_cli
from govcloud.cli import spec as spec_cli
from govcloud.cli import ssh as ssh_cli
from govcloud.cli import stack as stack_cli
from govcloud.cli import tenants as tenants_cli
from govcloud.cli.common import err_console, print_json
from govcloud.errors import EXIT_FAILED, GovcloudError, InputError

app = typer.Typer(
    name="govcloud",
    help="Build and run a private government cloud (政务云) from one spec: the government "
    "network, the data center, identity and the bastion, department tenants, and the halls "
    "of the five levels under load.\n\n"
    "Exit codes: 0 success, 1 a failed check or operation, 2 bad input.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# in the order a new user meets them: describe, plan, build, configure, check, operate
app.add_typer(spec_cli.app, name="spec")
app.command("plan")(plan_cli.plan_command)
app.add_typer(plan_cli.net_app, name="net")
app.add_typer(plan_cli.dc_app, name="dc")
app.add_typer(lab_cli.app, name="lab")
app.add_typer(k8s_cli.app, name="k8s")
app.add_typer(cluster_cli.app, name="cluster")
app.add_typer(images_cli.app, name="images")
app.command("pulumi", context_settings=stack_cli.PASSTHROUGH)(stack_cli.pulumi_command)
app.add_typer(hosts_cli.app, name="hosts")
app.add_typer(compliance_cli.app, name="compliance")
app.add_typer(identity_cli.app, name="identity")
app.add_typer(pki_cli.app, name="pki")
app.command("ssh")(ssh_cli.ssh_command)
app.command("ssh-config")(ssh_cli.ssh_config_command)
app.add_typer(audit_cli.app, name="audit")
app.add_typer(tenants_cli.app, name="tenants")
app.add_typer(apps_cli.app, name="app")
app.add_typer(loadtest_cli.app, name="loadtest")


def _report(exc: GovcloudError) -> None:
    text = exc.render() if isinstance(exc, InputError) else str(exc)
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: runs the app and turns every error into a message and an exit code."""
    as_json = "--json" in sys.argv[1:]
    try:
        app()
    except GovcloudError as exc:
        if as_json:
            problems = exc.problems if isinstance(exc, InputError) else []
            print_json(
                {
                    "ok": False,
                    "error": exc.title if isinstance(exc, InputError) else str(exc),
                    "problems": [p.as_dict() for p in problems],
                }
            )
            sys.exit(exc.exit_code)
        _report(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # never a traceback, unless asked for
        if os.environ.get("GOVCLOUD_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: "
            f"{escape(str(exc))}\n"
            "Run again with GOVCLOUD_DEBUG=1 for the traceback, and report it.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_FAILED)
