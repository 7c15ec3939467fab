"""`govcloud ssh`: log in to OpenBao, get the key signed, connect through the bastion (fabric).

paramiko (so fabric) logs in with the certificate (``key.load_certificate``) and reaches nodes
through ``gateway=Connection(bastion)``. It cannot check host *certificates*, so it checks the
host keys the host CA signed, pinned in ``state/ssh/known_hosts.keys``; an unknown or changed
host key is refused, never learnt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from govcloud.errors import InputError, OperationError
from infra.inventory import InvHost
from security.access import certs
from security.access.ssh_config import Layout, managed
from security.identity.plan import IdentityPlan
from security.identity.session import forget_token, login
from security.openbao.client import BaoForbidden, BaoUnauthorized
from security.openbao.cluster import Paths


@dataclass(frozen=True)
class Target:
    host: InvHost
    bastion: InvHost | None


def resolve(hosts: list[InvHost], name: str) -> Target:
    reachable = managed(hosts)
    host = next((h for h in reachable if name in (h.name, h.address)), None)
    if host is None:
        known = ", ".join(h.name for h in reachable)
        raise InputError(f"no managed host {name!r} (hosts: {known})")
    bastion = next((h for h in hosts if h.role == "bastion"), None)
    return Target(host, None if bastion is None or bastion.name == host.name else bastion)


def _key(pair: certs.KeyPair, cert: Path) -> paramiko.PKey:
    key = paramiko.Ed25519Key.from_private_key_file(str(pair.private))
    key.load_certificate(str(cert))
    return key


def _connection(
    address: str,
    account: str,
    key: paramiko.PKey,
    known_hosts: Path,
    gateway: Connection | None = None,
    timeout: float = 10,
) -> Connection:
    config = Config(overrides={"load_ssh_configs": False})
    conn = Connection(
        address,
        user=account,
        config=config,
        gateway=gateway,
        connect_timeout=timeout,
        connect_kwargs={"pkey": key, "look_for_keys": False, "allow_agent": False},
    )
    conn.client.load_host_keys(str(known_hosts))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


@dataclass
class Session:
    connection: Connection
    account: str
    certificate: Path
    signed_seconds: float

    def close(self) -> None:
        gw = self.connection.gateway
        self.connection.close()
        if isinstance(gw, Connection):
            gw.close()


def open_session(
    plan: IdentityPlan,
    hosts: list[InvHost],
    user: str,
    host: str,
    *,
    paths: Paths | None = None,
    layout: Layout | None = None,
    password: str | None = None,
    passcode: str | None = None,
    account: str | None = None,
    resign: bool = False,
    ttl: str | None = None,
) -> Session:
    """Log in (or reuse the token), sign (or reuse the certificate), open the connection."""
    paths = paths or Paths.default()
    layout = layout or Layout.default()
    if not layout.pinned_hosts.is_file():
        raise OperationError(
            f"no signed host keys at {layout.pinned_hosts}: run `govcloud identity apply` first"
        )
    target = resolve(hosts, host)
    grant, default_account = certs.choose(plan, user, target.host.name)
    start = time.perf_counter()
    pair = certs.key_pair(user, paths)
    if not resign and certs.usable(pair, grant):
        cert = pair.certificate  # still valid: no need to ask OpenBao (it may be refusing)
    else:
        bao = login(user, hosts, paths, password=password, passcode=passcode, check=False)
        try:
            cert = certs.sign(bao, pair, grant, ttl=ttl, reuse=False)
        except (BaoUnauthorized, BaoForbidden):  # the cached token was revoked or expired
            forget_token(user, paths)
            bao = login(user, hosts, paths, password=password, passcode=passcode)
            cert = certs.sign(bao, pair, grant, ttl=ttl, reuse=False)
    signed = time.perf_counter() - start
    key = _key(pair, cert)
    account = account or default_account
    gateway = None
    if target.bastion is not None:
        gateway = _connection(target.bastion.address, account, key, layout.pinned_hosts)
    conn = _connection(target.host.address, account, key, layout.pinned_hosts, gateway)
    try:
        conn.open()
    except paramiko.AuthenticationException as exc:
        raise OperationError(
            f"{target.host.name} refused {account} with {user}'s certificate ({exc})"
        ) from exc
    except paramiko.SSHException as exc:
        raise OperationError(f"SSH to {target.host.name} failed: {exc}") from exc
    except OSError as exc:
        raise OperationError(f"cannot reach {target.host.name}: {exc}") from exc
    return Session(conn, account, cert, signed)


def run(session: Session, command: str, *, hide: bool = True) -> Any:
    return session.connection.run(command, hide=hide, warn=True, in_stream=False)
