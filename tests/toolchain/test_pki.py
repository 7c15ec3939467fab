"""Certificates made here: chains, names, usages, file modes, reuse and reissue."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from govcloud.toolchain import pki

pytestmark = pytest.mark.unit

SERVER = pki.CertRequest(
    "srv",
    "kube-apiserver",
    dns_names=("localhost", "kubernetes"),
    ip_addresses=("127.0.0.1",),
    server=True,
)
CLIENT = pki.CertRequest("adm", "govcloud-admin", organizations=("system:masters",), client=True)


def test_leaf_is_signed_by_the_ca_with_names_and_usages() -> None:
    ca_key, ca = pki.make_ca("test-ca")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    _, srv = pki.issue(ca_key, ca, SERVER)
    srv.verify_directly_issued_by(ca)
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "kubernetes"}
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = srv.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not srv.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_client_cert_carries_user_and_group() -> None:
    ca_key, ca = pki.make_ca("test-ca")
    _, c = pki.issue(ca_key, ca, CLIENT)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "govcloud-admin"
    assert c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_certificate_for_nothing_is_refused() -> None:
    ca_key, ca = pki.make_ca("test-ca")
    with pytest.raises(ValueError, match="neither server nor client"):
        pki.issue(ca_key, ca, pki.CertRequest("x", "x"))


def test_files_are_private_reused_and_loadable_by_ssl(tmp_path: Path) -> None:
    ca_key, ca = pki.ensure_ca(tmp_path, "test-ca")
    crt, key = pki.ensure_cert(tmp_path, ca_key, ca, SERVER)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    ctx.load_cert_chain(str(crt), str(key))  # raises if the key does not match
    serial = pki.load_cert(crt).serial_number
    # Same request, same CA: kept.
    ca_key2, ca2 = pki.ensure_ca(tmp_path, "test-ca")
    assert ca2.serial_number == ca.serial_number
    pki.ensure_cert(tmp_path, ca_key2, ca2, SERVER)
    assert pki.load_cert(crt).serial_number == serial
    # Different names: issued again.
    wider = pki.CertRequest(
        "srv",
        "kube-apiserver",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1", "10.96.0.1"),
        server=True,
    )
    pki.ensure_cert(tmp_path, ca_key2, ca2, wider)
    assert pki.load_cert(crt).serial_number != serial


def test_a_cert_from_another_ca_is_replaced(tmp_path: Path) -> None:
    other = tmp_path / "other"
    k1, c1 = pki.ensure_ca(other, "other-ca")
    crt, _ = pki.ensure_cert(other, k1, c1, CLIENT)
    mine = tmp_path / "mine"
    k2, c2 = pki.ensure_ca(mine, "mine-ca")
    mine.joinpath("adm.crt").write_bytes(crt.read_bytes())
    mine.joinpath("adm.key").write_bytes((other / "adm.key").read_bytes())
    new_crt, _ = pki.ensure_cert(mine, k2, c2, CLIENT)
    pki.load_cert(new_crt).verify_directly_issued_by(c2)


def test_signing_key_pair(tmp_path: Path) -> None:
    pub, key = pki.ensure_signing_key(tmp_path, "service-account")
    assert b"BEGIN PUBLIC KEY" in pub.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    pki.ensure_signing_key(tmp_path, "service-account")
    assert key.read_bytes() == before
