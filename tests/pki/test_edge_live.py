"""The hosts' certificates (security.pki.hostcerts) on a real OpenBao (dev server on loopback),
a load client reaching an HTTPS name it resolves itself (loadtests.tlsclient), and the tls_cert
role's nginx snippet checked by its own validator with a real nginx."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from govcloud.errors import InputError
from govcloud.spec import load_spec
from loadtests.tlsclient import install, parse_resolve, tls_context
from security.openbao.client import Bao
from security.pki import certs, hostcerts
from tests.pki.conftest import LAB, ROOT, Pki, render_snippet

pytestmark = pytest.mark.integration

CHECKER = ROOT / "playbooks" / "roles" / "tls_cert" / "files" / "govcloud-tls-check-nginx-snippet"


@dataclass(frozen=True)
class Host:
    name: str
    role: str
    address: str


HOSTS = [Host("hall-1", "hall", "10.1.0.2"), Host("hall-2", "hall", "10.1.0.3"),
         Host("compute-1", "compute", "10.2.0.2")]  # fmt: skip


def _login(pki: Pki, calls: list[int]) -> Bao:
    """A throwaway token (ensure revokes the one it is given), counted."""
    calls.append(1)
    return pki.bao.with_token(pki.bao.create_token(["root"], ttl="10m"))


def test_each_hall_host_gets_its_own_certificate_for_every_hall_name() -> None:
    spec = load_spec(LAB)
    wanted = hostcerts.edge_certs(spec, HOSTS)
    assert [c.host for c in wanted] == ["hall-1", "hall-2"]
    assert [c.stem for c in wanted] == ["hall-1.zwfw.guizhou.gov.cn", "hall-2.zwfw.guizhou.gov.cn"]
    halls = ("zwfw.guizhou.gov.cn", "5201.zwfw.guizhou.gov.cn", "5203.zwfw.guizhou.gov.cn")
    for c in wanted:
        assert set(halls) <= set(c.names) and c.names[0] == c.stem


def test_ensure_issues_once_then_only_what_is_due_or_renamed(pki: Pki, tmp_path: Path) -> None:
    spec = load_spec(LAB)
    calls: list[int] = []

    def ensure(**kw: Any) -> list[hostcerts.HostResult]:
        return hostcerts.ensure(
            spec, HOSTS, lambda: _login(pki, calls), root=tmp_path, uses=["edge"], **kw
        )

    first = ensure()
    assert [r.action for r in first] == ["issued", "issued"] and len(calls) == 1
    assert all(r.reason == "none yet" for r in first)
    meta = json.loads((tmp_path / "edge" / "hall-1.zwfw.guizhou.gov.cn.json").read_text())
    assert meta["role"] == "edge" and "5203.zwfw.guizhou.gov.cn" in meta["names"]
    assert (tmp_path / "edge" / "hall-1.zwfw.guizhou.gov.cn.key").stat().st_mode & 0o777 == 0o600
    # all good: OpenBao is not asked
    again = ensure()
    assert [r.action for r in again] == ["good", "good"] and len(calls) == 1
    # 21 of its 30 days later it is in the last third of its life: due (dry run says so)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=21)
    dry = ensure(now=later, dry_run=True)
    assert [r.action for r in dry] == ["due", "due"] and len(calls) == 1
    assert "days left" in dry[0].reason
    # a spec without the city halls' names: both are issued again, without them
    spec.regions["52"].cities[0].hall.server_name = None  # type: ignore[union-attr]
    renamed = ensure()
    assert [r.action for r in renamed] == ["issued", "issued"] and len(calls) == 2
    assert renamed[0].reason == "the spec's hall names changed"
    meta = json.loads((tmp_path / "edge" / "hall-1.zwfw.guizhou.gov.cn.json").read_text())
    assert "5201.zwfw.guizhou.gov.cn" not in meta["names"]


def test_the_hall_database_gets_a_certificate_for_its_name_and_address(
    pki: Pki, tmp_path: Path
) -> None:
    """From the internal role, with the address the hall's pods and the backups connect to and
    verify; an address the spec moves is issued again."""
    spec = load_spec(LAB)
    db = Host("dsjj-vm-1", "vm", "10.255.10.10")  # the hall's database host in the lab spec
    calls: list[int] = []
    first = hostcerts.ensure(
        spec, [*HOSTS, db], lambda: _login(pki, calls), root=tmp_path, uses=["database"]
    )
    assert [(r.use, r.host, r.action) for r in first] == [("database", db.name, "issued")]
    stem = "dsjj-vm-1.govcloud.local"
    meta = json.loads((tmp_path / "database" / f"{stem}.json").read_text())
    assert (meta["role"], meta["names"], meta["ip_sans"]) == ("internal", [stem], [db.address])
    cert = x509.load_pem_x509_certificate((tmp_path / "database" / f"{stem}.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == [db.address]
    moved = Host(db.name, db.role, "10.255.10.11")
    again = hostcerts.ensure(
        spec, [*HOSTS, moved], lambda: _login(pki, calls), root=tmp_path, uses=["database"]
    )
    assert (again[-1].action, again[-1].reason) == ("issued", "the host's address changed")
    assert len(calls) == 2


def test_a_hall_name_outside_the_edge_domains_is_refused_naming_the_field() -> None:
    spec = load_spec(LAB)
    spec.tls.edge.allowed_domains = ["other.gov.cn"]
    with pytest.raises(InputError, match=r"tls\.edge\.allowed_domains"):
        hostcerts.edge_certs(spec, HOSTS)


# -- the load client: a name it resolves itself, the PKI's root as its only CA --------------


@pytest.fixture
def https_server(pki: Pki, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Python HTTPS server on loopback with hall-1's edge certificate."""
    spec = load_spec(LAB)
    calls: list[int] = []
    hostcerts.ensure(spec, HOSTS[:1], lambda: _login(pki, calls), root=tmp_path)
    stem = "hall-1.zwfw.guizhou.gov.cn"

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hall ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    issued = tmp_path / "edge"
    ctx.load_cert_chain(issued / f"{stem}.fullchain.pem", issued / f"{stem}.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stem, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_load_client_reaches_a_name_it_resolves_and_verifies_it(
    pki: Pki, https_server: tuple[str, int]
) -> None:
    stem, port = https_server
    restore = install({stem: "127.0.0.1", "zwfw.guizhou.gov.cn": "127.0.0.1"}, str(pki.root.cert))
    try:
        assert socket.getaddrinfo(stem, port)[0][4][0] == "127.0.0.1"
        for name in (stem, "zwfw.guizhou.gov.cn"):  # its own name and a hall's
            with urllib.request.urlopen(f"https://{name}:{port}/", timeout=5) as resp:
                assert resp.read() == b"hall ok"
    finally:
        restore()
    # put back: the name is unknown again, and the default trust store does not know the PKI
    with pytest.raises(OSError):
        socket.getaddrinfo(stem, port)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{port}/", timeout=5)


def test_the_load_client_refuses_a_name_the_certificate_does_not_carry(
    pki: Pki, https_server: tuple[str, int]
) -> None:
    _, port = https_server
    restore = install({"other.zwfw.guizhou.gov.cn": "127.0.0.1"}, str(pki.root.cert))
    try:
        with pytest.raises(urllib.error.URLError, match=r"match|mismatch"):
            urllib.request.urlopen(f"https://other.zwfw.guizhou.gov.cn:{port}/", timeout=5)
    finally:
        restore()


@pytest.mark.parametrize(
    ("item", "why"),
    [("hall-1.example", "NAME:ADDRESS"), (":10.0.0.1", "NAME:ADDRESS"),
     ("h:not-an-address", "an IP address")],
)  # fmt: skip
def test_resolve_entries_are_checked(item: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_resolve([item])


def test_a_missing_or_bad_ca_file_is_refused_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--ca-file"):
        tls_context(str(tmp_path / "none.pem"))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(InputError, match="--ca-file"):
        tls_context(str(bad))


# -- the tls_cert role's nginx snippet, as its validator sees it ---------------------------


def test_the_snippet_checker_passes_a_good_snippet_and_refuses_a_missing_key(
    pki: Pki, tmp_path: Path
) -> None:
    if not shutil.which("nginx"):
        pytest.fail("nginx is missing: apt-get install -y nginx-light")
    name = "zwfw.guizhou.gov.cn"
    certs.issue(pki.bao, pki.plan, "edge", [name], tmp_path / "certs")
    snippet = tmp_path / "tls.conf"
    snippet.write_text(render_snippet(tmp_path / "certs", name))
    ok = subprocess.run([str(CHECKER), str(snippet)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "certs" / f"{name}.key").unlink()
    bad = subprocess.run([str(CHECKER), str(snippet)], capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and ".key" in bad.stderr
