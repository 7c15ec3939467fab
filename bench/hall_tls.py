"""What serving HTTPS costs the hall's pods (issue 17, the edge's leg into the cloud): CPU per
request of the hall process with TLS against without, in one run.

The edge forwards to the pods over TLS and keeps its upstream connections alive (nginx
``keepalive``), so the pods pay the record encryption of every request and a handshake only
now and then. Two halls run side by side over one local PostgreSQL seeded with the lab's
catalog, on the hall's own event loop (uvloop): one plain, one with ``HALL_TLS_CERT`` and
``HALL_TLS_KEY`` (a certificate from a CA made here). A client in this process sends the same
requests to each over one kept connection, alternating, best of three rounds: the site list (a
cached read of some kilobytes, as a catalog read) and the health check (a few bytes). A last
round opens a new TLS connection per request (a full handshake each), the case keep-alive
avoids. The figure is the hall process's CPU (``/proc/<pid>/stat``) per request.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable

from bench.common import Result, process_cpu
from clusters.apps.hall.devserver import LocalHall, LocalPostgres
from govcloud.toolchain import pki as files

REQUESTS = 5000
HANDSHAKES = 300
ROUNDS = 3
PATHS = {"sites": "/api/sites", "health": "/healthz"}
NAME = "hall.dsjj.govcloud.local"


def _cpu_per_request(pid: int, send: Callable[[], None], n: int) -> float:
    """CPU µs of process ``pid`` per call of ``send``, best of the rounds."""
    best = float("inf")
    for _ in range(ROUNDS):
        before = process_cpu(pid)
        for _ in range(n):
            send()
        best = min(best, (process_cpu(pid) - before) / n * 1e6)
    return best


def _kept(conn: http.client.HTTPConnection, path: str) -> Callable[[], None]:
    def send() -> None:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, (path, resp.status)

    return send


def _fresh(port: int, ctx: ssl.SSLContext) -> Callable[[], None]:
    def send() -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        conn.request("GET", PATHS["health"], headers={"Connection": "close"})
        conn.getresponse().read()
        conn.close()

    return send


def run() -> Result:
    from clusters.hallseed import seed_plan
    from govcloud.spec import load_spec
    from govcloud.spec.load import LAB_SPEC

    result = Result("hall_tls")
    ca_key, ca = files.make_ca("bench root")
    key, cert = files.issue(
        ca_key, ca, files.CertRequest("hall", NAME, dns_names=(NAME,), server=True)
    )
    tls_env = {
        "HALL_TLS_CERT": files.cert_pem(cert).decode(),
        "HALL_TLS_KEY": files.key_pem(key).decode(),
        "HALL_LOOP": "uvloop",
        "HALL_ACCESS_LOG": "/dev/null",
    }
    ctx = ssl.create_default_context(cadata=files.cert_pem(ca).decode())
    ctx.check_hostname = False  # the name is checked by the edge; here the cost is measured
    pg = LocalPostgres().start()
    halls: list[LocalHall] = []
    try:
        plain = LocalHall(pg, extra_env={"HALL_LOOP": "uvloop", "HALL_ACCESS_LOG": "/dev/null"})
        plain.seed(seed_plan(load_spec(LAB_SPEC)))
        halls = [plain.start(), LocalHall(pg, extra_env=tls_env).start()]
        assert halls[1].proc is not None and halls[0].proc is not None
        conns = {
            "plain": http.client.HTTPConnection("127.0.0.1", halls[0].port, timeout=10),
            "tls": http.client.HTTPSConnection("127.0.0.1", halls[1].port, context=ctx, timeout=10),
        }
        pids = {"plain": halls[0].proc.pid, "tls": halls[1].proc.pid}
        for label, path in PATHS.items():
            for way in ("plain", "tls"):
                _kept(conns[way], path)()  # connected, and the read cache warm
            for way in ("plain", "tls"):
                us = _cpu_per_request(pids[way], _kept(conns[way], path), REQUESTS)
                result.figures[f"{label}_{way}_us"] = round(us, 1)
        handshake = _cpu_per_request(pids["tls"], _fresh(halls[1].port, ctx), HANDSHAKES)
        result.figures["new_tls_connection_us"] = round(handshake, 1)
        for conn in conns.values():
            conn.close()
    finally:
        for hall in halls:
            hall.stop()
        pg.stop()
    f = result.figures
    for label in PATHS:
        plain_us, tls_us = float(f[f"{label}_plain_us"]), float(f[f"{label}_tls_us"])
        f[f"{label}_tls_over_plain"] = round(tls_us / plain_us, 2)
        f[f"{label}_tls_extra_us"] = round(tls_us - plain_us, 1)
        result.checks[f"{label}: the hall's CPU was measured both ways"] = min(plain_us, tls_us) > 0
    f["handshake_over_kept_health"] = round(
        float(f["new_tls_connection_us"]) / float(f["health_tls_us"]), 1
    )
    # on a kept connection TLS is the encryption of a few kilobytes: at most a fifth more CPU
    # for a catalog-sized read of the hall, whose own work is the larger part
    result.checks["sites: TLS on a kept connection costs at most 1.2x plain"] = (
        float(f["sites_tls_over_plain"]) <= 1.2
    )
    result.checks["a new connection (full handshake) costs more than a kept one"] = (
        float(f["handshake_over_kept_health"]) > 1.0
    )
    return result
