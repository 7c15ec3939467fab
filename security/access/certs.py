"""A person's SSH key and the short-lived certificate OpenBao's SSH CA signs for it.

The key pair is made once per person (ed25519, private key 0600 under ``state/secrets``); the
certificate carries the principal of the person's group, ``permit-pty`` and
``permit-port-forwarding`` (the bastion hop), and lives ``ssh_cert_ttl_minutes``.
"""

from __future__ import annotations

import base64
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from govcloud.errors import InputError
from security.identity.plan import SSH_USER_MOUNT, IdentityPlan
from security.openbao.client import Bao
from security.openbao.cluster import Paths, private_dirs


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path

    @property
    def certificate(self) -> Path:
        return self.private.with_name(self.private.name + "-cert.pub")


def key_pair(user: str, paths: Paths) -> KeyPair:
    """The person's ed25519 key pair, made on first use."""
    directory = paths.users / user
    pair = KeyPair(directory / "id_ed25519", directory / "id_ed25519.pub")
    if pair.private.is_file() and pair.public.is_file():
        return pair
    private_dirs(directory)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    fd = os.open(pair.private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    pair.public.write_bytes(pub + f" {user}@govcloud\n".encode())
    return pair


@dataclass(frozen=True)
class Grant:
    """What a person may sign: the SSH role, the principal it puts in the certificate."""

    role: str
    principal: str


def grants(plan: IdentityPlan, user: str) -> list[Grant]:
    person = plan.users.get(user)
    if person is None:
        raise InputError(f"{user} is not an identity of this spec (see `govcloud identity plan`)")
    return [
        Grant(r.name, r.principal) for r in plan.ssh_roles.values() if r.principal in person.groups
    ]


def account_for(plan: IdentityPlan, host: str, grant: Grant) -> str | None:
    """The account on ``host`` that accepts the grant's principal."""
    for account, principals in plan.host_accounts.get(host, {}).items():
        if grant.principal in principals:
            return account
    return None


def choose(plan: IdentityPlan, user: str, host: str) -> tuple[Grant, str]:
    found = grants(plan, user)
    if not found:
        raise InputError(f"{user} belongs to no group that may log in to hosts over SSH")
    for grant in found:
        account = account_for(plan, host, grant)
        if account:
            return grant, account
    raise InputError(
        f"{user} may not log in to {host}: none of the principals "
        f"{', '.join(g.principal for g in found)} is accepted there"
    )


def _strings(blob: bytes, count: int) -> list[bytes]:
    out, off = [], 0
    for _ in range(count):
        (n,) = struct.unpack(">I", blob[off : off + 4])
        out.append(blob[off + 4 : off + 4 + n])
        off += 4 + n
    return out


def same_key(cert_path: Path, pub_path: Path) -> bool:
    """The ed25519 certificate certifies the key in ``pub_path``."""
    try:
        cert = base64.b64decode(cert_path.read_text().split()[1])
        pub = base64.b64decode(pub_path.read_text().split()[1])
        return _strings(cert, 3)[2] == _strings(pub, 2)[1]
    except (OSError, IndexError, ValueError, struct.error):
        return False


def cert_validity(path: Path) -> tuple[float, float]:
    """(valid after, valid before), epoch seconds, of an OpenSSH certificate file; (0, 0) when
    unreadable or not ed25519."""
    try:
        blob = base64.b64decode(path.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0
    # string type, string nonce, then the public key fields: ed25519 has one string
    off = 0

    def string() -> bytes:
        nonlocal off
        (n,) = struct.unpack(">I", blob[off : off + 4])
        off += 4
        out = blob[off : off + n]
        off += n
        return out

    try:
        kind = string()
        if not kind.startswith(b"ssh-ed25519-cert"):
            return 0.0, 0.0
        string()  # nonce
        string()  # pk
        off += 8 + 4  # serial, type
        string()  # key id
        string()  # valid principals
        after, before = struct.unpack(">QQ", blob[off : off + 16])
    except struct.error:
        return 0.0, 0.0
    return float(after), float(before)


def cert_valid_before(path: Path) -> float:
    """Expiry (epoch seconds) of an OpenSSH certificate file, 0 when unreadable."""
    return cert_validity(path)[1]


def usable(pair: KeyPair, grant: Grant, margin: float = 60) -> bool:
    """The stored certificate is for this grant and valid ``margin`` seconds more."""
    if cert_valid_before(pair.certificate) - time.time() <= margin:
        return False
    return grant.principal in _principals(pair.certificate)


def sign(
    bao: Bao,
    pair: KeyPair,
    grant: Grant,
    *,
    ttl: str | None = None,
    reuse: bool = True,
) -> Path:
    """The certificate for the grant: the current one if it still has a minute, else a new
    signature from the SSH CA."""
    if reuse and usable(pair, grant):
        return pair.certificate
    extra = {"ttl": ttl} if ttl else {}
    cert = bao.sign_ssh_key(
        grant.role,
        pair.public.read_text().strip(),
        mount_point=SSH_USER_MOUNT,
        valid_principals=grant.principal,
        cert_type="user",
        **extra,
    )
    pair.certificate.write_text(cert + "\n")
    return pair.certificate


def _principals(path: Path) -> list[str]:
    try:
        blob = base64.b64decode(path.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return []
    off = 0

    def string() -> bytes:
        nonlocal off
        (n,) = struct.unpack(">I", blob[off : off + 4])
        off += 4
        out = blob[off : off + n]
        off += n
        return out

    string()
    string()
    string()
    off += 12
    string()
    packed = string()
    names, poff = [], 0
    while poff < len(packed):
        (n,) = struct.unpack(">I", packed[poff : poff + 4])
        names.append(packed[poff + 4 : poff + 4 + n].decode())
        poff += 4 + n
    return names
