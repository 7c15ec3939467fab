"""Backups of the online hall's database, kept on the storage host (等保 数据备份恢复).

A backup is ``pg_dump`` in PostgreSQL's custom format taken by the storage host itself (role
hall_backup: a timer on the spec's schedule, a read-only database role, the flow
backups-from-<db host>); it lands under a temporary name and is renamed only once complete,
beside its SHA-256, and the oldest beyond the spec's number are removed. ``take`` runs that same
service now and waits for it. Every session here is a person's (the system administrator by
default): OpenBao signs the certificate, so every backup and restore is in the audit trail.

A restore checks the file's SHA-256 on the storage host, then recreates the database (closing
the hall's connections) and feeds the file to ``pg_restore``. Nothing is silent: an unreachable
host, a failed dump or restore, or a checksum that does not match raises with the step named.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from clusters.hallsite import hall_site
from govcloud.errors import InputError, OperationError
from govcloud.spec.model import Spec
from infra.inventory import InvHost

DB_NAME, DB_OWNER = "hall", "govcloud_hall"  # playbooks/roles/hall_db defaults
BACKUP_ROOT = "/var/backups/govcloud"  # playbooks/roles/hall_backup: hall_backup_dir's parent
SERVICE = "govcloud-hall-backup.service"
NAME = re.compile(r"^hall-\d{8}T\d{6}Z\.dump$")
CHUNK = 1 << 16


@dataclass(frozen=True)
class Backup:
    name: str
    bytes: int
    sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": self.bytes, "sha256": self.sha256}


@dataclass(frozen=True)
class Places:
    database: InvHost
    storage: InvHost
    directory: str


def places(spec: Spec, hosts: list[InvHost]) -> Places:
    site = hall_site(spec)
    if site is None or site.database_host is None:
        raise InputError(
            "the spec gives the hall no database host (tenant.reaches of the department "
            "whose tenant.edge has the app hall)"
        )
    db = next((h for h in hosts if h.name == site.database_host), None)
    storage = next((h for h in hosts if h.role == "storage"), None)
    if db is None:
        raise InputError(f"the hall's database host {site.database_host} is not in the plan")
    if storage is None:
        raise InputError("the spec has no storage host (datacenter.hosts, role: storage)")
    return Places(db, storage, f"{BACKUP_ROOT}/hall")


class _Remote:
    """One SSH session's raw command channels (binary streams, exit status)."""

    def __init__(self, session: Any, host: str) -> None:
        self.session = session
        self.host = host

    def channel(self, command: str) -> Any:
        transport = self.session.connection.client.get_transport()
        if transport is None:
            raise OperationError(f"the SSH session to {self.host} is closed")
        chan = transport.open_session()
        chan.exec_command(command)
        return chan

    def run(self, command: str, what: str) -> str:
        chan = self.channel(command)
        out, err = bytearray(), bytearray()
        while True:
            if chan.recv_ready():
                out += chan.recv(CHUNK)
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(CHUNK)
            elif chan.exit_status_ready() and not chan.recv_ready():
                break
            else:
                time.sleep(0.01)
        status = chan.recv_exit_status()
        if status != 0:
            raise OperationError(
                f"{what} failed on {self.host} (exit {status}): "
                f"{bytes(err).decode(errors='replace').strip()[-300:]}"
            )
        return bytes(out).decode(errors="replace")


@contextmanager
def _sessions(spec: Spec, hosts: list[InvHost], user: str, *names: str) -> Iterator[list[_Remote]]:
    """Signed SSH sessions on the named hosts, as ``user`` (OpenBao signs the certificate)."""
    from security.access.connect import open_session
    from security.identity.plan import make_identity_plan

    plan = make_identity_plan(spec, hosts)
    opened = []
    try:
        for name in names:
            try:
                opened.append(open_session(plan, hosts, user, name))
            except OperationError as exc:
                raise OperationError(f"backup: cannot open a session on {name}: {exc}") from exc
        yield [_Remote(s, n) for s, n in zip(opened, names, strict=True)]
    finally:
        for s in opened:
            s.close()


def _pipe(src: Any, dst: Any) -> tuple[int, str, str, str]:
    """Copy ``src``'s stdout into ``dst``'s stdin; (bytes, sha256, src stderr, dst stderr)."""
    digest, sent, src_err, dst_err = hashlib.sha256(), 0, bytearray(), bytearray()
    while True:
        if src.recv_ready():
            data = src.recv(CHUNK)
            digest.update(data)
            dst.sendall(data)
            sent += len(data)
        elif src.recv_stderr_ready():
            src_err += src.recv_stderr(CHUNK)
        elif src.exit_status_ready() and not src.recv_ready():
            break
        else:
            time.sleep(0.005)
        while dst.recv_stderr_ready():
            dst_err += dst.recv_stderr(CHUNK)
    dst.shutdown_write()
    return (
        sent,
        digest.hexdigest(),
        src_err.decode(errors="replace"),
        dst_err.decode(errors="replace"),
    )


def take(spec: Spec, hosts: list[InvHost], *, user: str = "sysadmin") -> Backup:
    """A backup now: the storage host's own backup service (the one its timer starts, role
    hall_backup) run and awaited; its failure is reported with the service's last log lines."""
    where = places(spec, hosts)
    with _sessions(spec, hosts, user, where.storage.name) as (storage,):
        before = {b.name for b in _listing(storage, where.directory)}
        try:  # a oneshot service's start job ends when the backup does (no D-Bus needed)
            storage.run(f"sudo -n systemctl start {SERVICE}", "the backup service")
        except OperationError as exc:
            log = storage.run(
                f"sudo -n journalctl -u {SERVICE} -n 8 --no-pager -o cat || true",
                "reading the backup service's log",
            )
            raise OperationError(f"{exc}; its log: {' | '.join(log.splitlines()[-4:])}") from exc
        new = [b for b in _listing(storage, where.directory) if b.name not in before]
        if not new:
            raise OperationError(
                f"the backup service on {storage.host} succeeded but left no new backup in "
                f"{where.directory}"
            )
        b = new[-1]
        digest = storage.run(
            f"sudo -n cat {where.directory}/{b.name}.sha256", "reading the backup's SHA-256"
        ).strip()
    return Backup(b.name, b.bytes, digest)


def _listing(storage: _Remote, directory: str) -> list[Backup]:
    script = f'cd {directory} 2>/dev/null && stat -c "%n %s" hall-*.dump || true'
    out = storage.run(f"sudo -n sh -c {shlex.quote(script)}", "listing the backups")
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and NAME.match(parts[0]):
            found.append(Backup(parts[0], int(parts[1])))
    return sorted(found, key=lambda b: b.name)


def listing(spec: Spec, hosts: list[InvHost], *, user: str = "sysadmin") -> list[Backup]:
    where = places(spec, hosts)
    with _sessions(spec, hosts, user, where.storage.name) as (storage,):
        return _listing(storage, where.directory)


def restore(
    spec: Spec, hosts: list[InvHost], name: str = "latest", *, user: str = "sysadmin"
) -> Backup:
    """The hall's database recreated from backup ``name`` (or the newest)."""
    where = places(spec, hosts)
    if name != "latest" and not NAME.match(name):
        raise InputError(
            f"backup name: expected hall-YYYYMMDDTHHMMSSZ.dump or latest, got {name!r}"
        )
    with _sessions(spec, hosts, user, where.database.name, where.storage.name) as (db, storage):
        held = _listing(storage, where.directory)
        if not held:
            raise OperationError(f"no backup of the hall on {storage.host} ({where.directory})")
        chosen = held[-1] if name == "latest" else next((b for b in held if b.name == name), None)
        if chosen is None:
            raise InputError(
                f"backup name: no {name} on {storage.host} (have: "
                f"{', '.join(b.name for b in held[-5:])})"
            )
        path = f"{where.directory}/{chosen.name}"
        check = (
            f'cd {where.directory} && echo "$(cat {chosen.name}.sha256)  {chosen.name}" '
            "| sha256sum --check --quiet"
        )
        storage.run(
            f"sudo -n sh -c {shlex.quote(check)}", f"checking {chosen.name} against its SHA-256"
        )
        pg = "sudo -n runuser -u postgres --"
        db.run(
            f"{pg} dropdb --force --if-exists {DB_NAME} && "
            f"{pg} createdb --owner={DB_OWNER} --encoding=UTF8 --template=template0 {DB_NAME}",
            "recreating the database",
        )
        source = storage.channel(f"sudo -n cat {path}")
        load = db.channel(f"{pg} pg_restore --exit-on-error --dbname={DB_NAME}")
        sent, digest, src_err, load_err = _pipe(source, load)
        if (status := load.recv_exit_status()) != 0:
            raise OperationError(
                f"pg_restore failed on {db.host} (exit {status}): {load_err[-300:]}"
            )
        if (status := source.recv_exit_status()) != 0:
            raise OperationError(f"reading {path} failed (exit {status}): {src_err[-300:]}")
    return Backup(chosen.name, sent, digest)
