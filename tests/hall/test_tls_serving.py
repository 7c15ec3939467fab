"""The hall serves HTTPS itself (HALL_TLS_CERT, HALL_TLS_KEY): the edge forwards citizens into the
cloud over TLS and verifies the pods' certificate by the service's name. A real hall process over
a local PostgreSQL, reached with Python's TLS client and OpenSSL's.

The certificates come from a throwaway CA made here, not from the PKI: the hall only needs a
chain its client trusts, and this keeps the test off OpenBao.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from clusters.apps.hall.app import Config
from clusters.apps.hall.devserver import LocalPostgres, free_port, hall_env
from govcloud.toolchain import pki as files

pytestmark = pytest.mark.integration

NAME = "hall.dsjj.govcloud.local"


CA = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


def _pem_pair(ca: CA, name: str) -> tuple[str, str]:
    key, cert = files.issue(*ca, files.CertRequest("hall", name, dns_names=(name,), server=True))
    return files.cert_pem(cert).decode(), files.key_pem(key).decode()


@dataclass
class TlsHall:
    port: int
    ca_file: Path
    proc: subprocess.Popen[bytes]

    def context(self, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx


@pytest.fixture(scope="module")
def tls_hall(pg: LocalPostgres, seeded: dict[str, int], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[TlsHall]:  # fmt: skip
    ca = files.make_ca("test root")
    cert, key = _pem_pair(ca, NAME)
    ca_file = tmp_path_factory.mktemp("hall-tls") / "ca.crt"
    ca_file.write_bytes(files.cert_pem(ca[1]))
    port = free_port()
    env = hall_env(
        pg.dsn, port, secrets.token_urlsafe(16), HALL_TLS_CERT=cert, HALL_TLS_KEY=key,
        HALL_ACCESS_LOG=str(pg.root / f"access-{port}.jsonl"),
    )  # fmt: skip
    log = pg.root / f"hall-tls-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "clusters.apps.hall", "serve"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    hall = TlsHall(port, ca_file, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-800:]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield hall
    finally:
        proc.terminate()
        proc.wait(10)


def _get(hall: TlsHall, path: str, ctx: ssl.SSLContext) -> int:
    """GET over TLS to loopback, the certificate verified for the service's name."""
    with (
        socket.create_connection(("127.0.0.1", hall.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode())
        head = tls.recv(64).decode("latin-1")
    return int(head.split()[1])


def test_the_hall_serves_https_that_verifies_for_its_service_name(tls_hall: TlsHall) -> None:
    assert _get(tls_hall, "/readyz", tls_hall.context()) == 200
    assert _get(tls_hall, "/api/sites", tls_hall.context(ssl.TLSVersion.TLSv1_2)) == 200


def test_the_hall_refuses_plain_http_and_old_tls(tls_hall: TlsHall) -> None:
    with socket.create_connection(("127.0.0.1", tls_hall.port), timeout=5) as raw:
        raw.sendall(b"GET /readyz HTTP/1.1\r\nHost: hall\r\n\r\n")
        raw.settimeout(5)
        try:
            answer = raw.recv(100)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/"), answer
    old = tls_hall.context(ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _get(tls_hall, "/readyz", old)
    other = ssl.create_default_context(cafile=str(tls_hall.ca_file))
    with (  # another name than the service's
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", tls_hall.port), timeout=5) as raw,
        other.wrap_socket(raw, server_hostname="other.dsjj.govcloud.local"),
    ):
        pass


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HALL_TLS_CERT": "x"}, "HALL_TLS_KEY"),
        ({"HALL_TLS_KEY": "x"}, "HALL_TLS_CERT"),
        ({"HALL_TLS_CERT": "not a certificate", "HALL_TLS_KEY": "x"}, "HALL_TLS_CERT"),
        ("mismatched", "HALL_TLS_KEY"),
    ],
)
def test_a_half_or_wrong_tls_setting_is_refused_naming_the_variable(
    env: dict[str, str] | str, named: str
) -> None:
    if env == "mismatched":
        ca = files.make_ca("test root")
        cert, _ = _pem_pair(ca, NAME)
        _, key = _pem_pair(ca, NAME)
        env = {"HALL_TLS_CERT": cert, "HALL_TLS_KEY": key}
    assert isinstance(env, dict)
    with pytest.raises(ValueError, match=named):
        Config.from_env(env)


@pytest.mark.unit
def test_without_tls_settings_the_hall_serves_plain_http() -> None:
    assert Config.from_env({}).server_ssl is None
