"""Log shipping over TLS (roles logship and loghost) with real parts: the hosts' certificates
from the service PKI on a real OpenBao (dev server on loopback), and two real rsyslog daemons
on loopback ports running the roles' own rendered configuration: a sender and the log host."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest

from govcloud.spec import load_spec
from govcloud.toolchain import pki as files
from security.pki import hostcerts
from tests.pki.conftest import LAB, ROOT, Pki
from tests.toolchain.conftest import free_ports

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("rsyslogd") is None, reason="rsyslog is not installed"),
]

ROLES = ROOT / "playbooks" / "roles"
LOGHOST = "loghost.govcloud.local"
SENDER = "web-1.govcloud.local"


@dataclass(frozen=True)
class Host:
    name: str
    role: str
    address: str


HOSTS = [Host("loghost", "log", "10.255.0.14"), Host("web-1", "vm", "10.255.10.2")]


def _render(template: Path, **values: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text()).render(**values)


def _installed(issued: Path, root_ca: Path, dest: Path, stem: str) -> Path:
    """The files as the tls_cert role lays them out on a host."""
    dest.mkdir(parents=True)
    for suffix in (".crt", ".chain.pem", ".fullchain.pem", ".key"):
        shutil.copy(issued / f"{stem}{suffix}", dest / f"{stem}{suffix}")
    shutil.copy(root_ca, dest / "ca.crt")
    return dest


class Rsyslog:
    """One rsyslogd in the foreground with a main configuration that includes a role's file."""

    def __init__(self, where: Path, head: str, fragment: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        (where / "work").mkdir(exist_ok=True)
        (where / "fragment.conf").write_text(fragment)
        conf = where / "rsyslog.conf"
        conf.write_text(
            f'global(workDirectory="{where / "work"}")\n{head}\n'
            f'include(file="{where / "fragment.conf"}")\n'
        )
        check = subprocess.run(["rsyslogd", "-N1", "-f", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.log = where / "rsyslogd.out"
        self.proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", str(conf), "-i", str(where / "pid")],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _sender(where: Path, input_port: int, log_port: int, loghost_name: str, tls: Path) -> Rsyslog:
    """A sender running the logship role's forward, taking lines on a plain loopback input
    (standing in for its local programs) and shipping them to the log host on ``log_port``,
    which must show a certificate for ``loghost_name``."""
    return Rsyslog(
        where,
        f'module(load="imtcp")\ninput(type="imtcp" address="127.0.0.1" port="{input_port}")',
        _render(
            ROLES / "logship" / "templates" / "forward.conf.j2",
            logship_loghost="127.0.0.1",
            logship_port=log_port,
            logship_loghost_name=loghost_name,
            logship_tls_name=SENDER,
            logship_tls_dest_dir=str(tls),
            logship_queue_size=1000,
        ),
    )


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@dataclass
class Shipping:
    receive_port: int
    input_port: int  # the sender's plain loopback input (stands in for its local programs)
    received: Path  # the log host's directory of received logs
    loghost_tls: Path
    sender_tls: Path

    def send(self, text: str, host: str = "web-1") -> None:
        """A line handed to the sender's rsyslog, as a local program would."""
        stamp = dt.datetime.now(dt.UTC).strftime("%b %d %H:%M:%S")
        with socket.create_connection(("127.0.0.1", self.input_port)) as s:
            s.sendall(f"<13>{stamp} {host} test: {text}\n".encode())

    def arrived(self, text: str, host: str = "web-1", wait: float = 15.0) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if any(text in p.read_text() for p in (self.received / host).glob("*.log")):
                return True
            time.sleep(0.2)
        return False


@pytest.fixture
def shipping(pki: Pki, tmp_path: Path) -> Iterator[Shipping]:
    """The log host and one sender, each with its certificate from the PKI (issued as
    `govcloud pki hosts` does), running the roles' configuration."""
    spec = load_spec(LAB)
    issued = tmp_path / "issued"
    token = pki.bao.create_token(["root"], ttl="10m")
    results = hostcerts.ensure(
        spec, HOSTS, lambda: pki.bao.with_token(token), root=issued, uses=[hostcerts.LOG]
    )
    assert [(r.host, r.action) for r in results] == [("loghost", "issued"), ("web-1", "issued")]
    loghost_tls = _installed(issued / "log", pki.root.cert, tmp_path / "loghost-tls", LOGHOST)
    sender_tls = _installed(issued / "log", pki.root.cert, tmp_path / "sender-tls", SENDER)
    receive_port, input_port = free_ports(2)
    received = tmp_path / "remote"
    log = Rsyslog(
        tmp_path / "loghost",
        "",
        _render(
            ROLES / "loghost" / "templates" / "receive.conf.j2",
            loghost_tls_port=receive_port,
            loghost_directory=str(received),
            loghost_tls_dir=str(loghost_tls),
            loghost_tls_name=LOGHOST,
            loghost_tls_peers=hostcerts.log_peers(spec),
        ),
    )
    sender = None
    try:
        _wait_port(receive_port)
        sender = _sender(tmp_path / "sender", input_port, receive_port, LOGHOST, sender_tls)
        _wait_port(input_port)
        yield Shipping(receive_port, input_port, received, loghost_tls, sender_tls)
    finally:
        if sender is not None:
            sender.stop()
        log.stop()


def test_a_certified_host_ships_over_tls_and_the_log_host_keeps_it_per_host(
    shipping: Shipping,
) -> None:
    shipping.send("a login on web-1")
    assert shipping.arrived("a login on web-1")
    assert [p.name for p in shipping.received.iterdir()] == ["web-1"]


def _client(
    ca: Path, cert_dir: Path | None, version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A sender verifying the log host against ``ca``, showing ``cert_dir``'s certificate."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False  # its name is what rsyslog checks (the last test)
    if cert_dir is not None:
        ctx.load_cert_chain(cert_dir / f"{SENDER}.fullchain.pem", cert_dir / f"{SENDER}.key")
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _speaks(port: int, ctx: ssl.SSLContext, line: str) -> bool:
    """A TLS session that hands over ``line``; False when the log host ends it first."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            tls.sendall(line.encode())
            tls.settimeout(1.0)
            try:  # TLS 1.3: a refused client certificate is answered after the handshake
                return tls.recv(1) != b""
            except TimeoutError:
                return True
    except (ssl.SSLError, ConnectionError, OSError):
        return False


def _foreign_cert(tmp_path: Path) -> Path:
    """A certificate with a permitted name from a CA made here: not from the cloud's PKI."""
    key, cert = files.issue(
        *files.make_ca("elsewhere"),
        files.CertRequest("sender", SENDER, dns_names=(SENDER,), client=True),
    )
    out = tmp_path / "foreign"
    out.mkdir()
    (out / f"{SENDER}.fullchain.pem").write_bytes(files.cert_pem(cert))
    files.write_private(out / f"{SENDER}.key", files.key_pem(key))
    return out


def test_the_log_host_keeps_nothing_sent_without_tls_or_without_a_certificate_of_the_pki(
    shipping: Shipping, tmp_path: Path
) -> None:
    port = shipping.receive_port
    stamp = dt.datetime.now(dt.UTC).strftime("%b %d %H:%M:%S")

    def line(text: str) -> str:
        return f"<13>{stamp} web-1 test: {text}\n"

    with socket.create_connection(("127.0.0.1", port)) as plain:  # plain TCP on the TLS port
        plain.sendall(line("plain text").encode())
        time.sleep(0.5)
    ca = shipping.sender_tls / "ca.crt"
    old = _client(ca, shipping.sender_tls, ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    assert not _speaks(port, old, line("over TLS 1.1"))
    assert not _speaks(port, _client(ca, None), line("no certificate"))
    foreign = _client(ca, _foreign_cert(tmp_path))
    assert not _speaks(port, foreign, line("a certificate from elsewhere"))
    # the positive control: the same client with the PKI's certificate is heard
    assert _speaks(port, _client(ca, shipping.sender_tls), line("certified"))
    assert shipping.arrived("certified")
    kept = "".join(p.read_text() for p in (shipping.received / "web-1").glob("*.log"))
    for refused in ("plain text", "over TLS 1.1", "no certificate", "from elsewhere"):
        assert refused not in kept


def test_a_sender_ships_nothing_to_a_log_host_without_the_expected_name(
    shipping: Shipping, tmp_path: Path
) -> None:
    """The sender checks the log host's certificate by name: one for another host of the
    PKI (a stolen key of any host, say) gets nothing."""
    spec = load_spec(LAB)
    (port,) = free_ports(1)
    impostor = f"impostor.{spec.tls.internal.allowed_domains[0]}"
    other = _sender(
        tmp_path / "sender-2", port, shipping.receive_port, impostor, shipping.sender_tls
    )
    try:
        _wait_port(port)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"<13>Dec  1 00:00:00 web-2 test: to the wrong peer\n")
        assert not shipping.arrived("to the wrong peer", host="web-2", wait=5)
    finally:
        other.stop()
