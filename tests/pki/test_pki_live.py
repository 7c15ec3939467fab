"""The service PKI on a real OpenBao (dev server on loopback) and an HTTPS endpoint on a real
nginx serving the tls_cert role's snippet, probed with a real TLS client."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509

from govcloud.toolchain import pki as files
from security.compliance.tls import probe, tls_endpoint
from security.openbao.client import BaoInvalid
from security.pki import certs
from security.pki.setup import ensure_pki
from tests.pki.conftest import EDGE_NAME, Nginx, Pki

pytestmark = pytest.mark.integration
GOVCLOUD = [sys.executable, "-m", "govcloud"]


def test_setup_is_idempotent_and_the_intermediate_chains_to_the_offline_root(pki: Pki) -> None:
    assert ensure_pki(pki.bao, pki.plan, pki.root) == []
    issuer = pki.bao.read_pki_issuer(mount_point=pki.plan.mount)
    assert issuer is not None
    inter = x509.load_pem_x509_certificate(str(issuer["certificate"]).encode())
    inter.verify_directly_issued_by(files.load_cert(pki.root.cert))
    assert pki.root.key.stat().st_mode & 0o777 == 0o600


def test_issued_certificates_chain_to_the_root_and_roles_hold(pki: Pki, tmp_path: Path) -> None:
    edge = certs.issue(pki.bao, pki.plan, "edge", [EDGE_NAME, f"5201.{EDGE_NAME}"], tmp_path)
    internal = certs.issue(
        pki.bao, pki.plan, "internal", ["db.hall.govcloud.local"], tmp_path, ip_sans=["10.255.0.9"]
    )
    assert (tmp_path / f"{EDGE_NAME}.key").stat().st_mode & 0o777 == 0o600
    rows = {r.name: r for r in certs.status(tmp_path, [files.load_cert(pki.root.cert)], 0.34)}
    assert rows[EDGE_NAME].chain_ok and rows["db.hall.govcloud.local"].chain_ok
    assert 29.9 < rows[EDGE_NAME].days_left <= 30.0
    assert edge.serial in pki.bao.list_pki_certificates(mount_point=pki.plan.mount)
    assert internal.serial != edge.serial
    # OpenBao itself refuses what the role does not allow (not only govcloud's own check)
    with pytest.raises(BaoInvalid, match="not allowed"):
        pki.bao.issue_pki_certificate("edge", "www.example.gov.cn", mount_point=pki.plan.mount)
    with pytest.raises(BaoInvalid):
        pki.bao.issue_pki_certificate(
            "edge", EDGE_NAME, mount_point=pki.plan.mount, ip_sans="10.0.0.1"
        )


def test_renew_does_nothing_until_due_then_reissues(pki: Pki, tmp_path: Path) -> None:
    first = certs.issue(pki.bao, pki.plan, "edge", [EDGE_NAME], tmp_path, ttl="60s")
    assert [r.due for r in certs.renew(None, pki.plan, tmp_path)] == [False]  # no client needed
    time.sleep(41)  # 0.34 of 60 s left: due
    results = certs.renew(pki.bao, pki.plan, tmp_path)
    assert results[0].due and results[0].renewed is not None
    assert results[0].renewed.serial != first.serial
    assert [r.due for r in certs.renew(None, pki.plan, tmp_path)] == [False]


def _cli(pki: Pki, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        BAO_ADDR=pki.bao.endpoint.url,
        BAO_TOKEN="root",
        GOVCLOUD_STATE=str(pki.state),
    )
    return subprocess.run(
        [*GOVCLOUD, "pki", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_issue_renew_status(pki: Pki, tmp_path: Path) -> None:
    out = _cli(pki, "issue", EDGE_NAME, "--dir", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["role"] == "edge"
    renewed = _cli(pki, "renew", "--dir", str(tmp_path), "--json")
    assert renewed.returncode == 0 and json.loads(renewed.stdout)["results"][0]["due"] is False
    status = _cli(pki, "status", "--dir", str(tmp_path), "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["certificates"][0]["chain_ok"] is True
    bad = _cli(pki, "issue", "www.example.com", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "tls.edge.allowed_domains" in bad.stderr
    # a certificate from another CA in the directory: status exits 1
    other = files.make_ca("stranger")
    _, cert = files.issue(
        *other, files.CertRequest("x", EDGE_NAME, dns_names=(EDGE_NAME,), server=True)
    )
    (tmp_path / f"{EDGE_NAME}.crt").write_bytes(files.cert_pem(cert))
    assert _cli(pki, "status", "--dir", str(tmp_path)).returncode == 1


def test_the_edge_snippet_passes_the_tls_evidence_check(
    pki: Pki, tmp_path: Path, nginx: object
) -> None:
    certs.issue(pki.bao, pki.plan, "edge", [EDGE_NAME], tmp_path / "certs")
    server: Nginx = nginx(tmp_path / "certs", EDGE_NAME)  # type: ignore[operator]
    ev = probe("127.0.0.1", server.https_port, EDGE_NAME, pki.root.cert, http_port=server.http_port)
    assert ev.versions["TLSv1"] is False and ev.versions["TLSv1.1"] is False
    assert ev.versions["TLSv1.2"] and ev.versions["TLSv1.3"]
    assert not ev.untested_versions  # the client really offered TLS 1.0 and 1.1
    assert ev.weak_ciphers_accepted == []
    assert len(ev.ciphers_untested) < 3  # most weak suites were really offered
    assert ev.chain_ok and 29 < ev.days_left <= 30
    assert "max-age=63072000" in ev.hsts
    assert ev.http_status == 301
    assert ev.http_redirect == f"https://{EDGE_NAME}:{server.https_port}/"
    assert ev.problems() == []
    line = tls_endpoint(
        "127.0.0.1", server.https_port, EDGE_NAME, pki.root.cert, http_port=server.http_port
    )
    assert "refuses TLSv1, TLSv1.1" in line
    # another name, or another CA, is not verified
    wrong = probe("127.0.0.1", server.https_port, "other.gov.cn", pki.root.cert)
    assert not wrong.chain_ok and "hostname" in wrong.chain_error.lower()
    stranger = tmp_path / "stranger.crt"
    stranger.write_bytes(files.cert_pem(files.make_ca("stranger")[1]))
    with pytest.raises(AssertionError, match="chain does not verify"):
        tls_endpoint("127.0.0.1", server.https_port, EDGE_NAME, stranger)


def _serial(port: int, ca: Path) -> str:
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=EDGE_NAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der
    return f"{x509.load_der_x509_certificate(der).serial_number:x}"


def test_renewal_swaps_the_served_certificate_without_a_failed_request(
    pki: Pki, tmp_path: Path, nginx: object
) -> None:
    cert_dir = tmp_path / "certs"
    first = certs.issue(pki.bao, pki.plan, "edge", [EDGE_NAME], cert_dir, ttl="60s")
    server: Nginx = nginx(cert_dir, EDGE_NAME)  # type: ignore[operator]
    old = _serial(server.https_port, pki.root.cert)
    assert old == first.serial.replace(":", "").lstrip("0")
    ok, failed, stop = [0], [], threading.Event()
    ctx = ssl.create_default_context(cafile=str(pki.root.cert))

    def client() -> None:  # a new verified TLS connection per request, as many clients do
        while not stop.is_set():
            try:
                with (
                    socket.create_connection(("127.0.0.1", server.https_port), timeout=5) as raw,
                    ctx.wrap_socket(raw, server_hostname=EDGE_NAME) as tls,
                ):
                    tls.sendall(
                        f"GET / HTTP/1.1\r\nHost: {EDGE_NAME}\r\nConnection: close\r\n\r\n".encode()
                    )
                    data = b""
                    while chunk := tls.recv(4096):
                        data += chunk
                if not data.startswith(b"HTTP/1.1 200"):
                    failed.append(data[:80].decode("latin-1"))
                else:
                    ok[0] += 1
            except (OSError, ssl.SSLError) as exc:
                failed.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(41)  # into the last 34 % of the certificate's 60 s
        results = certs.renew(pki.bao, pki.plan, cert_dir)
        assert results[0].renewed is not None
        before_reload = ok[0]
        server.reload()
        new = results[0].renewed.serial.replace(":", "").lstrip("0")
        deadline = time.monotonic() + 10
        while _serial(server.https_port, pki.root.cert) != new:
            assert time.monotonic() < deadline, "nginx still serves the old certificate"
            time.sleep(0.2)
        time.sleep(2)  # requests keep flowing on the new certificate
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert failed == []
    assert before_reload > 20 and ok[0] > before_reload
