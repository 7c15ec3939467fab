"""Evidence for a TLS endpoint, gathered with a real TLS client (Python's ``ssl``, OpenSSL).

What a hall's citizens would meet, probed from the network rather than read from a config:

- which protocol versions the server accepts: TLS 1.2 and 1.3 wanted, TLS 1.0 and 1.1 refused
  (the client is opened down to security level 0 so that a refusal is the server's);
- which weak cipher suites it accepts over TLS 1.2: none of those without forward secrecy,
  CBC-mode or 3DES;
- whether its chain verifies to the PKI's root for the name asked (path validation by OpenSSL
  with host-name check), and how many days the certificate has left;
- the HSTS header on an HTTPS response, and that plain HTTP only redirects to HTTPS.

:func:`probe` returns a :class:`TlsEvidence`; :func:`tls_endpoint` asserts like the other checks
of :mod:`security.compliance.checks` and returns one line of evidence.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

#: versions a grade-3 endpoint must refuse and those it must accept
REFUSED_VERSIONS = ("TLSv1", "TLSv1.1")
ACCEPTED_VERSIONS = ("TLSv1.2", "TLSv1.3")
#: TLS 1.2 suites outside Mozilla's intermediate profile: no forward secrecy, CBC, 3DES
WEAK_CIPHERS = (
    "AES128-SHA",
    "AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-RSA-AES256-SHA",
    "DES-CBC3-SHA",
)
MIN_HSTS_SECONDS = 15_768_000  # six months
MIN_DAYS_LEFT = 7.0

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass
class TlsEvidence:
    host: str
    port: int
    server_name: str
    versions: dict[str, bool] = field(default_factory=dict)  # version -> accepted
    untested_versions: list[str] = field(default_factory=list)  # this client cannot speak them
    weak_ciphers_accepted: list[str] = field(default_factory=list)
    ciphers_untested: list[str] = field(default_factory=list)
    chain_ok: bool = False
    chain_error: str = ""
    protocol: str = ""
    cipher: str = ""
    serial: str = ""
    not_after: str = ""
    days_left: float = 0.0
    hsts: str = ""
    http_redirect: str | None = None  # Location of the plain-HTTP answer (None: not probed)
    http_status: int | None = None

    def problems(self, min_days: float = MIN_DAYS_LEFT) -> list[str]:
        out: list[str] = []
        for v in REFUSED_VERSIONS:
            if self.versions.get(v):
                out.append(f"{v} accepted")
        for v in ACCEPTED_VERSIONS:
            if v in self.versions and not self.versions[v]:
                out.append(f"{v} refused")
        if self.weak_ciphers_accepted:
            out.append("weak ciphers accepted: " + ", ".join(self.weak_ciphers_accepted))
        if not self.chain_ok:
            out.append(
                f"chain does not verify to the PKI for {self.server_name}: {self.chain_error}"
            )
        elif self.days_left < min_days:
            out.append(f"certificate has {self.days_left:.1f} days left (< {min_days:g})")
        age = _hsts_max_age(self.hsts)
        if age is None:
            out.append("no Strict-Transport-Security header")
        elif age < MIN_HSTS_SECONDS:
            out.append(f"HSTS max-age {age} < {MIN_HSTS_SECONDS}")
        if self.http_status is not None and not (
            self.http_status in (301, 302, 307, 308)
            and (self.http_redirect or "").startswith("https://")
        ):
            out.append(f"plain HTTP answers {self.http_status}, not a redirect to https")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def summary(self) -> str:
        accepted = [v for v, yes in self.versions.items() if yes]
        refused = [v for v, yes in self.versions.items() if not yes]
        parts = [
            f"{self.server_name} at {self.host}:{self.port}: accepts {', '.join(accepted) or '-'}",
            f"refuses {', '.join(refused) or '-'}",
            f"{len(WEAK_CIPHERS) - len(self.ciphers_untested) - len(self.weak_ciphers_accepted)}"
            " weak TLS 1.2 suites refused",
            f"chain to the PKI {'verified' if self.chain_ok else 'NOT verified'}"
            f" ({self.protocol} {self.cipher})",
            f"serial {self.serial}, {self.days_left:.1f} days left",
            f"HSTS {self.hsts or 'absent'}",
        ]
        if self.http_status is not None:
            parts.append(f"http -> {self.http_status} {self.http_redirect or ''}".rstrip())
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "server_name": self.server_name,
            "versions": self.versions,
            "untested_versions": self.untested_versions,
            "weak_ciphers_accepted": self.weak_ciphers_accepted,
            "ciphers_untested": self.ciphers_untested,
            "chain_ok": self.chain_ok,
            "chain_error": self.chain_error,
            "protocol": self.protocol,
            "cipher": self.cipher,
            "serial": self.serial,
            "not_after": self.not_after,
            "days_left": round(self.days_left, 2),
            "hsts": self.hsts,
            "http_status": self.http_status,
            "http_redirect": self.http_redirect,
            "problems": self.problems(),
        }


def _hsts_max_age(value: str) -> int | None:
    for part in value.split(";"):
        key, _, num = part.strip().partition("=")
        if key.lower() == "max-age" and num.strip().strip('"').isdigit():
            return int(num.strip().strip('"'))
    return None


def _probe_context() -> ssl.SSLContext:
    """A client that would speak anything (verification off): refusals are the server's."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def _handshake(ctx: ssl.SSLContext, host: str, port: int, name: str, timeout: float) -> bool:
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=name),
        ):
            return True
    except (ssl.SSLError, ConnectionResetError, ConnectionAbortedError):
        return False


def _version_offered(version: str, host: str, port: int, name: str, timeout: float) -> bool | None:
    """True accepted, False refused, None: this client cannot offer it."""
    ctx = _probe_context()
    try:
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is what is probed
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = _VERSIONS[version]
            ctx.maximum_version = _VERSIONS[version]
    except (ValueError, ssl.SSLError):
        return None
    return _handshake(ctx, host, port, name, timeout)


def _cipher_accepted(cipher: str, host: str, port: int, name: str, timeout: float) -> bool | None:
    ctx = _probe_context()
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.set_ciphers(f"{cipher}:@SECLEVEL=0")
    except ssl.SSLError:
        return None  # not compiled into this OpenSSL
    return _handshake(ctx, host, port, name, timeout)


def _http_get(sock: socket.socket, name: str) -> tuple[int, dict[str, str]]:
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: {name}\r\nUser-Agent: govcloud-tls-probe\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
    headers: dict[str, str] = {}
    for line in head[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers


def probe(
    host: str,
    port: int,
    server_name: str,
    ca_file: Path,
    *,
    http_port: int | None = None,
    timeout: float = 5.0,
    now: dt.datetime | None = None,
) -> TlsEvidence:
    """Probe ``host:port`` as ``server_name`` (SNI and the name checked); ``ca_file`` holds the
    PKI's root. ``http_port``: also check that plain HTTP only redirects."""
    ev = TlsEvidence(host, port, server_name)
    for version in (*REFUSED_VERSIONS, *ACCEPTED_VERSIONS):
        got = _version_offered(version, host, port, server_name, timeout)
        if got is None:
            ev.untested_versions.append(version)
        else:
            ev.versions[version] = got
    for cipher in WEAK_CIPHERS:
        got = _cipher_accepted(cipher, host, port, server_name, timeout)
        if got is None:
            ev.ciphers_untested.append(cipher)
        elif got:
            ev.weak_ciphers_accepted.append(cipher)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            ev.chain_ok = True
            ev.protocol = tls.version() or ""
            ev.cipher = (tls.cipher() or ("",))[0]
            der = tls.getpeercert(binary_form=True)
            if der:
                cert = x509.load_der_x509_certificate(der)
                ev.serial = f"{cert.serial_number:x}"
                ev.not_after = cert.not_valid_after_utc.isoformat()
                left = cert.not_valid_after_utc - (now or dt.datetime.now(dt.UTC))
                ev.days_left = left.total_seconds() / 86400
            _status, headers = _http_get(tls, server_name)
            ev.hsts = headers.get("strict-transport-security", "")
    except ssl.SSLCertVerificationError as exc:
        ev.chain_error = exc.verify_message or str(exc)
    except (ssl.SSLError, OSError) as exc:
        ev.chain_error = f"{type(exc).__name__}: {exc}"
    if http_port is not None:
        try:
            with socket.create_connection((host, http_port), timeout=timeout) as plain:
                ev.http_status, headers = _http_get(plain, server_name)
                ev.http_redirect = headers.get("location")
        except OSError as exc:
            ev.http_status, ev.http_redirect = 0, f"no answer ({exc})"
    return ev


def tls_endpoint(
    host: str,
    port: int,
    server_name: str,
    ca_file: Path,
    *,
    http_port: int | None = None,
    min_days: float = MIN_DAYS_LEFT,
) -> str:
    """The compliance check of one HTTPS endpoint (等保 grade 3, 通信传输): asserts, returns the
    evidence line."""
    ev = probe(host, port, server_name, ca_file, http_port=http_port)
    problems = ev.problems(min_days)
    assert not problems, f"{server_name} at {host}:{port}: " + "; ".join(problems)
    return ev.summary()


# -- the same evidence gathered on the endpoint's own host (the compliance suite) ------------

TLS_DIR = "/etc/govcloud-tls"  # where the tls_cert role installs certificates and the root
_CLIENT_OFF = "no protocols available"  # OpenSSL's own refusal: the version was not offered


def _s_client(host: Any, name: str, *flags: str) -> tuple[bool, str]:
    """One handshake with ``openssl s_client`` on the host against its own port 443."""
    r = host.run(
        f"timeout 10 openssl s_client -connect 127.0.0.1:443 -servername {name} "
        f"{' '.join(flags)} </dev/null"
    )
    return r.rc == 0, f"{r.stdout}\n{r.stderr}"


def _days_left(not_after: str, now: dt.datetime | None = None) -> float:
    """Days from now to an `openssl x509 -enddate` value (`notAfter=Jan  1 00:00:00 2027 GMT`)."""
    when = dt.datetime.strptime(
        " ".join(not_after.removeprefix("notAfter=").split()), "%b %d %H:%M:%S %Y GMT"
    ).replace(tzinfo=dt.UTC)
    return (when - (now or dt.datetime.now(dt.UTC))).total_seconds() / 86400


PG_PORT = 5432
_VERSION_FLAGS = (("TLSv1", "-tls1"), ("TLSv1.1", "-tls1_1"), ("TLSv1.2", "-tls1_2"),
                  ("TLSv1.3", "-tls1_3"))  # fmt: skip


def _versions(handshake: Callable[..., tuple[bool, str]]) -> list[tuple[str, bool, str]]:
    """(version, accepted, OpenSSL's output) for each version offered alone by ``handshake``
    (s_client's flags in, its result out), the client opened down to security level 0 so that
    a refusal is the server's."""
    out = []
    for version, flag in _VERSION_FLAGS:
        ok, text = handshake(flag, "-cipher", "'DEFAULT:@SECLEVEL=0'")
        assert _CLIENT_OFF not in text, f"this host's OpenSSL cannot offer {version}: untested"
        out.append((version, ok, text))
    return out


def _accepted_versions(handshake: Callable[..., tuple[bool, str]]) -> list[str]:
    """The versions ``handshake`` (see :func:`_versions`) got through, which must be TLS 1.2
    and 1.3 alone; a wanted version refused for want of a verifying chain says so."""
    accepted = []
    for version, ok, out in _versions(handshake):
        if ok:
            accepted.append(version)
        elif version in ACCEPTED_VERSIONS:
            why = next((ln.strip() for ln in out.splitlines() if "verify error" in ln), "")
            assert not why, f"the certificate does not verify to the PKI root: {why}"
    assert accepted == list(ACCEPTED_VERSIONS), f"accepts {', '.join(accepted) or 'nothing'}"
    return accepted


def _pg_s_client(host: Any, address: str, port: int, ca: str, *flags: str) -> tuple[bool, str]:
    """One TLS handshake with a PostgreSQL (STARTTLS), verified for ``address`` against ``ca``."""
    r = host.run(
        f"timeout 10 openssl s_client -starttls postgres -connect {address}:{port} "
        f"-CAfile {ca} -verify_ip {address} -verify_return_error {' '.join(flags)} </dev/null"
    )
    return r.rc == 0, f"{r.stdout}\n{r.stderr}"


def database_tls(host: Any, address: str, port: int, ca: str) -> str:
    """PostgreSQL at ``address:port``, seen by real clients on ``host``: a login without TLS is
    refused (psql, sslmode=disable), the certificate verifies to ``ca`` for the address
    (OpenSSL's s_client, STARTTLS), TLS 1.2 and 1.3 only, days left."""
    r = host.run(
        f"PGCONNECT_TIMEOUT=5 psql 'host={address} port={port} dbname=postgres "
        "user=govcloud_compliance sslmode=disable' -w -c 'select 1'"
    )
    assert r.rc != 0, "a login without TLS was let in"
    assert "no encryption" in r.stderr, (
        f"a login without TLS was not refused for want of it: {r.stderr.strip()[:200]}"
    )
    accepted = _accepted_versions(lambda *f: _pg_s_client(host, address, port, ca, *f))
    end = host.run(
        f"timeout 10 openssl s_client -starttls postgres -connect {address}:{port} "
        "</dev/null 2>/dev/null | openssl x509 -noout -enddate"
    )
    days = _days_left(end.stdout.strip())
    assert days >= MIN_DAYS_LEFT, f"{days:.1f} days left (renew: govcloud pki hosts)"
    return (
        f"postgresql://{address}:{port}: TLS only (a login without it is refused), "
        f"{', '.join(accepted)} (refuses TLSv1, TLSv1.1), chain to the PKI root for {address}, "
        f"{days:.0f} days left"
    )


def database_on_host(host: Any, ctx: Any) -> str:
    """The compliance check of a department host's database (通信传输): when PostgreSQL
    listens on the network, :func:`database_tls` against the host's own address."""
    listening = [s for s in host.socket.get_listening_sockets() if s.endswith(f":{PG_PORT}")]
    loopback = ("tcp://127.", "tcp://::1", "tcp://[::1]")
    if not [s for s in listening if not s.startswith(loopback)]:
        return f"no database listens on the network (port {PG_PORT}): nothing crosses a zone"
    assert ctx.address, "the plan gives this host no address to probe"
    return database_tls(host, ctx.address, PG_PORT, f"{TLS_DIR}/ca.crt")


def edge_on_host(host: Any, ctx: Any) -> str:
    """The compliance check of a hall edge (通信传输), with real TLS clients on the host itself
    (OpenSSL's s_client, curl): its certificate verifies to the PKI root for its name, TLS 1.2
    and 1.3 only, no weak suite, HSTS, plain HTTP only redirects, days left."""
    chains = host.run(f"ls {TLS_DIR}/*.fullchain.pem").stdout.split()
    assert chains, f"no certificate in {TLS_DIR} (the tls_cert role installs the edge's)"
    name = chains[0].rsplit("/", 1)[-1].removesuffix(".fullchain.pem")
    ca = f"{TLS_DIR}/ca.crt"
    assert host.file(ca).exists, f"no PKI root at {ca} to verify the chain against"
    r = host.run(
        f"curl -sS -o /dev/null -D - --max-time 5 --cacert {ca} "
        f"--resolve {name}:443:127.0.0.1 https://{name}/"
    )
    assert r.rc == 0, f"https://{name}/ does not verify to the PKI root: {r.stderr.strip()[:200]}"
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in r.stdout.splitlines()[1:])
    }
    hsts = headers.get("strict-transport-security", "")
    age = _hsts_max_age(hsts)
    assert age is not None and age >= MIN_HSTS_SECONDS, f"HSTS missing or short: {hsts!r}"
    r = host.run(
        "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 5 "
        f"--resolve {name}:80:127.0.0.1 http://{name}/x"
    )
    assert r.stdout.strip() == f"301 https://{name}/x", f"plain HTTP answers {r.stdout!r}"
    accepted = [v for v, ok, _ in _versions(lambda *f: _s_client(host, name, *f)) if ok]
    assert accepted == list(ACCEPTED_VERSIONS), f"accepts {', '.join(accepted) or 'nothing'}"
    weak = ":".join(WEAK_CIPHERS)
    ok, out = _s_client(host, name, "-tls1_2", "-cipher", f"'{weak}:@SECLEVEL=0'")
    assert not ok, "accepts a weak TLS 1.2 suite: " + next(
        (line.strip() for line in out.splitlines() if "Cipher" in line), "?"
    )
    end = host.run(f"openssl x509 -noout -enddate -in {TLS_DIR}/{name}.crt").stdout.strip()
    days = _days_left(end)
    assert days >= MIN_DAYS_LEFT, f"{name}: {days:.1f} days left (renew: govcloud pki hosts)"
    return (
        f"https://{name}: {', '.join(accepted)} only (refuses TLSv1, TLSv1.1), no weak suite, "
        f"chain to the PKI root, {days:.0f} days left, HSTS max-age={age}, http only redirects; "
        + edge_to_cloud(host, ca)
    )


EDGE_SITE = "/etc/nginx/sites-enabled/govcloud-hall.conf"


def edge_to_cloud(host: Any, ca: str) -> str:
    """The edge's leg into the cloud (通信传输 across zones): nginx verifies the pods'
    certificate, and at least one node's port serves TLS that verifies to ``ca`` for the
    service's name; none of them answers plain HTTP."""
    conf = host.file(EDGE_SITE).content_string
    for setting in ("proxy_pass https://", "proxy_ssl_verify on;"):
        assert setting in conf, f"{EDGE_SITE}: no {setting!r}: the hall is reached without TLS"
    name = (_value(conf, "proxy_ssl_name") or "").rstrip(";")
    upstreams = [
        line.split()[1] for line in conf.splitlines() if line.strip().startswith("server ")
        and ":" in line.split()[1]
    ]  # fmt: skip
    assert name and upstreams, f"{EDGE_SITE}: no proxy_ssl_name or no upstream"
    serving = []
    for upstream in upstreams:
        r = host.run(
            f"timeout 5 openssl s_client -connect {upstream} -verify_hostname {name} "
            f"-CAfile {ca} -verify_return_error </dev/null"
        )
        if r.rc == 0:
            serving.append(upstream)
        plain = host.run(
            f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 http://{upstream}/"
        )
        assert plain.stdout.strip() in ("", "000"), (
            f"{upstream} answers plain HTTP ({plain.stdout.strip()})"
        )
    assert serving, f"no node's port serves TLS verifying for {name}: {', '.join(upstreams)}"
    return f"into the cloud over TLS to {name} ({len(serving)} of {len(upstreams)} nodes serving)"


def _value(text: str, key: str) -> str | None:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == key:
            return parts[1]
    return None


# -- log shipping (RFC 5425) ------------------------------------------------------------------

LOG_TLS_PORT = 6514
LOG_TLS_DIR = f"{TLS_DIR}/log"  # the logship role's certificates and root
LOG_FORWARD = "/etc/rsyslog.d/90-govcloud-forward.conf"


def _log_cert(host: Any) -> str:
    """This host's log certificate stem, from the certificates the logship role installed."""
    chains = host.run(f"ls {LOG_TLS_DIR}/*.fullchain.pem").stdout.split()
    assert chains, f"no log certificate in {LOG_TLS_DIR} (role logship installs it)"
    return chains[0].rsplit("/", 1)[-1].removesuffix(".fullchain.pem")


def _cert_verifies(host: Any, name: str) -> float:
    """Days left of ``name``'s certificate, which must verify to the PKI root for TLS
    client and server use."""
    cert, ca = f"{LOG_TLS_DIR}/{name}.crt", f"{LOG_TLS_DIR}/ca.crt"
    r = host.run(
        f"openssl verify -CAfile {ca} -untrusted {LOG_TLS_DIR}/{name}.chain.pem "
        f"-purpose sslclient {cert}"
    )
    assert r.rc == 0, (
        f"{cert} does not verify to the PKI root: {(r.stdout + r.stderr).strip()[:200]}"
    )
    days = _days_left(host.run(f"openssl x509 -noout -enddate -in {cert}").stdout.strip())
    assert days >= MIN_DAYS_LEFT, f"{name}: {days:.1f} days left (renew: govcloud pki hosts)"
    return days


def log_shipping_tls(host: Any, ctx: Any) -> str:
    """A sender (安全审计, 通信传输): every message goes to the log host over TLS only, showing
    this host's certificate from the PKI and asking for the log host's; the live connection's
    state is part of the evidence."""
    f = host.file(LOG_FORWARD)
    assert f.exists, "no forwarding to the central log host (it ships over TLS once certified)"
    text = f.content_string
    assert f'target="{ctx.loghost}"' in text, "forwarding goes elsewhere"
    assert f'port="{LOG_TLS_PORT}"' in text, f"forwarding is not to the TLS port {LOG_TLS_PORT}"
    for setting in ('StreamDriverMode="1"', 'StreamDriverAuthMode="x509/name"'):
        assert setting in text, f"forwarding lacks {setting}: not TLS with a verified peer"
    assert host.service("rsyslog").is_running, "rsyslog is not running"
    name = _cert_verifies(host, _log_cert(host))
    live = host.run(f"ss -Htn state established dst {ctx.loghost} dport = :{LOG_TLS_PORT}")
    now = "connected" if live.stdout.strip() else "not connected at this moment (queued)"
    return (
        f"rsyslog ships every message to {ctx.loghost}:{LOG_TLS_PORT} over TLS (x509/name), "
        f"its own certificate verifies to the PKI ({name:.0f} days left); {now}"
    )


def _log_s_client(host: Any, address: str, name: str, *flags: str) -> tuple[bool, str]:
    """One TLS handshake with the log host at ``address``, verified for ``name``."""
    r = host.run(
        f"timeout 10 openssl s_client -connect {address}:{LOG_TLS_PORT} -verify_hostname {name} "
        f"-CAfile {LOG_TLS_DIR}/ca.crt -verify_return_error {' '.join(flags)} </dev/null"
    )
    return r.rc == 0, f"{r.stdout}\n{r.stderr}"


def log_receiver_tls(host: Any, ctx: Any) -> str:
    """The log host (安全审计, 通信传输): receives over TLS only (nothing on TCP or UDP 514),
    TLS 1.2/1.3, its certificate verifies to the PKI for its name, and a sender without a
    certificate of its own is refused, all seen by OpenSSL's client on the host."""
    plain = [
        s
        for s in host.socket.get_listening_sockets()
        if s.rsplit(":", 1)[-1] == "514" and not s.startswith("unix")
    ]
    assert not plain, f"receives without TLS: {', '.join(plain)}"
    assert host.socket(f"tcp://0.0.0.0:{LOG_TLS_PORT}").is_listening, (
        f"not receiving on TCP {LOG_TLS_PORT}"
    )
    name = _log_cert(host)
    address = ctx.address or "127.0.0.1"
    # a sender shows its chain, as rsyslog does (the log host trusts the root alone)
    certs = (
        f"-cert {LOG_TLS_DIR}/{name}.crt -key {LOG_TLS_DIR}/{name}.key "
        f"-cert_chain {LOG_TLS_DIR}/{name}.chain.pem"
    )
    accepted = _accepted_versions(lambda *f: _log_s_client(host, address, name, certs, *f))
    anonymous, _ = _log_s_client(host, address, name, "-tls1_2")
    assert not anonymous, "a sender without a certificate was let in"
    days = _cert_verifies(host, name)
    return (
        f"receives on {LOG_TLS_PORT} over TLS only ({', '.join(accepted)}; refuses TLSv1, "
        f"TLSv1.1 and senders without a certificate; nothing on 514), certificate {name} "
        f"verifies to the PKI root, {days:.0f} days left"
    )
