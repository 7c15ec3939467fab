"""`govcloud cluster`: the cloud's Kubernetes cluster on the plan's hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from govcloud.cli.common import JsonOpt, SpecArg, console, print_json, read_spec
from govcloud.errors import EXIT_FAILED, InputError
from security.access.ssh_config import Credentials

app = typer.Typer(
    help="The cloud's Kubernetes cluster: a control plane in the data center, the compute "
    "hosts as worker nodes (containerd, kubelet, kube-proxy, NetworkPolicy by kube-router), "
    "cluster DNS and a registry. `apply` is idempotent.",
    no_args_is_help=True,
)


def _creds(identity: Path | None, user: str) -> Credentials:
    from infra.hosts.apply import lab_credentials

    creds = Credentials(user, identity) if identity else lab_credentials()
    if not creds.identity_file.is_file():
        raise InputError(
            f"--identity: no SSH key at {creds.identity_file} (bring the lab up first, or pass "
            "the key of the administrator account)"
        )
    return creds


@app.command()
def apply(
    spec: SpecArg = None,
    identity: Annotated[
        Path | None, typer.Option(help="SSH private key (default: the lab's).")
    ] = None,
    user: Annotated[str, typer.Option(help="Administrator account to log in as.")] = "ops",
    json: JsonOpt = False,
) -> None:
    """Bring the cluster to its plan: certificates, registry, control plane, nodes, the
    platform's images, DNS; then wait until every node is Ready. Run after `hosts apply`.

    Exits 1 if a host failed or a node is not Ready in time; the kubeconfig of the platform
    administrator is written to state/cluster/admin.kubeconfig."""
    from clusters.cloud.apply import apply as run_apply
    from clusters.cloud.apply import prepare
    from govcloud.cli.hosts import show_result

    target = prepare(read_spec(spec), _creds(identity, user))
    if json:
        result = run_apply(target)
        print_json({**result.as_dict(), "kubeconfig": str(target.kubeconfig)})
    else:
        with console.status("running cluster.yml") as status:
            result = run_apply(target, progress=lambda m: status.update(escape(m)))
        show_result(result.run)
        for image, sent in result.images.items():
            console.print(f"image {image}: {'pushed' if sent else 'up to date'}")
        _show_nodes(result.nodes)
        console.print(f"kubeconfig: {target.kubeconfig}")
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


def _show_nodes(nodes: dict[str, str]) -> None:
    table = Table(title="nodes")
    table.add_column("node")
    table.add_column("state")
    for name, state in sorted(nodes.items()):
        colour = "green" if state == "Ready" else "red"
        table.add_row(name, f"[{colour}]{state}[/]")
    console.print(table)


@app.command()
def status(spec: SpecArg = None, json: JsonOpt = False) -> None:
    """Each planned node's state and the cluster DNS, as the API server reports them.
    Exits 1 unless every node is Ready and DNS has all its replicas."""
    from clusters.cloud.apply import dns_ready, node_states
    from clusters.cloud.pki import cluster_dir
    from clusters.cloud.plan import make_cluster_plan
    from infra.plan import make_plan

    sp = read_spec(spec)
    plan = make_plan(sp)
    cp = make_cluster_plan(sp, plan.hosts)
    if cp is None:
        raise InputError("the spec plans no cluster (no host with role control-plane)")
    kubeconfig = cluster_dir() / "admin.kubeconfig"
    if not kubeconfig.is_file():
        raise InputError(f"{kubeconfig}: no kubeconfig yet (run: govcloud cluster apply)")
    nodes = node_states(kubeconfig, cp)
    ready, wanted = dns_ready(kubeconfig)
    ok = all(v == "Ready" for v in nodes.values()) and wanted > 0 and ready >= wanted
    if json:
        print_json(
            {
                "ok": ok,
                "server": cp.server,
                "nodes": nodes,
                "dns": {"ready": ready, "wanted": wanted},
            }
        )
    else:
        console.print(f"API server {cp.server}")
        _show_nodes(nodes)
        console.print(f"cluster DNS: {ready}/{wanted} ready")
    if not ok:
        raise typer.Exit(EXIT_FAILED)
