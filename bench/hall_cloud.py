"""The hall on the cloud (issue 15), against the lab: what one citizen's request costs the hall's
pods, what one more replica buys, and whether the capacity plan predicts it.

(a) **CPU per request of the hall pods** for the mixed workload (every persona and level, the
    open model held flat), read from the pods' own cgroup CPU accounting on the machine
    (``cpuacct.usage`` of ``kubepods/.../pod<uid>`` inside each node's container) over the run,
    divided by the requests served. Baseline: the 4.1 ms the same workload cost the hall on the
    hall hosts (issue 9's measurement, the figure issue 15 names); goal: half or less.
(b) **Scaling**: the highest rate held with p95 <= 200 ms and no errors, with the hall pinned
    (its autoscaler's min = max) to 1 replica, then to 2, each limited to
    :data:`REPLICA_CPU`. Goal: 2 replicas hold >= 1.7x what 1 holds. The rate climbs by 20 %
    until a step fails, then halves the gap to the failing rate twice (about 5 % resolution).
    The issue names 0.5 CPU per replica; at about 2 ms per request two such replicas would
    hold some 480/s, and the rest of the chain at that rate (locust alone 1.4 ms a request,
    the edge, PostgreSQL) needs more than this machine's 2 cores, so the machine rather than
    the replicas would run out. At 0.25 CPU the replicas are what runs out, as on a province's
    nodes sized for the hall; the machine's busy cores per step show it.
(c) **The capacity plan's prediction** for 2 replicas (``loadtests.capacity.held_rate`` with
    the cost measured in (a)) against what (b) measured: within 25 %.

Needs the lab with the hall on the cloud (``make up``). The autoscaler is restored to the app
spec's bounds at the end. Run: ``python -m bench.hall_cloud``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from bench.common import Result, locust_p95, machine_busy
from govcloud.errors import GovcloudError
from govcloud.spec import load_spec
from loadtests.run import RunOptions
from loadtests.run import run as run_loadtest

ROOT = Path(__file__).resolve().parents[1]
LAB_SPEC = ROOT / "examples" / "lab.yaml"
NS, APP = "dsjj-prod", "hall"
BASELINE_MS = 4.1  # the hall app's CPU per request on the hall hosts (issue 9, mixed workload)
P95_MS = 200.0
# the cost is taken where the 4.1 ms baseline was (the lab's halls at 100-200/s): at low rates
# each request also carries the pods' idle costs (probes, the catalog-version poll), e.g. 3.7 ms
# at 40/s against 2.4 ms at 200/s in the same run
COST_RATE, COST_SECONDS = 200.0, "40s"
STEP_SECONDS = "25s"
REPLICA_CPU = "250m"  # per replica in (b); why not the app's 500m: see the module's text
START_RPS, CLIMB, MAX_RPS, REFINE = 40.0, 1.2, 900.0, 2
CGROUP = Path("/sys/fs/cgroup/cpuacct")


def _kubectl(*args: str) -> str:
    from clusters.cloud.pki import cluster_dir
    from govcloud.toolchain.tools import bin_dir

    r = subprocess.run(
        [str(bin_dir() / "kubectl"), f"--kubeconfig={cluster_dir() / 'admin.kubeconfig'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def _pods() -> list[dict[str, Any]]:
    out = json.loads(_kubectl("-n", NS, "get", "pods", "-l", f"app.kubernetes.io/name={APP}",
                              "-o", "json"))  # fmt: skip
    return [
        p
        for p in out["items"]
        if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") == "Running"
    ]


def _pod_cgroup(lab: str, pod: dict[str, Any]) -> Path | None:
    base = CGROUP / f"lxc.payload.{lab}-{pod['spec']['nodeName']}" / "kubepods"
    uid = pod["metadata"]["uid"]
    for qos in ("", "burstable", "besteffort"):
        path = base / qos / f"pod{uid}" if qos else base / f"pod{uid}"
        if path.is_dir():
            return path
    return None


def _pods_cpu(lab: str) -> float:
    """CPU seconds the hall's running pods have used (their cgroups' cpuacct.usage)."""
    total = 0.0
    for p in _pods():
        path = _pod_cgroup(lab, p)
        if path is not None:
            total += int((path / "cpuacct.usage").read_text()) / 1e9
    return total


def _deployment() -> dict[str, Any]:
    dep: dict[str, Any] = json.loads(_kubectl("-n", NS, "get", "deployment", APP, "-o", "json"))
    return dep


def _settled(replicas: int) -> None:
    """Wait until the hall's deployment has ``replicas`` pods, all ready and of its template
    (the controller has seen the latest spec: observedGeneration)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        dep = _deployment()
        st = dep.get("status", {})
        if (
            st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
            and dep["spec"].get("replicas") == replicas
            and st.get("readyReplicas") == replicas
            and st.get("updatedReplicas") == replicas
            and st.get("replicas") == replicas
        ):
            return
        time.sleep(3)
    raise RuntimeError(f"the hall did not settle at {replicas} ready replicas in 240 s")


def _pin(replicas: int) -> None:
    """The autoscaler's min = max = ``replicas``; wait until that many pods are ready."""
    patch = {"spec": {"minReplicas": replicas, "maxReplicas": replicas}}
    _kubectl("-n", NS, "patch", "hpa", APP, "--type=merge", "-p", json.dumps(patch))
    _settled(replicas)


def _limit(cpu: str, replicas: int) -> str:
    """Set each hall container's CPU limit (a rollout), wait for ``replicas`` ready pods, and
    return the limit it had before."""
    container = _deployment()["spec"]["template"]["spec"]["containers"][0]
    before = str(container.get("resources", {}).get("limits", {}).get("cpu", ""))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": container["name"], "resources": {"limits": {"cpu": cpu}}}
    ]}}}}  # fmt: skip
    _kubectl("-n", NS, "patch", "deployment", APP, "-p", json.dumps(patch))
    _settled(replicas)
    return before


def _restore() -> None:
    from clusters.deploy.spec import load_app
    from clusters.hallapp import APP_SPEC

    a = load_app(APP_SPEC).autoscale
    if a is not None:
        patch = {"spec": {"minReplicas": a.min, "maxReplicas": a.max}}
        _kubectl("-n", NS, "patch", "hpa", APP, "--type=merge", "-p", json.dumps(patch))


def _step(spec: Any, tmp: Path, name: str, rate: float, seconds: str) -> dict[str, Any]:
    report = tmp / name
    cpu0, busy0, t0 = _pods_cpu(spec.name), machine_busy(), time.monotonic()
    result = run_loadtest(
        RunOptions(
            spec=spec, profile="soak", target="lab", rate=rate, duration=seconds,
            report_dir=report, slo=[f"p95={P95_MS:g}", "err=0"], echo=lambda _t: None,
            locust_output=False,
        )
    )  # fmt: skip
    wall = time.monotonic() - t0
    cpu = _pods_cpu(spec.name) - cpu0
    served = max(1, result["requests"] - result["failures"])
    return {
        "run": name,
        "offered_rps": rate,
        "served_rps": round(served / float(seconds.rstrip("s")), 1),
        "p95_ms": locust_p95(report),
        "failures": result["failures"],
        "requests": result["requests"],
        "hall_pods_cpu_s": round(cpu, 2),
        "hall_ms_per_request": round(1000 * cpu / served, 3),
        "machine_busy_cores": round((machine_busy() - busy0) / wall, 2),
    }


def _passes(step: dict[str, Any]) -> bool:
    return step["failures"] == 0 and step["p95_ms"] is not None and step["p95_ms"] <= P95_MS


def _ceiling(
    spec: Any, tmp: Path, replicas: int, start: float
) -> tuple[float, list[dict[str, Any]]]:
    """The highest rate held: climb by :data:`CLIMB` from ``start`` until a step fails, then
    halve the gap to the failing rate :data:`REFINE` times."""
    _pin(replicas)
    steps: list[dict[str, Any]] = []
    best, held, failed, rate = 0.0, 0.0, None, start
    while rate <= MAX_RPS:
        step = _step(spec, tmp, f"r{replicas}-{rate:.0f}", rate, STEP_SECONDS)
        steps.append(step)
        if not _passes(step):
            failed = rate
            break
        best, held, rate = max(best, step["served_rps"]), rate, rate * CLIMB
    for _ in range(REFINE):
        if failed is None:  # never failed up to MAX_RPS: nothing to refine
            break
        rate = (held + failed) / 2
        step = _step(spec, tmp, f"r{replicas}-{rate:.0f}", rate, STEP_SECONDS)
        steps.append(step)
        if _passes(step):
            best, held = max(best, step["served_rps"]), rate
        else:
            failed = rate
    return best, steps


def run_bench() -> Result:
    from loadtests.capacity import held_rate

    spec = load_spec(LAB_SPEC)
    name = "hall on the cloud (CPU per request, replicas, capacity plan)"
    app_limit = ""  # the app's own CPU limit, put back at the end
    try:
        if not _pods():
            return Result(name, {"error": "no hall pods: make up first"}, {"ran": False})
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            _pin(2)
            cost = _step(spec, tmp, "cost", COST_RATE, COST_SECONDS)
            app_limit = _limit(REPLICA_CPU, 2)
            one, steps1 = _ceiling(spec, tmp, 1, START_RPS)
            # two replicas hold at least what one does: start there, not at the bottom again
            two, steps2 = _ceiling(spec, tmp, 2, max(START_RPS, one))
    except (GovcloudError, RuntimeError, OSError) as exc:
        return Result(name, {"error": str(exc)}, {"ran": False})
    finally:
        try:
            _restore()
            if app_limit:
                _limit(app_limit, 2)
        except RuntimeError as exc:  # said, not hidden: the bench's figures stand regardless
            print(
                f"warning: the hall's autoscaler bounds or CPU limit were not restored: {exc}",
                file=sys.stderr,
            )
    ms = cost["hall_ms_per_request"]
    predicted = held_rate(2, float(parse_quantity(REPLICA_CPU)), ms, P95_MS)
    figures: dict[str, float | int | str] = {
        "hall_ms_per_request": ms,
        "baseline_ms_per_request": BASELINE_MS,
        "ratio_to_baseline": round(ms / BASELINE_MS, 2),
        "cost_run": json.dumps(cost),
        "replica_cpu": REPLICA_CPU,
        "held_rps_1_replica": one,
        "held_rps_2_replicas": two,
        "scaling_2_over_1": round(two / one, 2) if one else 0,
        "predicted_rps_2_replicas": round(predicted, 1),
        "prediction_error": round(abs(predicted - two) / two, 2) if two else "n/a",
        "steps": json.dumps([*steps1, *steps2]),
    }
    return Result(
        name,
        figures,
        {
            f"hall CPU per request <= half of {BASELINE_MS} ms": ms <= BASELINE_MS / 2,
            "2 replicas hold >= 1.7x what 1 holds": bool(one) and two >= 1.7 * one,
            "the capacity plan's prediction for 2 replicas within 25 %": bool(two)
            and abs(predicted - two) <= 0.25 * two,
        },
    )


def run() -> Result:
    return run_bench()


if __name__ == "__main__":
    r = run_bench()
    print(json.dumps({"name": r.name, **r.figures, "checks": r.checks}, indent=1))
