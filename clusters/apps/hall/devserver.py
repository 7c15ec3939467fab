"""Control side: a throwaway hall on loopback — a private PostgreSQL cluster and the app.

Used by the tests, the benchmarks and ``govcloud loadtest run --target local``. PostgreSQL is
Debian's server (``apt-get install postgresql``); ``initdb`` refuses to run as root, so as root
the cluster belongs to ``nobody`` and lives under a temporary directory that user owns. The
cluster trusts loopback connections only and runs with fsync off: it is a test database.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[3]


class DevServerError(RuntimeError):
    """A local PostgreSQL or hall could not be started or a hall command failed.

    The hall's own type (the package stands alone, without govcloud); govcloud's commands that
    start a local hall report it as their own operation error.
    """


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path:
    """Where Debian's PostgreSQL server binaries are (the newest installed major version)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise DevServerError(
        "PostgreSQL server not found (no /usr/lib/postgresql/*/bin/initdb): "
        "install Debian's `postgresql` package (it is in scripts/apt-packages.txt; `make deps`)"
    )


@dataclass
class LocalPostgres:
    """A private cluster on 127.0.0.1:<port>; ``stop()`` removes everything."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="govcloud-pg-")))
    port: int = field(default_factory=free_port)
    user: str = "hall"
    database: str = "hall"
    _as: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        proc = subprocess.run(
            [*self._as, *cmd], capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise DevServerError(
                f"{Path(cmd[0]).name} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )

    def start(self) -> LocalPostgres:
        bindir = pg_bindir()
        data = self.root / "data"
        if os.geteuid() == 0:
            os.chmod(self.root, 0o700)
            shutil.chown(self.root, "nobody", "nogroup")
            runuser = shutil.which("runuser") or "runuser"
            self._as = [runuser, "-u", "nobody", "--"]
        self._run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            " -c shared_buffers=128MB"
        )
        self._run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(self.root / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self._run(
            str(bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            self.database,
        )
        return self

    def serve_tls(self, chain_pem: bytes, key_pem: bytes) -> None:
        """Serve TLS too, with this certificate chain and key (loopback stays trusted with or
        without it: a client chooses, as the benchmarks compare)."""
        tls = self.root / "tls"
        tls.mkdir(mode=0o700, exist_ok=True)
        (tls / "server.crt").write_bytes(chain_pem)
        key = tls / "server.key"
        key.write_bytes(key_pem)
        os.chmod(key, 0o600)
        with (self.root / "data" / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write(
                f"ssl = on\nssl_cert_file = '{tls / 'server.crt'}'\n"
                f"ssl_key_file = '{key}'\nssl_min_protocol_version = 'TLSv1.2'\n"
            )
        if self._as:  # the cluster's owner reads them
            for path in (tls, tls / "server.crt", key):
                shutil.chown(path, "nobody", "nogroup")
        self.reload()

    def reload(self) -> None:
        """Reread postgresql.conf and pg_hba.conf (the tests that change them)."""
        self._run(str(pg_bindir() / "pg_ctl"), "-D", str(self.root / "data"), "reload")

    def stop(self) -> None:
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(DevServerError, subprocess.TimeoutExpired):
                self._run(str(pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def hall_env(dsn: str, port: int, admin_token: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HALL_DSN": dsn,
            "HALL_HOST": "127.0.0.1",
            "HALL_PORT": str(port),
            "HALL_ADMIN_TOKEN": admin_token,
            "HALL_SCRYPT_N": "4096",
            "PYTHONPATH": str(_REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    env.update(extra)
    return env


def run_hall(
    args: list[str],
    env: dict[str, str],
    timeout: float = 600,
    command: tuple[str, ...] = (sys.executable, "-m", "clusters.apps.hall"),
) -> str:
    proc = subprocess.run(
        [*command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise DevServerError(f"hall {args[0]} failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def http_json(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 10,
    context: ssl.SSLContext | None = None,
) -> tuple[int, Any]:
    """One JSON request with the standard library: (status, decoded body); ``context``: the
    TLS client of an https URL."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            raw = resp.read()
            status = resp.status
            ctype = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
        ctype = exc.headers.get("Content-Type", "")
    if "json" in ctype:
        return status, json.loads(raw)
    return status, raw.decode()


@dataclass
class LocalHall:
    """The hall app on a loopback port over a ``LocalPostgres``, seeded from a seed plan."""

    pg: LocalPostgres
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    extra_env: dict[str, str] = field(default_factory=dict)
    #: how to start the app: from the repository by default; ("/usr/bin/python3", "-m", "hall")
    #: with PYTHONPATH at a copy of the package runs it as a hall host does
    command: tuple[str, ...] = (sys.executable, "-m", "clusters.apps.hall")
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def tls(self) -> bool:
        """Serving HTTPS itself (HALL_TLS_CERT and HALL_TLS_KEY given), as the hall's pods do."""
        return bool(self.extra_env.get("HALL_TLS_CERT"))

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return hall_env(self.pg.dsn, self.port, self.admin_token, **self.extra_env)

    def seed(self, plan: dict[str, Any]) -> dict[str, int]:
        path = self.pg.root / "seed-plan.json"
        path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
        out: dict[str, int] = json.loads(
            run_hall(["seed", str(path)], self.env(), command=self.command)
        )
        return out

    def start(self, timeout: float = 30) -> LocalHall:
        self.log_path = self.pg.root / f"hall-{self.port}.log"
        env = self.env()
        env.setdefault("HALL_ACCESS_LOG", str(self.pg.root / f"access-{self.port}.jsonl"))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.command, "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevServerError(
                    f"the hall exited with {self.proc.returncode}: "
                    f"{self.log_path.read_text(errors='replace')[-800:]}"
                )
            try:
                # readiness only: the certificate is the caller's to verify
                probe = ssl._create_unverified_context() if self.tls else None
                status, _ = http_json("GET", self.url + "/readyz", timeout=2, context=probe)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise DevServerError(f"the hall did not become ready on {self.url} in {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
