"""`govcloud net verify`: real packets inside the lab against the planned policy.

For every check of the matrix (:mod:`infra.network.matrix`) the source container opens a TCP
connection (or pings) and reports what happened; destination containers run a throw-away
listener on every probed port so that "open" can only mean the packet got through. Sources run
in parallel, each with many connections at once, so the whole matrix takes seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from govcloud.errors import OperationError
from infra.lab.lab import Lab
from infra.lab.topology import Topology
from infra.network.matrix import Check, Endpoint, build_checks
from infra.network.policy import EDGE_FLOW_PREFIX, Rule

LISTENER_TAG = "govcloud-netverify-listener"

# Runs inside a destination: listen on the given TCP ports (those already taken are served by
# their own daemon), accept and close, exit after the given number of seconds.
_LISTENER = """
import socket, sys, threading, time
tag, life, ports = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
def serve(s):
    while True:
        try:
            c, _ = s.accept(); c.close()
        except OSError:
            return
for p in ports:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", p)); s.listen(64)
    except OSError:
        continue
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
time.sleep(life)
"""

# Runs inside a source: every check at once, one JSON line of results.
_PROBE = """
import json, socket, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
checks, wait = json.load(sys.stdin), float(sys.argv[1])
def tcp(c):
    s = socket.socket(); s.settimeout(wait)
    try:
        s.connect((c["addr"], c["port"])); return "open"
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return "unreachable" if e.errno in (101, 113) else "error %d" % e.errno
    finally:
        s.close()
def icmp(c):
    r = subprocess.run(["ping", "-c1", "-W", str(max(1, int(wait))), c["addr"]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "open" if r.returncode == 0 else "timeout"
def one(c):
    return tcp(c) if c["proto"] == "tcp" else icmp(c)
with ThreadPoolExecutor(48) as ex:
    print(json.dumps(list(ex.map(one, checks))))
"""


@dataclass(frozen=True)
class Outcome:
    check: Check
    observed: str  # open, refused, timeout, unreachable, error N

    @property
    def opened(self) -> bool:
        return self.observed == "open"

    @property
    def ok(self) -> bool:
        return self.opened == self.check.expect_open


def endpoints(topo: Topology) -> dict[str, Endpoint]:
    zone_of = {b.name: b.zone for b in topo.bridges}
    return {
        h.name: Endpoint(
            h.name, h.interfaces[0].address.split("/")[0], h.role, zone_of[h.interfaces[0].bridge]
        )
        for h in topo.hosts
    }


def choose(topo: Topology) -> tuple[list[Endpoint], list[Endpoint]]:
    """Sources: every probe, the bastion, one other host per zone without a probe, the intranet
    host. Targets: every host that is not a probe."""
    eps = endpoints(topo)
    sources: dict[str, Endpoint] = {}
    probed_zones = {e.zone for e in eps.values() if e.role == "probe"}
    for e in eps.values():
        if e.role in ("probe", "bastion", "intranet"):
            sources[e.name] = e
    for e in eps.values():
        covered = e.zone in probed_zones or any(
            s.zone == e.zone and s.role != "bastion" for s in sources.values()
        )
        if e.role not in ("probe", "router", "bastion") and not covered:
            sources[e.name] = e
    targets = [e for e in eps.values() if e.role != "probe"]
    return list(sources.values()), targets


def verify(
    lab_name: str,
    topo: Topology,
    rules: list[Rule],
    *,
    wait: float = 1.5,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Outcome]:
    sources, targets = choose(topo)
    # a tenant's edge port is the cluster's own data path (kube-proxy's NodePort, traffic policy
    # Local: only a node with a pod of the app answers), not a port a host's listener can hold;
    # the hall's lab tests prove that path end to end, from the hall LANs through the edge
    rules = [r for r in rules if not (r.origin == "tenant" and r.name.startswith(EDGE_FLOW_PREFIX))]
    checks = build_checks(rules, sources, targets)
    lab = Lab(lab_name)
    ports: dict[str, set[int]] = {}
    for c in checks:
        if c.proto == "tcp":
            ports.setdefault(c.dst, set()).add(c.port)
    life = 30 + wait * 10

    def listen(host: str) -> None:
        argv = ["python3", "-c", _LISTENER, LISTENER_TAG, str(life), *map(str, sorted(ports[host]))]
        proc = lab.exec(
            host,
            ["sh", "-c", " ".join(_quote(a) for a in argv) + " > /run/netverify.out 2>&1 &"],
            timeout=20,
            check=False,
        )
        if proc.returncode != 0:
            raise OperationError(f"{host}: cannot start the probe listener: {proc.stderr}")

    def probe(
        source: str, only: list[Check] | None = None, patience: float = wait
    ) -> list[Outcome]:
        mine = [c for c in (checks if only is None else only) if c.src == source]
        payload = json.dumps(
            [{"addr": c.dst_address, "port": c.port, "proto": c.proto} for c in mine]
        )
        proc = lab.exec(
            source,
            ["python3", "-c", _PROBE, str(patience)],
            input=payload,
            timeout=60 + patience * len(mine) / 40,
            check=False,
        )
        if proc.returncode != 0:
            raise OperationError(f"{source}: the probe failed: {proc.stderr.strip()[-400:]}")
        observed = json.loads(proc.stdout.strip().splitlines()[-1])
        return [Outcome(c, o) for c, o in zip(mine, observed, strict=True)]

    progress(f"starting listeners on {len(ports)} hosts")
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(listen, sorted(ports)))
    _wait_ready(lab, sorted(ports))
    progress(f"probing {len(checks)} flows from {len(sources)} sources")
    try:
        with ThreadPoolExecutor(8) as ex:
            results = [o for chunk in ex.map(probe, [s.name for s in sources]) for o in chunk]
        # a mismatch is confirmed alone and with more patience: a daemon serving a probed port
        # (rsyslog on 514) may be slow to accept, or drop a burst beyond its backlog
        wrong = [o.check for o in results if not o.ok]
        if wrong:
            progress(f"probing {len(wrong)} mismatches again, one source at a time")
            again = {
                o.check: o
                for src in sorted({c.src for c in wrong})
                for o in probe(src, wrong, patience=wait * 4)
            }
            results = [again.get(o.check, o) for o in results]
    finally:
        with ThreadPoolExecutor(8) as ex:
            list(
                ex.map(
                    lambda h: lab.exec(h, ["pkill", "-f", LISTENER_TAG], check=False), sorted(ports)
                )
            )
    return results


def _wait_ready(lab: Lab, hosts: list[str]) -> None:
    import time

    deadline = time.monotonic() + 20
    pending = set(hosts)
    while pending and time.monotonic() < deadline:
        for h in sorted(pending):
            out = lab.exec(h, ["cat", "/run/netverify.out"], check=False).stdout
            if "ready" in out:
                pending.discard(h)
        if pending:
            time.sleep(0.2)
    if pending:
        raise OperationError(f"probe listeners did not start on: {', '.join(sorted(pending))}")


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"
