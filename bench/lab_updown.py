"""`lab up` and `lab down` wall time, with the image cached (needs root and LXC).

Measures the lab spec's topology when the network planner provides one, else a stand-in of the
same size (about 15 containers: a router per five segments' worth, a bastion, hosts). The bounds
come from issue 4: up at most 120 s, down at most 30 s. The baseline, measured in the same run,
is one host alone (clone, boot, wait for systemd), so the ratio shows what the whole lab costs
in single-host boots.

Run: ``python -m bench.lab_updown [--hosts N]`` (``--hosts``: a stand-in of N hosts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.common import Result
from infra.lab.lab import Lab, down, image_cached, status, up
from infra.lab.sample import router_ruleset
from infra.lab.state import LabPaths
from infra.lab.template import ensure_image
from infra.lab.topology import Bridge, Interface, LabHost, Topology

UP_BOUND_S = 120.0
DOWN_BOUND_S = 30.0


def standin_topology(hosts: int = 15, name: str = "gcbench", net: str = "10.253") -> Topology:
    """``hosts`` containers on five segments: one router, one bastion, the rest spread out."""
    segs = ["mgmt", "pub", "dept1", "dept2", "hall"]
    bridges = tuple(
        Bridge(s, f"{net}.{i + 1}.0/24", s, host_address=f"{net}.1.254/24" if i == 0 else None)
        for i, s in enumerate(segs)
    )
    bastion = f"{net}.1.10"
    router = LabHost(
        "r1",
        "router",
        tuple(Interface(s, f"{net}.{i + 1}.1/24") for i, s in enumerate(segs)),
        forwarding=True,
        ruleset=router_ruleset(bastion),
    )
    out = [
        router,
        LabHost("bastion", "bastion", (Interface("mgmt", f"{bastion}/24"),), gateway=f"{net}.1.1"),
    ]
    for k in range(hosts - 2):
        i = 1 + k % (len(segs) - 1)
        seg = segs[i]
        out.append(
            LabHost(
                f"h{k + 1}",
                "hall" if seg == "hall" else "compute",
                (Interface(seg, f"{net}.{i + 1}.{20 + k}/24"),),
                gateway=f"{net}.{i + 1}.1",
                template="hall" if seg == "hall" else "base",
            )
        )
    return Topology(name, bridges, tuple(out))


def _topology(hosts: int | None) -> tuple[Topology, str]:
    if hosts is not None:
        return standin_topology(hosts), f"stand-in ({hosts} hosts)"
    try:
        from govcloud.cli.lab import _planner

        planner = _planner()
        if planner is not None:
            from govcloud.cli.common import read_spec

            return planner(read_spec(None)), "lab spec"
    except Exception as exc:  # the planner is another component: fall back, say why
        print(f"lab spec topology unavailable ({exc}); using the stand-in", file=sys.stderr)
    return standin_topology(15), "stand-in (15 hosts)"


def run(hosts: int | None = None) -> Result:
    """The lab spec's topology (or the 15-host stand-in without a planner); ``hosts``: force a
    stand-in of that size."""
    topo, source = _topology(hosts)
    result = Result("lab_updown")
    result.figures["topology"] = source
    result.figures["containers"] = len(topo.hosts)
    lxc = Lab(topo.name).lxc
    t = time.perf_counter()
    was_cached = image_cached()
    ensure_image(lxc, LabPaths.default().cache)
    result.figures["image"] = (
        "cached" if was_cached else f"built in {time.perf_counter() - t:.0f} s"
    )

    down(topo.name)
    try:
        one = Topology(topo.name, topo.bridges, (topo.hosts[1],))
        t = time.perf_counter()
        up(one)
        baseline = time.perf_counter() - t
        down(topo.name)

        t = time.perf_counter()
        up(topo)
        up_s = time.perf_counter() - t
        healthy = status(topo.name).healthy
        t = time.perf_counter()
        again = up(topo)
        again_s = time.perf_counter() - t
    finally:
        t = time.perf_counter()
        down(topo.name)
        down_s = time.perf_counter() - t

    result.figures.update(
        {
            "baseline_one_host_up_s": round(baseline, 2),
            "up_s": round(up_s, 2),
            "up_vs_one_host": round(up_s / baseline, 2),
            "second_up_s": round(again_s, 2),
            "down_s": round(down_s, 2),
        }
    )
    result.checks = {
        f"up <= {UP_BOUND_S:g} s": up_s <= UP_BOUND_S,
        f"down <= {DOWN_BOUND_S:g} s": down_s <= DOWN_BOUND_S,
        "every host RUNNING and reachable after up": healthy,
        "second up changes nothing": not again.changed,
    }
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hosts", type=int, default=None, help="measure a stand-in of N hosts instead"
    )
    args = parser.parse_args(argv)
    r = run(args.hosts)
    print(
        f"[{'ok' if r.ok else 'FAILED'}] {r.name}: "
        + ", ".join(f"{k}={v}" for k, v in r.figures.items())
    )
    for check, passed in r.checks.items():
        print(f"    {'pass' if passed else 'FAIL'}: {check}")
    print(json.dumps({"name": r.name, **r.figures, "checks": r.checks}, ensure_ascii=False))
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
