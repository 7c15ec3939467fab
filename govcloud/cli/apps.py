"""`govcloud app`: department teams deploy their apps into their own tenant, without tickets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from govcloud.cli.common import JsonOpt, console, print_json, read_spec
from govcloud.cli.tenants import KubeconfigOpt, connect
from govcloud.errors import InputError
from govcloud.naming import tenant_namespace

# the app modules build Kubernetes client objects: imported by the commands that use them
if TYPE_CHECKING:
    from clusters.deploy import rollout
    from clusters.deploy.spec import AppSpec

app = typer.Typer(
    help="Deploy a department app (Deployment, Service, optional Ingress and autoscaler) into "
    "the department's namespace with the department's own credentials; status and rollback.",
    no_args_is_help=True,
)

AppArg = Annotated[Path, typer.Argument(help="the app spec (YAML)", show_default=False)]
SpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--spec",
        help="The cloud spec the tenants come from. Defaults to $GOVCLOUD_SPEC, else the lab "
        "spec in examples/.",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[float, typer.Option(help="seconds to wait for the rollout")]
WaitOpt = Annotated[bool, typer.Option(help="wait for the rollout")]


def _validated(path: Path, spec: Path | None) -> tuple[AppSpec, list[dict[str, Any]]]:
    """Load and check the app against its tenant; nothing is sent before this passes."""
    from clusters.deploy import objects
    from clusters.deploy.spec import check, load_app
    from clusters.tenants.plan import plan_tenants

    a = load_app(path)
    s = read_spec(spec)
    p = plan_tenants(s)
    check(a, s, p, source=str(path))
    return a, objects.build(a, p)


def _report(result: rollout.Rollout, json: bool, extra: dict[str, Any]) -> None:
    if json:
        print_json({**extra, "ok": result.ok, "rollout": result.as_dict()})
    else:
        colour = "green" if result.ok else "red"
        console.print(
            f"[{colour}]{result.state}[/]: {escape(result.message)}"
            + (f" (revision {result.revision})" if result.revision else ""),
            highlight=False,
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def deploy(
    app_spec: AppArg,
    spec: SpecOpt = None,
    kubeconfig: KubeconfigOpt = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 120.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate and print the objects; send nothing")
    ] = False,
    openbao_addr: Annotated[
        str | None,
        typer.Option(
            help="read the app's secrets from this OpenBao (token from $BAO_TOKEN) and store "
            "them in the app's Secret; without it the Secret is left to the secrets sync",
            show_default=False,
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Validate the app against its tenant (tenant, environment, image and registry, ports,
    resources within limits and quota, secrets in the department's own OpenBao mount), then
    apply it and wait for the rollout. Exits 2 on a bad spec (nothing sent), 1 when the API
    server refuses or the rollout does not complete (the reason is reported)."""
    from clusters.deploy import rollout

    a, manifests = _validated(app_spec, spec)
    if not dry_run:
        from clusters.images.registry import require_image

        server = connect(kubeconfig).api.configuration.host
        require_image(a.image, read_spec(spec), server)
    if dry_run:
        if json:
            print_json({"ok": True, "objects": manifests})
        else:
            import yaml

            console.print(
                escape(yaml.safe_dump_all(manifests, sort_keys=False, allow_unicode=True)),
                highlight=False,
            )
        return
    secret_values = None
    if openbao_addr and a.secrets:
        token = os.environ.get("BAO_TOKEN") or os.environ.get("VAULT_TOKEN")
        if not token:
            raise InputError("--openbao-addr needs the department's token in $BAO_TOKEN")
        secret_values = rollout.read_openbao_secrets(
            a, openbao_addr, token, os.environ.get("BAO_CACERT")
        )
    k = connect(kubeconfig)
    result = rollout.deploy(
        k, a, manifests, wait=wait, timeout=timeout, secret_values=secret_values
    )
    if not json:
        for what in result.applied:
            console.print(f"applied {escape(what)}", highlight=False)
        for what in result.deleted:
            console.print(f"deleted {escape(what)} (no longer in the spec)", highlight=False)
    _report(result.rollout, json, {"applied": result.applied, "deleted": result.deleted})


def _where(
    app_spec: Path | None, name: str | None, department: str | None, env: str
) -> tuple[str, str]:
    if app_spec is not None:
        from clusters.deploy.spec import load_app

        a = load_app(app_spec)
        return a.namespace, a.name
    if not (name and department):
        raise InputError("give the app spec, or --name and --department")
    return tenant_namespace(department, env), name


NameOpt = Annotated[str | None, typer.Option("--name", help="the app's name")]
DeptOpt = Annotated[str | None, typer.Option("--department", "-d", help="the department code")]
EnvOpt = Annotated[str, typer.Option("--environment", "-e", help="prod or test")]


@app.command()
def status(
    app_spec: Annotated[
        Path | None, typer.Argument(help="the app spec", show_default=False)
    ] = None,
    name: NameOpt = None,
    department: DeptOpt = None,
    environment: EnvOpt = "prod",
    kubeconfig: KubeconfigOpt = None,
    json: JsonOpt = False,
) -> None:
    """The app's rollout: revision, replicas, conditions, earlier revisions, pods."""
    from clusters.deploy import rollout

    ns, n = _where(app_spec, name, department, environment)
    st = rollout.status(connect(kubeconfig), ns, n)
    if json:
        print_json({"ok": True, **st})
        return
    r = st["replicas"]
    console.print(
        f"{ns}/{n}  image {escape(str(st['image']))}  revision {st['revision']}  "
        f"{r['available']}/{r['desired']} available, {r['updated']} updated",
        highlight=False,
    )
    for c in st["conditions"]:
        console.print(
            f"  {c['type']}={c['status']} {c['reason'] or ''} {escape(c['message'] or '')}",
            highlight=False,
        )
    for rev in st["revisions"]:
        console.print(
            f"  revision {rev['revision']}: {escape(str(rev['image']))} ({rev['replicas']} pods)",
            highlight=False,
        )
    for p in st["pods"]:
        console.print(
            f"  pod {p['name']}: {p['phase']} on {p['node'] or '(no node)'}", highlight=False
        )


@app.command()
def rollback(
    app_spec: Annotated[
        Path | None, typer.Argument(help="the app spec", show_default=False)
    ] = None,
    name: NameOpt = None,
    department: DeptOpt = None,
    environment: EnvOpt = "prod",
    to_revision: Annotated[
        int | None, typer.Option(help="the revision to go back to [the previous one]")
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 120.0,
    json: JsonOpt = False,
) -> None:
    """Roll the app back to an earlier revision's pod template."""
    from clusters.deploy import rollout

    ns, n = _where(app_spec, name, department, environment)
    result = rollout.rollback(connect(kubeconfig), ns, n, to_revision, wait=wait, timeout=timeout)
    _report(result, json, {"namespace": ns, "name": n})


UserOpt = Annotated[
    str,
    typer.Option(
        "--user", help="who logs in to the hosts (OpenBao signs the certificate; audited)"
    ),
]


def _plan_hosts(spec: Path | None) -> tuple[Any, Any]:
    from infra.plan import make_plan

    s = read_spec(spec)
    return s, make_plan(s).hosts


@app.command()
def backup(
    spec: SpecOpt = None,
    user: UserOpt = "sysadmin",
    json: JsonOpt = False,
) -> None:
    """Back up the hall's database now: the storage host's own backup service (which its timer
    runs on the spec's schedule, datacenter.backups) pg_dumps it, checks it by SHA-256 and keeps
    the newest datacenter.backups.keep. A failure (a host unreachable, the dump refused) exits 1
    naming the step; nothing is left half-written under a backup's name."""
    from clusters import backups

    s, hosts = _plan_hosts(spec)
    b = backups.take(s, hosts, user=user)
    if json:
        print_json({"ok": True, "backup": b.as_dict()})
    else:
        console.print(f"backup {b.name}: {b.bytes} bytes, sha256 {b.sha256[:16]}…")


@app.command()
def backups(spec: SpecOpt = None, user: UserOpt = "sysadmin", json: JsonOpt = False) -> None:
    """The hall's backups on the storage host, oldest first."""
    from clusters import backups as b

    s, hosts = _plan_hosts(spec)
    held = b.listing(s, hosts, user=user)
    if json:
        print_json({"ok": True, "backups": [x.as_dict() for x in held]})
        return
    for x in held:
        console.print(f"{x.name}  {x.bytes} bytes")
    if not held:
        console.print("no backups")


@app.command()
def restore(
    name: Annotated[str, typer.Argument(help="the backup's name, or latest")] = "latest",
    spec: SpecOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="replace the hall's database without asking")
    ] = False,
    user: UserOpt = "sysadmin",
    json: JsonOpt = False,
) -> None:
    """Recreate the hall's database from a backup (its SHA-256 checked first). The database
    is replaced: the hall's connections are closed and its pods reconnect."""
    from clusters import backups

    if not yes:
        raise InputError("restore replaces the hall's database: pass --yes to go ahead")
    s, hosts = _plan_hosts(spec)
    b = backups.restore(s, hosts, name, user=user)
    if json:
        print_json({"ok": True, "restored": b.as_dict()})
    else:
        console.print(f"restored {b.name} ({b.bytes} bytes)")
