"""`govcloud tenants`: one Kubernetes tenant per department: plan, render, diff, apply, and the
department credentials that act inside a tenant."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from clusters.tenants import DEFAULT_CONCURRENCY
from govcloud.cli.common import JsonOpt, SpecArg, console, err_console, print_json, read_spec
from govcloud.errors import InputError, OperationError
from govcloud.naming import DEPARTMENT_ROLES

# the Kubernetes client takes most of a second to import: only the commands that talk to a
# server or build objects import it, so `govcloud --help` and the other areas stay quick
if TYPE_CHECKING:
    from clusters.tenants import apply as tenant_apply
    from clusters.tenants.kube import Kube
    from clusters.tenants.plan import TenantPlan

app = typer.Typer(
    help="Department tenants on Kubernetes: namespaces with Pod Security 'restricted', quota "
    "and limits from the spec's sizing, default-deny network policy, RBAC bound to the "
    "department's identity groups, admission policies for registries and classes. "
    "`diff` before `apply`; `render` for GitOps.",
    no_args_is_help=True,
)

KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Whom to act as, where. Default: $GOVCLOUD_KUBECONFIG, else the local API "
        "server's admin kubeconfig (govcloud k8s up).",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option("--concurrency", "-c", min=1, max=128, help="requests in flight at once"),
]
FullOpt = Annotated[
    bool,
    typer.Option(
        "--full",
        help="send every object, even those that still hold what was last applied (their "
        "digest annotation matches and nobody else has written to them)",
    ),
]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="The local API server's state directory (its CA signs the credentials). "
        "Default: $GOVCLOUD_K8S_DIR, else $GOVCLOUD_CACHE/k8s.",
        show_default=False,
    ),
]


def kubeconfig_path(kubeconfig: Path | None) -> Path:
    from govcloud.toolchain.k8s import ClusterConfig

    if kubeconfig is not None:
        return kubeconfig
    env = os.environ.get("GOVCLOUD_KUBECONFIG")
    return Path(env) if env else ClusterConfig.load().kubeconfig


def connect(kubeconfig: Path | None, pool: int = 16) -> Kube:
    from clusters.tenants.kube import Kube

    return Kube.from_kubeconfig(kubeconfig_path(kubeconfig), pool=pool)


def _plan(spec: Path | None) -> TenantPlan:
    from clusters.tenants.plan import plan_tenants

    return plan_tenants(read_spec(spec))


@app.command()
def plan(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Show each department's tenant: namespaces, quota per environment, grants (no server)."""
    from clusters.tenants.plan import plan_tenants

    s = read_spec(spec)
    p = plan_tenants(s)
    rows: list[dict[str, Any]] = []
    for t in p.tenants:
        d = s.department(t.code)
        assert d is not None
        for env, q in t.quotas.items():
            rows.append(
                {
                    "department": t.code,
                    "namespace": f"{t.code}-{env}",
                    "deploy": d.tenant.deploy.value,
                    "cpu": q.cpu_m / 1000,
                    "memory_gib": round(q.memory_mi / 1024, 3),
                    "storage_gib": round(q.storage_mi / 1024, 3),
                    "pods": q.pods,
                    "grants": [g.value for g in d.grants],
                    "objects": len(t.objects),
                }
            )
    if json:
        print_json({"ok": True, **p.summary(), "namespaces": rows})
        return
    table = Table(title=f"tenants of {s.name}")
    for col in ("namespace", "deploy", "cpu", "memory GiB", "storage GiB", "pods", "grants"):
        table.add_column(col, justify="right" if col in ("cpu", "pods") else "left")
    for r in rows:
        table.add_row(
            r["namespace"],
            r["deploy"],
            f"{r['cpu']:g}",
            f"{r['memory_gib']:g}",
            f"{r['storage_gib']:g}",
            str(r["pods"]),
            ", ".join(r["grants"]) or "-",
        )
    console.print(table)
    sm = p.summary()
    tot, cap = sm["quota_totals"], sm["pool_capacity"]
    console.print(
        f"{sm['tenants']} tenants, {sm['namespaces']} namespaces, {sm['objects']} objects; "
        f"quotas add up to {tot['cpu']:g}/{cap['cpu']:g} vCPU, "
        f"{tot['memory_gib']:g}/{cap['memory_gib']:g} GiB memory, "
        f"{tot['storage_gib']:g}/{cap['storage_gib']:g} GiB storage of the pools",
        highlight=False,
    )


@app.command()
def render(
    spec: SpecArg = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="directory to write")] = Path("tenants"),
    kube_version: Annotated[
        str | None,
        typer.Option(
            "--kube-version",
            help="validate against this Kubernetes version's schemas "
            "[default: the toolchain's KUBERNETES_VERSION]",
            show_default=False,
        ),
    ] = None,
    validate: Annotated[bool, typer.Option(help="validate every manifest first")] = True,
    json: JsonOpt = False,
) -> None:
    """Write every tenant object as YAML (one file per department, one for the platform, and a
    kustomization) after validating each against the Kubernetes schemas (kubernetes-validate)."""
    from clusters.tenants import apply as tenant_apply
    from clusters.tenants.validate import SchemasMissing, validate_offline

    p = _plan(spec)
    version = kube_version or _toolchain_kube_version()
    if validate:
        try:
            problems = validate_offline(p.manifests(), version)
        except SchemasMissing as exc:
            raise InputError(
                f"{exc}; pass --no-validate, or validate on a server with diff"
            ) from exc
        if problems:
            raise InputError(problems, title=f"manifests invalid for Kubernetes {version}")
    files = tenant_apply.render(p, out)
    if json:
        print_json({"ok": True, "files": [str(f) for f in files], "validated_for": version})
        return
    console.print(
        f"[green]wrote[/] {len(files)} files to {escape(str(out))}"
        + (f" (validated for Kubernetes {version})" if validate else ""),
        highlight=False,
    )


def _toolchain_kube_version() -> str:
    try:
        from govcloud.toolchain.versions import load_versions

        return load_versions()["KUBERNETES_VERSION"]
    except (InputError, OSError, KeyError):
        return "1.36.0"


def _print_changes(outcome: tenant_apply.Outcome, show_diff: bool) -> None:
    marks = {
        "create": "[green]+ create[/]",
        "update": "[yellow]~ update[/]",
        "prune": "[red]- prune[/]",
    }
    for c in outcome.changes:
        if c.action == "unchanged":
            continue
        console.print(f"{marks[c.action]} {escape(c.what)}", highlight=False)
        if show_diff and c.diff:
            console.print(escape(c.diff), highlight=False, markup=False)


def _check_errors(outcome: tenant_apply.Outcome) -> None:
    if outcome.errors:
        shown = outcome.errors[:20]
        more = len(outcome.errors) - len(shown)
        raise OperationError(
            f"{len(outcome.errors)} request(s) failed:\n  - "
            + "\n  - ".join(shown)
            + (f"\n  ... and {more} more" if more > 0 else "")
        )


@app.command()
def diff(
    spec: SpecArg = None,
    kubeconfig: KubeconfigOpt = None,
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    full: FullOpt = False,
    json: JsonOpt = False,
) -> None:
    """What `apply` would change, asked of the API server (dry-run server-side apply); what
    `apply --prune` would delete. Exits 0 whether or not there are changes."""
    from clusters.tenants import apply as tenant_apply

    p = _plan(spec)
    outcome = tenant_apply.diff(p, connect(kubeconfig, concurrency), concurrency, full=full)
    if json:
        print_json(outcome.as_dict())
        _check_errors(outcome)
        return
    _check_errors(outcome)
    _print_changes(outcome, show_diff=True)
    n = outcome.count()
    console.print(
        f"{n['create']} to create, {n['update']} to update, {n['unchanged']} unchanged, "
        f"{n['prune']} only with --prune",
        highlight=False,
    )


@app.command("apply")
def apply_cmd(
    spec: SpecArg = None,
    kubeconfig: KubeconfigOpt = None,
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="also delete the tenant objects (and whole namespaces) of departments no "
            "longer in the spec; they are listed before anything is deleted",
        ),
    ] = False,
    full: FullOpt = False,
    json: JsonOpt = False,
) -> None:
    """Server-side apply (field manager `govcloud`) of every tenant object, in parallel."""
    from clusters.tenants import apply as tenant_apply
    from clusters.tenants import kube as kube_mod

    p = _plan(spec)

    def announce(keys: list[tenant_apply.Key]) -> None:
        out = err_console if json else console
        out.print(f"pruning {len(keys)} object(s) no longer in the spec:", highlight=False)
        for key in keys:
            extra = " (and everything in it)" if key[1] == "Namespace" else ""
            out.print(f"  - {escape(kube_mod.describe(key))}{extra}", highlight=False)

    outcome = tenant_apply.apply(
        p, connect(kubeconfig, concurrency), concurrency=concurrency, prune=prune,
        on_prune=announce, full=full,
    )  # fmt: skip
    if json:
        print_json(outcome.as_dict())
        _check_errors(outcome)
        return
    _print_changes(outcome, show_diff=False)
    _check_errors(outcome)
    n = outcome.count()
    console.print(
        f"[green]applied[/] {n['create']} created, {n['update']} updated, "
        f"{n['unchanged']} unchanged, {n['prune']} pruned in {outcome.seconds:.1f} s "
        f"({outcome.requests} requests)",
        highlight=False,
    )


@app.command()
def validate(
    spec: SpecArg = None,
    kubeconfig: KubeconfigOpt = None,
    json: JsonOpt = False,
) -> None:
    """Validate every manifest against the schemas of the server's version (kubernetes-validate);
    where it has none for that version, ask the server itself (dry-run) and say so."""
    from clusters.tenants.validate import has_schemas, server_dry_run, validate_offline

    p = _plan(spec)
    k = connect(kubeconfig)
    version = k.server_version()
    manifests = p.manifests()
    if has_schemas(version):
        how = f"kubernetes-validate schemas for {version}"
        problems = validate_offline(manifests, version)
    else:
        how = f"server-side dry run (kubernetes-validate has no schemas for {version})"
        problems = server_dry_run(manifests, k)
    if problems:
        raise InputError(problems, title=f"manifests invalid ({how})")
    if json:
        print_json({"ok": True, "manifests": len(manifests), "validated_with": how})
        return
    console.print(f"[green]valid[/]: {len(manifests)} manifests ({how})", highlight=False)


@app.command()
def credentials(
    department: Annotated[str, typer.Argument(help="the department's code")],
    spec: SpecArg = None,
    role: Annotated[str, typer.Option(help=f"one of {', '.join(DEPARTMENT_ROLES)}")] = "developer",
    person: Annotated[
        str | None, typer.Option(help="a person's name: the user becomes <person>@<code>")
    ] = None,
    state_dir: StateOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="where to write the kubeconfig")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """A kubeconfig for a department role on the local API server: a client certificate signed
    by its CA with the department's group (dept-<code>-<role>s) as organisation."""
    from clusters.tenants.credentials import department_kubeconfig
    from govcloud.toolchain.k8s import ClusterConfig

    s = read_spec(spec)
    if s.department(department) is None:
        raise InputError(f"no department with code {department!r} in spec {s.name}")
    cfg = ClusterConfig.load(state_dir.resolve() if state_dir else None)
    path = department_kubeconfig(cfg, department, role, person, out)
    if json:
        print_json({"ok": True, "kubeconfig": str(path), "department": department, "role": role})
        return
    console.print(f"[green]wrote[/] {escape(str(path))}", highlight=False)
