"""A self-made CA and the certificates of a local control plane (ECDSA P-256, PEM files).

Keys are written mode 0600. Everything is kept and reused; a certificate that expires within
:data:`RENEW_BEFORE` or no longer matches what is asked for is issued again.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertRequest:
    """What one leaf certificate says: who it is (CN, O) and, for servers, where (SANs)."""

    name: str  # file stem: <name>.crt, <name>.key
    common_name: str
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    server: bool = False
    client: bool = False


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ca_key_usage() -> x509.KeyUsage:
    """What a CA's key is for: signing certificates and revocation lists (and its own OCSP)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    common_name: str, key: ec.EllipticCurvePrivateKey | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = key or new_key()
    now = _now()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    req: CertRequest,
    key: ec.EllipticCurvePrivateKey | None = None,
    days: int = LEAF_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    if not (req.server or req.client):
        raise ValueError(f"certificate {req.name}: neither server nor client")
    key = key or new_key()
    now = _now()
    usages = []
    if req.server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if req.client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(req.common_name, req.organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in req.dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in req.ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


# --- files -------------------------------------------------------------------------------------


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner alone (created 0600, never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an EC private key")
    return key


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _matches(cert: x509.Certificate, req: CertRequest) -> bool:
    if cert.subject != _name(req.common_name, req.organizations):
        return False
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(san.get_values_for_type(x509.DNSName))
        ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        dns, ips = set(), set()
    return dns == set(req.dns_names) and ips == set(req.ip_addresses)


def ensure_ca(
    directory: Path, common_name: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_path, crt_path = directory / "ca.key", directory / "ca.crt"
    if key_path.exists() and crt_path.exists():
        cert = load_cert(crt_path)
        if cert.not_valid_after_utc - _now() >= RENEW_BEFORE:
            return load_key(key_path), cert
    key, cert = make_ca(common_name)
    write_private(key_path, key_pem(key))
    write_public(crt_path, cert_pem(cert))
    return key, cert


def ensure_cert(
    directory: Path,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    req: CertRequest,
) -> tuple[Path, Path]:
    """``(cert_path, key_path)`` of a certificate for ``req``, issued if missing or stale."""
    crt_path, key_path = directory / f"{req.name}.crt", directory / f"{req.name}.key"
    if crt_path.exists() and key_path.exists():
        cert = load_cert(crt_path)
        if cert.issuer == ca_cert.subject and _matches(cert, req):
            try:
                cert.verify_directly_issued_by(ca_cert)
                return crt_path, key_path
            except (ValueError, TypeError, InvalidSignature):
                pass
    key, cert = issue(ca_key, ca_cert, req)
    write_private(key_path, key_pem(key))
    write_public(crt_path, cert_pem(cert))
    return crt_path, key_path


def ensure_signing_key(directory: Path, name: str) -> tuple[Path, Path]:
    """A key pair for signing tokens (service accounts): ``(<name>.pub, <name>.key)``."""
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    if not key_path.exists() or not pub_path.exists():
        key = new_key()
        write_private(key_path, key_pem(key))
        pub = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        write_public(pub_path, pub)
    return pub_path, key_path
