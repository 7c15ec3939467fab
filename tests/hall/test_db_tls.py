"""The hall's database over TLS only, with a real PostgreSQL: the hall_db role's own pg_hba.conf
and TLS settings (rendered from its templates, passed by its own checker) on a private cluster.
A client without TLS is refused; the hall app (HALL_DB_CA) and libpq's verify-full, as the
backup hosts' pg_dump uses it, connect over TLS; a server whose certificate does not chain to the
given root is refused by both.

The certificates come from a throwaway CA made here, not from the PKI: the PKI's name constraints
permit only the government network's addresses, and this server listens on loopback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import jinja2
import pytest

from clusters.apps.hall.__main__ import _migrate
from clusters.apps.hall.app import Config, db_tls_context
from clusters.apps.hall.devserver import LocalPostgres, pg_bindir
from govcloud.toolchain import pki as files

pytestmark = pytest.mark.integration

ROLE = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "hall_db"
CHECKER = ROLE / "files" / "govcloud-hall-check-pgconf"
PASSWORD = "s3cret-for-the-test"


def _server(ca: tuple[Any, Any], directory: Path) -> None:
    """A server certificate for 127.0.0.1 (its IP SAN) and its key, as tls_cert lays them out."""
    key, cert = files.issue(
        *ca,
        files.CertRequest(
            "db", "db.govcloud.local", dns_names=("db.govcloud.local",),
            ip_addresses=("127.0.0.1",), server=True,
        ),
    )  # fmt: skip
    (directory / "db.fullchain.pem").write_bytes(files.cert_pem(cert))
    files.write_private(directory / "db.key", files.key_pem(key))


def _render(template: str, **values: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["comment"] = lambda text, **_: f"# {text}"
    return env.from_string((ROLE / "templates" / template).read_text()).render(
        ansible_managed="managed by the test", **values
    )


@dataclass
class TlsDb:
    pg: LocalPostgres
    ca_pem: str
    other_ca_pem: str
    ca_file: Path

    def dsn(self, sslmode: str) -> str:
        return f"postgresql://hall:{PASSWORD}@127.0.0.1:{self.pg.port}/hall?sslmode={sslmode}"


@pytest.fixture(scope="module")
def tls_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsDb]:
    pg = LocalPostgres().start()
    try:
        ca, other = files.make_ca("test root"), files.make_ca("another root")
        tls = pg.root / "tls"
        tls.mkdir()
        _server(ca, tls)
        conf = pg.root / "govcloud-hall.conf"
        conf.write_text(
            _render(
                "govcloud-hall.conf.j2",
                hall_db_port=pg.port,
                hall_db_tls_dir=str(tls),
                hall_db_tls_name="db",
                hall_db_tls_ciphers=(
                    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                    "ECDHE-ECDSA-CHACHA20-POLY1305"
                ),
            )
        )
        hba = pg.root / "data" / "pg_hba.conf"
        hba_text = _render(
            "pg_hba.conf.j2",
            hall_db_pg_version="15",
            hall_db_name="hall",
            hall_db_user="hall",
            hall_db_backup_user="govcloud_backup",
            hall_db_clients=[],
            hall_db_backup_clients=[],
        )
        for flag, path, text in (("--conf", conf, None), ("--hba", hba, hba_text)):
            if text is not None:
                checked = pg.root / "hba.check"
                checked.write_text(text)
                path = checked
            ran = subprocess.run(
                [str(CHECKER), flag, str(path)], capture_output=True, text=True, check=False
            )
            assert ran.returncode == 0, ran.stderr
        # the password first, while loopback is still trusted; then the role's files
        asyncio.run(_set_password(pg.dsn))
        with (pg.root / "data" / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write(f"include '{conf}'\n")
        hba.write_text(hba_text)
        if os.geteuid() == 0:
            for p in (tls, tls / "db.key", tls / "db.fullchain.pem", conf, hba):
                shutil.chown(p, "nobody", "nogroup")
        pg.reload()
        ca_file = pg.root / "ca.crt"
        ca_pem = files.cert_pem(ca[1]).decode()
        ca_file.write_text(ca_pem)
        yield TlsDb(pg, ca_pem, files.cert_pem(other[1]).decode(), ca_file)
    finally:
        pg.stop()


async def _set_password(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"ALTER ROLE hall PASSWORD '{PASSWORD}'")
    finally:
        await conn.close()


async def _ssl_in_use(dsn: str, **options: object) -> bool:
    conn = await asyncpg.connect(dsn, **options)
    try:
        return bool(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
    finally:
        await conn.close()


def test_a_client_without_tls_is_refused(tls_db: TlsDb) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        asyncio.run(_ssl_in_use(tls_db.dsn("disable")))


def test_the_hall_app_connects_over_tls_verifying_the_server(tls_db: TlsDb) -> None:
    config = Config.from_env({"HALL_DSN": tls_db.dsn("verify-full"), "HALL_DB_CA": tls_db.ca_pem})
    assert config.db_ssl is not None and config.db_ssl.verify_mode == ssl.CERT_REQUIRED
    assert asyncio.run(_ssl_in_use(config.dsn, **config.db_options())) is True
    assert asyncio.run(_migrate(config))  # the app's own migrate, over the same connection


def test_the_hall_app_refuses_a_server_of_another_root(tls_db: TlsDb) -> None:
    config = Config.from_env(
        {"HALL_DSN": tls_db.dsn("verify-full"), "HALL_DB_CA": tls_db.other_ca_pem}
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_ssl_in_use(config.dsn, **config.db_options()))


@pytest.mark.parametrize(("root", "ok"), [("ca", True), ("other", False)])
def test_libpq_verify_full_as_the_backups_use_it(tls_db: TlsDb, root: str, ok: bool) -> None:
    """The backup script's connection string (pg_dump over TLS, sslrootcert, verify-full)."""
    ca_file = tls_db.ca_file
    if root == "other":
        ca_file = tls_db.pg.root / "other.crt"
        ca_file.write_text(tls_db.other_ca_pem)
    conn = (
        f"host=127.0.0.1 port={tls_db.pg.port} user=hall dbname=hall "
        f"sslmode=verify-full sslrootcert={ca_file}"
    )
    ran = subprocess.run(
        [str(pg_bindir() / "pg_dump"), "--schema-only", f"--dbname={conn}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": PASSWORD},
        check=False,
        timeout=60,
    )
    assert (ran.returncode == 0) is ok, ran.stderr
    if not ok:
        assert "certificate verify failed" in ran.stderr


def test_an_unreadable_database_root_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="HALL_DB_CA"):
        db_tls_context("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert db_tls_context("  ") is None


def test_the_compliance_check_passes_the_role_s_settings_with_evidence(tls_db: TlsDb) -> None:
    """Item tls-database's own probe (psql, OpenSSL's s_client), run here as on the host."""
    import testinfra

    from security.compliance.tls import database_tls

    host = testinfra.get_host("local://")
    evidence = database_tls(host, "127.0.0.1", tls_db.pg.port, str(tls_db.ca_file))
    assert "TLS only" in evidence and "TLSv1.2, TLSv1.3 (refuses TLSv1, TLSv1.1)" in evidence
    other = tls_db.pg.root / "other.crt"
    other.write_text(tls_db.other_ca_pem)
    with pytest.raises(AssertionError, match="does not verify to the PKI root"):
        database_tls(host, "127.0.0.1", tls_db.pg.port, str(other))
