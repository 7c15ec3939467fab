"""The offline root of the service PKI: made once, kept out of OpenBao, signs intermediates.

The key is in ``state/secrets/pki/root.key`` (0600, directories 0700), the certificate in
``state/identity/pki/root.crt``: the lab's CA bundle, which clients (browsers at the halls, the
load tests, the database clients, rsyslog) trust. A real deployment moves the key to an offline
machine and brings it back only to sign the next intermediate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from govcloud.errors import OperationError
from govcloud.toolchain import pki as files
from security.pki.plan import ROOT_COMMON_NAME, ROOT_DAYS


@dataclass(frozen=True)
class RootPaths:
    key: Path
    cert: Path

    @classmethod
    def under(cls, state: Path) -> RootPaths:
        """The root's files in a state directory (``Paths.root``)."""
        return cls(state / "secrets" / "pki" / "root.key", state / "identity" / "pki" / "root.crt")

    @classmethod
    def default(cls) -> RootPaths:
        """The root's files in the state directory (what clients of the lab trust)."""
        from govcloud.paths import state_dir

        return cls.under(state_dir())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_root(
    common_name: str = ROOT_COMMON_NAME, days: int = ROOT_DAYS
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed root that may have one tier of intermediates below it (P-384)."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govcloud"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(files.ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return key, cert


def ensure_root(paths: RootPaths) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The root, made on first use and kept; a root whose key and certificate do not belong
    together is refused rather than replaced (every certificate below it would be orphaned)."""
    if paths.key.exists() and paths.cert.exists():
        key = files.load_key(paths.key)
        cert = files.load_cert(paths.cert)
        if cert.public_key() != key.public_key():
            raise OperationError(
                f"{paths.cert} does not belong to the key in {paths.key}: restore the pair "
                "(every service certificate chains to it)"
            )
        return key, cert
    if paths.key.exists() or paths.cert.exists():
        raise OperationError(
            f"half a PKI root in state: {paths.key} and {paths.cert} must both exist or "
            "neither (restore the missing one)"
        )
    key, cert = make_root()
    paths.key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.key.parent.chmod(0o700)
    files.write_private(paths.key, files.key_pem(key))
    files.write_public(paths.cert, files.cert_pem(cert))
    return key, cert


def sign_intermediate(
    csr_pem: str,
    root_key: ec.EllipticCurvePrivateKey,
    root_cert: x509.Certificate,
    *,
    hours: int,
    permitted_domains: tuple[str, ...] = (),
    permitted_networks: tuple[str, ...] = (),
) -> x509.Certificate:
    """Sign OpenBao's intermediate CSR: a CA that may sign leaves only (path length 0), for
    ``hours``, constrained to the permitted names and networks when given."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    if not csr.is_signature_valid:
        raise OperationError("the intermediate CSR's signature does not verify")
    now = _now()
    not_after = min(now + dt.timedelta(hours=hours), root_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(root_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(files.ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
    )
    if permitted_domains or permitted_networks:
        subtrees: list[x509.GeneralName] = [x509.DNSName(d) for d in permitted_domains]
        subtrees += [x509.IPAddress(ipaddress.ip_network(n)) for n in permitted_networks]
        builder = builder.add_extension(
            x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None),
            critical=True,
        )
    return builder.sign(root_key, hashes.SHA384())


def constraints_of(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """``(domains, networks)`` an intermediate is constrained to (empty: none)."""
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return set(), set()
    trees = nc.permitted_subtrees or []
    domains = {t.value for t in trees if isinstance(t, x509.DNSName)}
    nets = {str(t.value) for t in trees if isinstance(t, x509.IPAddress)}
    return domains, nets
