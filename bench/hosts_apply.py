"""`hosts apply` on a lab of its own: the first run on fresh hosts and the idempotent run, with
SSH multiplexing and pipelining (the default) and with Ansible's own defaults.

Bound (issue: host configuration): the idempotent run takes at most a third of the first. The
idempotent run leaves converged hosts alone after one fingerprinting command each (role
``converged``); for comparison the bench also times an idempotent run with ``--full`` (every
role on every host) and the least any run costs: one ``ansible.builtin.ping`` per host through
the bastion. The bench lab is the lab spec under another name and other addresses, so it runs
beside the main lab; it is removed at the end.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import Result
from govcloud.spec import parse
from govcloud.spec.generate import generate
from infra.hosts.apply import apply, lab_credentials, prepare
from infra.hosts.runner import run_playbook
from infra.lab.from_plan import plan_topology
from infra.lab.lab import down, up

NAME = "hbench"


def _spec(tmp: Path) -> Path:
    raw = generate("lab")
    raw["name"] = NAME
    raw["network"]["supernets"] = {
        "extranet": "10.64.0.0/10",
        "datacenter": "10.127.0.0/16",
        "intranet": "192.168.0.0/16",
    }
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


REACH = """\
- name: Every host answers
  hosts: all
  gather_facts: false
  tasks:
    - name: One module run on the host
      ansible.builtin.ping:
"""


def _cycle(spec_path: Path, tuned: bool) -> tuple[float, float, int, list[str], float, float]:
    """First and idempotent run on fresh hosts: seconds, changes on the second run, the
    hosts that failed (reported, not raised: Ansible's defaults may not get through), the
    seconds of a run that only reaches every host, and of an idempotent run with ``--full``
    (every role on every host, as before hosts were left alone)."""
    spec = parse(yaml.safe_load(spec_path.read_text(encoding="utf-8")))
    topo = plan_topology(spec)
    down(NAME)
    up(topo)
    target = prepare(spec, lab_credentials(), tuned=tuned)
    start = time.perf_counter()
    first = apply(target)
    t_first = time.perf_counter() - start
    start = time.perf_counter()
    second = apply(target)
    t_second = time.perf_counter() - start
    start = time.perf_counter()
    full = apply(target, full=True)
    t_full = time.perf_counter() - start
    runs = first.failures + second.failures + full.failures
    failed = sorted({f"{f.host}: {f.message}" for f in runs})
    reach = spec_path.parent / "reach.yml"
    reach.write_text(REACH, encoding="utf-8")
    start = time.perf_counter()
    pinged = run_playbook(str(reach), target.inventory, target.connection)  # absolute path
    t_reach = time.perf_counter() - start
    failed += [f"{f.host}: {f.message}" for f in pinged.failures]
    return t_first, t_second, second.changed + full.changed, failed, t_reach, t_full


def run() -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GOVCLOUD_STATE"] = str(Path(tmp, "state"))
        spec = _spec(Path(tmp))
        try:
            tuned = _cycle(spec, tuned=True)
            plain = _cycle(spec, tuned=False)
        finally:
            down(NAME)
            os.environ.pop("GOVCLOUD_STATE", None)
    return Result(
        "hosts apply (lab spec, 14 hosts)",
        {
            "first_tuned_s": round(tuned[0], 1),
            "idempotent_tuned_s": round(tuned[1], 1),
            "first_defaults_s": round(plain[0], 1),
            "idempotent_defaults_s": round(plain[1], 1),
            "idempotent_over_first": round(tuned[1] / tuned[0], 2),
            "idempotent_full_s": round(tuned[5], 1),
            "reach_every_host_s": round(tuned[4], 1),
            "first_minus_idempotent_s": round(tuned[0] - tuned[1], 1),
            "tuned_over_defaults_first": round(tuned[0] / plain[0], 2),
            "tuned_over_defaults_idempotent": round(tuned[1] / plain[1], 2),
            "changed_on_idempotent_runs": tuned[2],
            "failed_tuned": "; ".join(tuned[3][:3]),
            "failed_defaults": "; ".join(plain[3][:3]),
        },
        {
            "every host converges with the project's settings": not tuned[3],
            "idempotent run at most a third of the first": tuned[1] <= tuned[0] / 3,
            "idempotent runs change nothing": tuned[2] == 0,
        },
    )
