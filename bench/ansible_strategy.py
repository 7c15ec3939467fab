"""Ansible's strategy on the lab: the cluster play and every role of the site play on every
host, each run when nothing is left to change (the runs `pulumi up`, refresh and the tests
repeat most), with Mitogen's strategy (the default) against Ansible's own linear strategy,
in the same run, each as the runner sets it up (16 forks; linear: pipelining and SSH
multiplexing; Mitogen: one connection per host for the run).

Per run: the wall time, the controller's CPU (Ansible's processes) and the whole machine's
busy CPU, which includes the hosts' side (each task's Python interpreter on the containers).
Bound: with Mitogen, each play takes at most half the time of the linear strategy's.
Needs the lab up and configured (`make up`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace

from bench.common import Result, machine_busy
from govcloud.paths import PROJECT_ROOT
from govcloud.spec import load_spec
from infra.hosts.runner import RunResult, run_playbook

BOUND = 0.5  # Mitogen's time over the linear strategy's, at most


def _timed(play: str, mitogen: bool) -> tuple[RunResult, float, float, float]:
    from clusters.cloud.apply import prepare as prepare_cluster
    from infra.hosts.apply import lab_credentials, prepare

    spec = load_spec(PROJECT_ROOT / "examples" / "lab.yaml")
    if play == "cluster.yml":
        ct = prepare_cluster(spec, lab_credentials())
        inventory, connection = ct.inventory, ct.hosts.connection
        extravars = None
    else:
        target = prepare(spec, lab_credentials())
        inventory, connection = target.inventory, target.connection
        extravars = {"converged_full": True}  # every role on every host
    connection = replace(connection, mitogen=mitogen)
    t0, c0, b0 = time.monotonic(), os.times(), machine_busy()
    run = run_playbook(play, inventory, connection, extravars=extravars)
    c1 = os.times()
    controller = c1.children_user + c1.children_system - c0.children_user - c0.children_system
    return run, time.monotonic() - t0, controller, machine_busy() - b0


def run() -> Result:
    figures: dict[str, float | int | str] = {}
    checks: dict[str, bool] = {}
    for play in ("cluster.yml", "site.yml"):
        name = play.removesuffix(".yml")
        timings = {}
        for mitogen in (True, False):
            result, wall, controller, busy = _timed(play, mitogen)
            label = "mitogen" if mitogen else "linear"
            checks[f"{name} ({label}) changed nothing"] = result.ok and result.changed == 0
            figures[f"{name}_{label}_s"] = round(wall, 1)
            figures[f"{name}_{label}_controller_cpu_s"] = round(controller, 1)
            figures[f"{name}_{label}_machine_cpu_s"] = round(busy, 1)
            timings[label] = wall
        ratio = timings["mitogen"] / timings["linear"]
        figures[f"{name}_ratio"] = round(ratio, 2)
        checks[f"{name}: Mitogen <= {BOUND:.0%} of linear"] = ratio <= BOUND
    return Result("ansible_strategy", figures, checks)


def main() -> int:
    result = run()
    print(json.dumps({"name": result.name, **result.figures, "checks": result.checks}))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
