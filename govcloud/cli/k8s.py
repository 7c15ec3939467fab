"""`govcloud k8s`: a local Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager) on loopback, for the lab and the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from govcloud.cli.common import JsonOpt, console, print_json
from govcloud.errors import OperationError
from govcloud.toolchain import k8s

app = typer.Typer(
    help="A local Kubernetes API server (etcd + kube-apiserver + kube-controller-manager) on "
    "127.0.0.1, TLS with a self-made CA, RBAC and the tenant admission plugins. The tools come "
    "from `make tools`.",
    no_args_is_help=True,
)

StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where certificates, etcd data, logs and pid files live. "
        "Default: $GOVCLOUD_K8S_DIR, else $GOVCLOUD_CACHE/k8s.",
        show_default=False,
    ),
]


def _config(state_dir: Path | None) -> k8s.ClusterConfig:
    return k8s.ClusterConfig.load(state_dir.resolve() if state_dir else None)


def _show(st: dict[str, Any]) -> None:
    for name, c in st["components"].items():
        mark = "[green]running[/]" if c["running"] else "[red]stopped[/]"
        pid = f" (pid {c['pid']})" if c["pid"] else ""
        console.print(f"{name:<24} {mark}{pid}", highlight=False, soft_wrap=True)
    console.print(
        f"server      {st['server']}  readyz: {escape(st['readyz'])}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"kubeconfig  {st['kubeconfig']}", highlight=False)


@app.command()
def up(
    state_dir: StateOpt = None,
    api_port: Annotated[int | None, typer.Option(help="kube-apiserver port [16443]")] = None,
    etcd_port: Annotated[
        int | None, typer.Option(help="etcd client port; the peer port is the next one [12379]")
    ] = None,
    controller_manager_port: Annotated[
        int | None, typer.Option(help="kube-controller-manager port [16444]")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 180.0,
    json: JsonOpt = False,
) -> None:
    """Start the control plane (what is not running yet) and wait until /readyz says ok."""
    cfg = _config(state_dir)
    wanted = {
        "api_port": api_port or cfg.api_port,
        "etcd_port": etcd_port or cfg.etcd_port,
        "controller_manager_port": controller_manager_port or cfg.controller_manager_port,
    }
    changed = {k: v for k, v in wanted.items() if getattr(cfg, k) != v}
    if changed and any(k8s.running_pid(cfg, c) for c in k8s.COMPONENTS):
        raise OperationError(
            f"the control plane in {cfg.state_dir} is running with other ports "
            f"({cfg.to_json()}); run `govcloud k8s down` first"
        )
    cfg = k8s.ClusterConfig(state_dir=cfg.state_dir, **wanted)
    st = k8s.up(cfg, timeout=timeout)
    if json:
        print_json({"ok": True, **st})
        return
    started = ", ".join(st["started"]) or "nothing (already running)"
    console.print(f"[green]ready[/]: started {started}", highlight=False)
    _show(st)
    console.print(f"use it: export KUBECONFIG={st['kubeconfig']}", highlight=False)


@app.command()
def down(state_dir: StateOpt = None, json: JsonOpt = False) -> None:
    """Stop the control plane's processes (certificates and etcd data are kept)."""
    cfg = _config(state_dir)
    result = k8s.down(cfg)
    if json:
        print_json({"ok": True, "components": result})
        return
    for name, how in result.items():
        console.print(f"{name:<24} {how}", highlight=False)


@app.command()
def status(state_dir: StateOpt = None, json: JsonOpt = False) -> None:
    """Show each component and the API server's /readyz. Exits 1 unless all are up and ready."""
    st = k8s.status(_config(state_dir))
    if json:
        print_json({"ok": st["ready"], **st})
    else:
        _show(st)
    if not st["ready"]:
        raise typer.Exit(1)
