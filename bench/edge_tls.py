"""What HTTPS costs the hall's edge: nginx's CPU per request with TLS against plain HTTP in the
same run, and full handshakes per second per core.

A real nginx on loopback serves as the edge, with the TLS settings the hall play installs (the
tls_cert role's snippet, rendered as the play renders it) and a certificate of the PKI's kind
(ECDSA P-256 below an intermediate), proxying with keep-alive to a second nginx that stands in
for the hall (a fixed 1 KiB JSON answer), so that the edge's own work is all that differs. Only
the edge's CPU counts (its one worker's utime + stime from /proc), not the clients'.

- **keep-alive** (a citizen's browser session: one connection, many requests): CPU per request
  over HTTPS against plain HTTP; the ratio is the cost of encryption alone;
- **one connection per request** with a full handshake each (no session reuse): the worst
  case; CPU per request against plain HTTP's keep-alive;
- **handshakes per core**: full handshakes (`openssl s_time -new`) per CPU-second of the edge.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import jinja2

from bench.common import Result, free_ports, process_cpu
from govcloud.toolchain import pki as files
from loadtests.tlsclient import install

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "playbooks" / "roles" / "tls_cert" / "templates" / "nginx-tls.conf.j2"
NAME = "hall-1.zwfw.guizhou.gov.cn"
KEEPALIVE_REQUESTS = int(os.environ.get("BENCH_EDGE_TLS_REQUESTS", "4000"))
NEW_CONN_REQUESTS = int(os.environ.get("BENCH_EDGE_TLS_HANDSHAKES", "1500"))
S_TIME_SECONDS = 6
BODY = '{"items":[' + ",".join(f'{{"code":"{i:06d}","name":"guide"}}' for i in range(30)) + "]}"


def _certificates(where: Path) -> Path:
    """The offline root, an intermediate it signs and the edge's certificate from it, as the
    PKI makes them (security.pki.root); returns the root (what clients trust)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    from security.pki.root import make_root, sign_intermediate

    root_key, root = make_root("bench root")
    mid_key = files.new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench intermediate")]))
        .sign(mid_key, hashes.SHA256())
    )
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    mid = sign_intermediate(csr_pem, root_key, root, hours=720)
    leaf_key, leaf = files.issue(
        mid_key, mid, files.CertRequest("edge", NAME, dns_names=(NAME,), server=True)
    )
    files.write_private(where / f"{NAME}.key", files.key_pem(leaf_key))
    (where / f"{NAME}.fullchain.pem").write_bytes(files.cert_pem(leaf) + files.cert_pem(mid))
    (where / "root.crt").write_bytes(files.cert_pem(root))
    return where / "root.crt"


def _conf(prefix: Path, body: str) -> Path:
    temp = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
        f"events {{ worker_connections 1024; }}\nhttp {{\n    access_log off;\n{temp}{body}}}\n"
    )
    return conf


@contextmanager
def _nginx(prefix: Path, body: str, port: int) -> Iterator[int]:
    """Start nginx with ``body`` in its http block; yields its worker's pid."""
    prefix.mkdir(parents=True)
    conf = _conf(prefix, body)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"nginx did not start: {err}") from None
                time.sleep(0.05)
        yield _worker(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _worker(master: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                return int(entry.name)
    raise RuntimeError("no nginx worker")


def _measure(pid: int, work: Callable[[], int]) -> tuple[float, int, float]:
    """(edge CPU seconds, units of work, wall seconds)."""
    before, start = process_cpu(pid), time.monotonic()
    n = work()
    time.sleep(0.2)  # the worker's last ticks
    return process_cpu(pid) - before, n, time.monotonic() - start


def _keepalive(conn: http.client.HTTPConnection, n: int) -> int:
    for _ in range(n):
        conn.request("GET", "/api/sites/52/items", headers={"Host": NAME})
        resp = conn.getresponse()
        if resp.status != 200 or len(resp.read()) != len(BODY):
            raise RuntimeError(f"edge answered {resp.status}")
    conn.close()
    return n


def _new_connections(port: int, ctx: ssl.SSLContext, n: int) -> int:
    for _ in range(n):
        conn = http.client.HTTPSConnection(NAME, port, context=ctx)
        conn.request("GET", "/api/sites/52/items", headers={"Host": NAME, "Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"edge answered {resp.status}")
    return n


def _s_time(port: int, root: Path) -> int:
    out = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time",
         str(S_TIME_SECONDS), "-CAfile", str(root)],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    m = re.search(r"(\d+) connections in [0-9.]+s", out)
    if not m:
        raise RuntimeError(f"openssl s_time: {out[-300:]}")
    return int(m.group(1))


def run() -> Result:
    result = Result("edge_tls")
    if not shutil.which("nginx"):
        result.checks["nginx installed (apt-get install nginx-light)"] = False
        return result
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        certs = tmp / "certs"
        certs.mkdir()
        root = _certificates(certs)
        snippet = tmp / "tls.conf"
        snippet.write_text(
            jinja2.Environment(undefined=jinja2.StrictUndefined)
            .from_string(SNIPPET.read_text())
            .render(tls_cert_dest_dir=str(certs), tls_cert_name=NAME,
                    tls_cert_nginx_hsts_seconds=63072000)
        )  # fmt: skip
        hall, plain, tls = free_ports(3)
        proxy = (
            "        location / {\n            proxy_pass http://hall;\n"
            "            proxy_http_version 1.1;\n"
            '            proxy_set_header Connection "";\n'
            "            proxy_set_header Host $host;\n        }\n"
        )
        edge = (
            f"    upstream hall {{ server 127.0.0.1:{hall}; keepalive 16; }}\n"
            f"    server {{\n        listen 127.0.0.1:{plain};\n{proxy}    }}\n"
            f"    server {{\n        listen 127.0.0.1:{tls} ssl;\n"
            f"        include {snippet};\n{proxy}    }}\n"
        )
        backend = (
            f"    server {{\n        listen 127.0.0.1:{hall};\n"
            f"        location / {{ default_type application/json; return 200 '{BODY}'; }}\n"
            "    }\n"
        )
        ctx = ssl.create_default_context(cafile=str(root))
        restore = install({NAME: "127.0.0.1"}, None)  # the edge's name, as a load run has it
        with _nginx(tmp / "hall", backend, hall), _nginx(tmp / "edge", edge, tls) as worker:
            n = KEEPALIVE_REQUESTS
            _keepalive(http.client.HTTPConnection("127.0.0.1", plain), 200)  # warm both
            http_cpu, _, http_wall = _measure(
                worker, lambda: _keepalive(http.client.HTTPConnection("127.0.0.1", plain), n)
            )

            def https_keepalive() -> int:  # nginx closes after 1000 requests: a new handshake
                return _keepalive(http.client.HTTPSConnection(NAME, tls, context=ctx), n)

            tls_cpu, _, tls_wall = _measure(worker, https_keepalive)
            new_cpu, new_n, _ = _measure(
                worker, lambda: _new_connections(tls, ctx, NEW_CONN_REQUESTS)
            )
            hs_cpu, handshakes, _ = _measure(worker, lambda: _s_time(tls, root))
        restore()
    per = {
        "http": http_cpu / n * 1e6,
        "https": tls_cpu / n * 1e6,
        "https_new": new_cpu / new_n * 1e6,
    }
    result.figures.update(
        {
            "edge_us_per_request_http_keepalive": round(per["http"], 1),
            "edge_us_per_request_https_keepalive": round(per["https"], 1),
            "edge_us_per_request_https_new_connection": round(per["https_new"], 1),
            "https_over_http_keepalive": round(per["https"] / per["http"], 2),
            "https_new_connection_over_http": round(per["https_new"] / per["http"], 1),
            "full_handshakes_per_core_second": round(handshakes / hs_cpu) if hs_cpu else 0,
            "handshakes_in_s_time": handshakes,
            "requests_per_mode": n,
            "wall_http_s": round(http_wall, 2),
            "wall_https_s": round(tls_wall, 2),
        }
    )
    # keep-alive TLS (a session's usual case) costs the edge at most twice plain HTTP's work;
    # a full handshake per request is what session reuse and keep-alive are there to avoid
    result.checks["keep-alive HTTPS costs the edge at most 2x plain HTTP per request"] = (
        per["https"] <= 2 * per["http"]
    )
    result.checks["a full handshake costs more than a keep-alive request"] = (
        per["https_new"] > per["https"]
    )
    result.checks["the edge's CPU was measured (ticks in every mode)"] = (
        min(http_cpu, tls_cpu, new_cpu, hs_cpu) > 0
    )
    return result
