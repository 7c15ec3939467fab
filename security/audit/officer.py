"""`govcloud audit`: what a security officer runs, with the audit administrator's identity.

- ``status``: the audit devices OpenBao declares, and for each identity host each device's file
  (owner, mode, size, writable by the server, disk headroom), and whether OpenBao still serves
  (it refuses every request when no device can record it: fail closed);
- ``report``: who did what, streamed over SSH (as the ``auditor`` account, with a certificate
  for the audit administrators' principal) line by line from every node's audit file;
- ``verify VALUE``: a clear-text value hashed by ``sys/audit-hash`` and searched in the logs;
- the hosts' SSH logins, from the log host (every host's sshd log is shipped there): which were
  made with the break-glass provisioning key rather than a certificate (:mod:`.sshd`).

The audit administrator's token can read and hash, and change nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govcloud.errors import OperationError
from infra.inventory import InvHost
from security.access import connect
from security.audit import sshd
from security.audit.report import Report, build, feed
from security.identity.plan import AUDIT_ACCOUNT, IdentityPlan
from security.identity.session import login
from security.openbao.client import Bao, BaoAuditFailure, BaoError
from security.openbao.cluster import Paths, identity_hosts

DEVICE_DIRS = {  # the openbao role's defaults
    "primary": "/var/log/openbao/audit-primary/audit.log",
    "secondary": "/var/log/openbao/audit-secondary/audit.log",
}
# the log host: every host's log as received (loghost role), and its own authentication log
SSHD_LOGINS = (
    "cd /var/log && { find remote -type f -name '*.log*' -print0 2>/dev/null; "
    "find . -maxdepth 1 -name 'auth.log*' -print0; } "
    "| xargs -0r zgrep -hF -- 'Accepted publickey'; rc=$?; [ $rc -le 1 ] || [ $rc -eq 123 ]"
)
LOW_HEADROOM = 0.10


def auditor(plan: IdentityPlan) -> str:
    holders = next(g.members for g in plan.groups.values() if g.admin and "audit" in g.name)
    return holders[0]


@dataclass
class Officer:
    plan: IdentityPlan
    hosts: list[InvHost]
    user: str
    paths: Paths = field(default_factory=Paths.default)
    passcode: str | None = None
    skipped: list[str] = field(default_factory=list)  # nodes whose log could not be read

    def bao(self) -> Bao:
        return login(self.user, self.hosts, self.paths, passcode=self.passcode)

    def session(self, host: str) -> connect.Session:
        return connect.open_session(
            self.plan,
            self.hosts,
            self.user,
            host,
            paths=self.paths,
            passcode=self.passcode,
            account=AUDIT_ACCOUNT,
        )

    # -- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"serving": None, "devices": {}, "nodes": [], "problems": []}
        devices: dict[str, str] = dict(DEVICE_DIRS)
        try:
            bao = self.bao()
            listed = bao.list_audit_devices()
            devices = {
                k.rstrip("/"): str(v.get("options", {}).get("file_path", ""))
                for k, v in listed.items()
            }
            out["devices"] = {
                k.rstrip("/"): {"type": v.get("type"), "path": devices[k.rstrip("/")]}
                for k, v in listed.items()
            }
            bao.calculate_audit_hash(next(iter(devices)), "govcloud-audit-status-probe")
            out["serving"] = True
            out["active"] = bao.endpoint.url
        except BaoAuditFailure as exc:
            out["serving"] = False
            out["problems"].append(
                f"OpenBao refuses requests: no audit device can record them (fail closed): {exc}"
            )
        except BaoError as exc:
            out["serving"] = False
            out["problems"].append(f"OpenBao: {exc}")
        for h in identity_hosts(self.hosts):
            node: dict[str, Any] = {"host": h.name, "devices": {}}
            try:
                session = self.session(h.name)
            except (OperationError, BaoError) as exc:
                node["error"] = str(exc)
                out["problems"].append(f"{h.name}: {exc}")
                out["nodes"].append(node)
                continue
            try:
                for name, path in devices.items():
                    node["devices"][name] = _file_state(session, path)
                    state = node["devices"][name]
                    if not state.get("writable"):
                        out["problems"].append(f"{h.name}: audit device {name} cannot be written")
                    if state.get("free_ratio", 1.0) < LOW_HEADROOM:
                        out["problems"].append(f"{h.name}: audit device {name} disk nearly full")
            finally:
                session.close()
            out["nodes"].append(node)
        out["ok"] = bool(out["serving"]) and not out["problems"]
        return out

    # -- report -------------------------------------------------------------------------------

    def stream(self, device: str = "primary") -> Iterator[str]:
        """Every node's audit lines, node after node, streamed over SSH."""
        path = DEVICE_DIRS.get(device, device)
        for h in identity_hosts(self.hosts):
            try:
                session = self.session(h.name)
            except (OperationError, BaoError) as exc:
                self.skipped.append(f"{h.name}: {exc}")
                continue  # a node that is down: the others still report
            try:
                yield from _remote_lines(session, f"cat {shlex.quote(path)}")
            finally:
                session.close()

    def report(self, since: str | None, device: str = "primary") -> Report:
        return build(self.stream(device), since)

    def sshd_lines(self) -> Iterator[str]:
        """Every ``Accepted publickey`` line the log hosts hold, streamed over SSH."""
        for h in [h for h in self.hosts if h.role == "log"]:
            try:
                session = self.session(h.name)
            except (OperationError, BaoError) as exc:
                self.skipped.append(f"{h.name}: {exc}")
                continue
            try:
                yield from _remote_lines(session, SSHD_LOGINS)
            except OperationError as exc:
                self.skipped.append(f"{h.name}: {exc}")
            finally:
                session.close()

    def ssh_report(self, break_glass_keys: list[str]) -> sshd.SshReport:
        """SSH logins on every host: break-glass (the provisioning key's fingerprints), other
        plain keys, certificates by key id."""
        return sshd.build(self.sshd_lines(), break_glass_keys)

    # -- verify -------------------------------------------------------------------------------

    def verify(self, value: str, device: str = "primary") -> dict[str, Any]:
        bao = self.bao()
        digest = bao.calculate_audit_hash(device, value)
        found = 0
        where: list[str] = []
        for line in self.stream(device):
            # the hashing request itself logs the value's HMAC: not an occurrence
            if digest in line and '"path":"sys/audit-hash/' not in line:
                found += 1
                if len(where) < 20:
                    where.append(line[8:38] if line.startswith('{"time"') else line[:30])
        return {"device": device, "hash": digest, "occurrences": found, "times": where}


def _remote_lines(session: connect.Session, command: str) -> Iterator[str]:
    transport = session.connection.client.get_transport()
    if transport is None:
        raise OperationError("SSH transport closed")
    channel = transport.open_session()
    channel.exec_command(command)
    with channel.makefile("r", 1 << 16) as fh:
        for raw in fh:
            yield raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    status = channel.recv_exit_status()
    if status != 0:
        error = channel.makefile_stderr("r").read().decode("utf-8", "replace").strip()
        channel.close()
        raise OperationError(f"{command}: exit {status}: {error[-300:]}")
    channel.close()


def _file_state(session: connect.Session, path: str) -> dict[str, Any]:
    q = shlex.quote(path)
    cmd = (
        f"stat -c '%U %a %s' {q} 2>/dev/null || echo missing; "
        f"df -P -k $(dirname {q}) 2>/dev/null | tail -1"
    )
    result = connect.run(session, cmd)
    lines = (result.stdout or "").splitlines()
    state: dict[str, Any] = {"path": path}
    if not lines or lines[0] == "missing":
        state.update(exists=False, writable=False)
        return state
    owner, mode, size = lines[0].split()
    state.update(
        exists=True,
        owner=owner,
        mode=mode,
        size=int(size),
        writable=owner == "openbao" and int(mode[0]) & 2 == 2,
    )
    if len(lines) > 1:
        parts = lines[1].split()
        total, avail = int(parts[1]), int(parts[3])
        state.update(free_mib=avail // 1024, free_ratio=round(avail / total, 3) if total else 0.0)
    return state


def report_file(path: Path, since: str | None) -> Report:
    """The report over a local audit file (a copy, or the bench's generated log)."""
    report = Report(since=since)
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            feed(report, line)
    return report


Progress = Callable[[str], None]
