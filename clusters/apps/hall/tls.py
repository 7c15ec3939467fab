"""The hall's own HTTPS: what the edge forwards to it crosses from the internet-access zone into
the cloud, so the pods serve TLS with a certificate from the cloud's PKI, which the edge verifies.

The certificate (its chain after it) and its key come as PEM in ``HALL_TLS_CERT`` and
``HALL_TLS_KEY`` (the app's Secret, from OpenBao). The key is handed to OpenSSL through an
anonymous in-memory file: it is never written to a filesystem (the pods' root is read-only).
TLS 1.2 and 1.3 only, forward-secret AEAD suites for TLS 1.2 (Mozilla's intermediate profile).
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator

CIPHERS_TLS12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


@contextlib.contextmanager
def _memory_file(name: str, data: str) -> Iterator[str]:
    """A path OpenSSL can open that names ``data`` in memory only (memfd)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, data.encode())
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def server_tls_context(cert_pem: str, key_pem: str) -> ssl.SSLContext | None:
    """The hall's server context, or None when neither variable is set (plain HTTP: a hall on
    loopback in development). One without the other, or values OpenSSL cannot read, is an
    error naming the variable."""
    cert_pem, key_pem = cert_pem.strip(), key_pem.strip()
    if not cert_pem and not key_pem:
        return None
    if not cert_pem or not key_pem:
        missing = "HALL_TLS_KEY" if cert_pem else "HALL_TLS_CERT"
        raise ValueError(f"{missing}: required with the other (a PEM certificate and its key)")
    if "BEGIN CERTIFICATE" not in cert_pem:
        raise ValueError("HALL_TLS_CERT: expected PEM certificates (the chain after the leaf)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS_TLS12)
    try:
        with _memory_file("hall-cert", cert_pem) as cert, _memory_file("hall-key", key_pem) as key:
            ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"HALL_TLS_KEY: not the key of the certificate in HALL_TLS_CERT, or unreadable ({exc})"
        ) from None
    return ctx
