"""Applying all 59 Guizhou tenants (about 1,600 objects) to a real API server: server-side
apply with bounded concurrency against one object at a time.

One local control plane (``govcloud k8s up`` in a temporary state directory on free loopback
ports) serves both runs. Each run creates its own copy of the 59 tenants (department codes
suffixed, so both start from nothing), platform objects applied beforehand; the parallel run
goes second, on the fuller store, so any bias is against it. Re-applying (nothing changes) is
timed for both modes too (every object sent again), and as ``apply`` does by default (objects
that still hold what was last applied are not sent). Goal (issue 8): parallel at least 3× faster.

The control plane's and the client's CPU seconds are recorded per run, with the machine's load
average. No concurrency can make the parallel run shorter than that CPU work spread over the
machine's cores (``parallel_floor_s``), so ``ratio_ceiling`` is the best ratio this machine
allows; on a shared machine the ratio says more about the neighbours than about the client.

Run: ``python -m bench.tenants_apply [--concurrency N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Result, free_ports
from clusters.tenants import apply as tenant_apply
from clusters.tenants.kube import Kube
from clusters.tenants.plan import TenantPlan, plan_tenants
from govcloud.spec import Spec, parse
from govcloud.spec.generate import generate
from govcloud.toolchain import k8s

GOAL_RATIO = 3.0


def _variant(suffix: str) -> tuple[Spec, TenantPlan]:
    spec = parse(generate("guizhou"))
    for d in spec.departments:
        d.code = f"{d.code}{suffix}"
    return spec, plan_tenants(spec)


def _tenant_only(plan: TenantPlan) -> TenantPlan:
    return TenantPlan(plan.tenants, [], plan.totals, plan.capacity, plan.options)


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the control plane's processes have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _timed(
    pids: list[int], fn: Callable[[], tenant_apply.Outcome]
) -> tuple[tenant_apply.Outcome, float, float]:
    """The outcome, the control plane's CPU seconds and this client's CPU seconds."""
    before, client = _cpu_seconds(pids), time.process_time()
    out = fn()
    return out, _cpu_seconds(pids) - before, time.process_time() - client


def measure(k: Kube, concurrency: int, pids: list[int] | None = None) -> dict[str, float | int]:
    pids = pids or []
    _spec, seq_plan = _variant("s")
    _spec, par_plan = _variant("p")
    # the platform objects (shared by both copies) first, outside the timings
    tenant_apply.apply(TenantPlan([], seq_plan.platform, {}, {}, seq_plan.options), k)
    seq_plan, par_plan = _tenant_only(seq_plan), _tenant_only(par_plan)

    load_before = os.getloadavg()[0]
    seq, seq_cpu, seq_client = _timed(pids, lambda: tenant_apply.apply(seq_plan, k, concurrency=1))
    par, par_cpu, par_client = _timed(
        pids, lambda: tenant_apply.apply(par_plan, k, concurrency=concurrency)
    )
    cores = os.cpu_count() or 1
    for out in (seq, par):
        if out.errors:
            raise RuntimeError(f"apply failed: {out.errors[:3]}")
        assert out.count()["create"] == len(seq_plan.manifests())
    # re-applying: every object sent again (--full), then as apply does by default (objects
    # that still hold what was last applied are not sent)
    seq_again = tenant_apply.apply(seq_plan, k, concurrency=1, full=True)
    par_again = tenant_apply.apply(par_plan, k, concurrency=concurrency, full=True)
    skip_again = tenant_apply.apply(par_plan, k, concurrency=concurrency)
    for out in (seq_again, par_again, skip_again):
        assert out.count()["update"] == 0 and not out.errors
    assert skip_again.requests == 0
    return {
        "objects": len(par_plan.manifests()),
        "concurrency": concurrency,
        "sequential_s": round(seq.seconds, 2),
        "parallel_s": round(par.seconds, 2),
        "ratio": round(seq.seconds / par.seconds, 2),
        # CPU the control plane (etcd, kube-apiserver, controller manager) spent on each run:
        # the parallel run cannot finish faster than this over the cores it is given
        "server_cpu_sequential_s": round(seq_cpu, 2),
        "server_cpu_parallel_s": round(par_cpu, 2),
        "client_cpu_sequential_s": round(seq_client, 2),
        "client_cpu_parallel_s": round(par_client, 2),
        # the shortest the parallel run could take on this machine's cores, were they all
        # busy with it: its own CPU work spread over them; and the ratio that would give
        "cores": cores,
        "parallel_floor_s": round((par_cpu + par_client) / cores, 2),
        "ratio_ceiling": round(seq.seconds / ((par_cpu + par_client) / cores), 2),
        "load_average_1m": round(load_before, 1),
        "reapply_sequential_s": round(seq_again.seconds, 2),
        "reapply_parallel_s": round(par_again.seconds, 2),
        "reapply_ratio": round(seq_again.seconds / par_again.seconds, 2),
        "reapply_default_s": round(skip_again.seconds, 2),
    }


def run(concurrency: int = tenant_apply.DEFAULT_CONCURRENCY) -> Result:
    with tempfile.TemporaryDirectory(prefix="govcloud-bench-k8s-") as tmp:
        etcd, _peer, api, cm = free_ports(4)
        cfg = k8s.ClusterConfig(Path(tmp), api_port=api, etcd_port=etcd,
                                controller_manager_port=cm)  # fmt: skip
        try:
            k8s.up(cfg)
            k = Kube.from_kubeconfig(cfg.kubeconfig, pool=concurrency)
            pids = [p for c in k8s.COMPONENTS if (p := k8s.running_pid(cfg, c)) is not None]
            figures = measure(k, concurrency, pids)
        finally:
            k8s.down(cfg)
    return Result(
        "tenants apply (59 departments)",
        dict(figures),
        {f"parallel at least {GOAL_RATIO:g}x faster": float(figures["ratio"]) >= GOAL_RATIO},
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrency", type=int, default=tenant_apply.DEFAULT_CONCURRENCY)
    args = ap.parse_args(argv)
    r = run(args.concurrency)
    print(json.dumps({"name": r.name, **r.figures, "checks": r.checks}, indent=2))
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
