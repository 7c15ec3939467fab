"""A local OpenBao dev server with the service PKI set up as `identity apply` does, and throwaway
nginx servers on loopback ports whose HTTPS server includes the tls_cert role's TLS snippet."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest

from govcloud.spec import load_spec
from security.openbao.client import Bao, Endpoint
from security.pki.plan import PkiPlan, make_pki_plan
from security.pki.root import RootPaths
from security.pki.setup import ensure_pki
from tests.baodev import ROOT_TOKEN, dev_openbao
from tests.toolchain.conftest import free_ports

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "examples" / "lab.yaml"
SNIPPET = ROOT / "playbooks" / "roles" / "tls_cert" / "templates" / "nginx-tls.conf.j2"
EDGE_NAME = "zwfw.guizhou.gov.cn"


@dataclass
class Pki:
    bao: Bao
    plan: PkiPlan
    root: RootPaths
    state: Path


@pytest.fixture(scope="session")
def bao_dev() -> Iterator[Bao]:
    """A root-token client on an in-memory OpenBao dev server on loopback."""
    with dev_openbao() as addr:
        yield Bao(Endpoint(addr), ROOT_TOKEN)


@pytest.fixture(scope="session")
def pki(bao_dev: Bao, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The lab spec's PKI on the dev server: offline root in a throwaway state directory."""
    state = tmp_path_factory.mktemp("state")
    plan = make_pki_plan(load_spec(LAB))
    root = RootPaths.under(state)
    ensure_pki(bao_dev, plan, root)
    return Pki(bao_dev, plan, root, state)


@dataclass
class Nginx:
    conf: Path
    http_port: int
    https_port: int
    proc: subprocess.Popen[bytes]

    def reload(self) -> None:
        subprocess.run(
            ["nginx", "-p", str(self.conf.parent), "-c", str(self.conf),
             "-e", str(self.conf.parent / "error.log"), "-s", "reload"],
            check=True, capture_output=True,
        )  # fmt: skip


def render_snippet(cert_dir: Path, name: str) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(SNIPPET.read_text()).render(
        tls_cert_dest_dir=str(cert_dir), tls_cert_name=name, tls_cert_nginx_hsts_seconds=63072000
    )


def servers(name: str, http_port: int, https_port: int, snippet: Path, site: Path) -> str:
    """A site as the roles write one: plain HTTP only redirects, HTTPS includes the snippet."""
    return (
        f"server {{\n    listen 127.0.0.1:{http_port};\n    server_name {name};\n"
        f"    location / {{ return 301 https://$host:{https_port}$request_uri; }}\n}}\n"
        f"server {{\n    listen 127.0.0.1:{https_port} ssl;\n    server_name {name};\n"
        f"    include {snippet};\n    include {site};\n}}\n"
    )


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[Path, str], Nginx]]:
    """Start nginx (its own prefix, config and pid in a temp dir) serving the snippet for the
    certificate ``name`` in ``cert_dir``."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is missing: apt-get install -y nginx-light")
    started: list[Nginx] = []

    def start(cert_dir: Path, name: str) -> Nginx:
        http_port, https_port = free_ports(2)
        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        site = prefix / "site.conf"
        site.write_text('location / {\n    return 200 "hall ok\\n";\n}\n')
        snippet = prefix / "tls-params.conf"
        snippet.write_text(render_snippet(cert_dir, name))
        (prefix / "tls.conf").write_text(servers(name, http_port, https_port, snippet, site))
        conf = prefix / "nginx.conf"
        temp = "".join(
            f"    {kind}_temp_path {prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf.write_text(
            f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
            "events { worker_connections 256; }\n"
            f"http {{\n    access_log off;\n{temp}    include {prefix / 'tls.conf'};\n}}\n"
        )
        proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        server = Nginx(conf, http_port, https_port, proc)
        started.append(server)
        deadline = time.monotonic() + 15
        import socket

        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"nginx did not start: {err}")
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                return server
            except OSError:
                time.sleep(0.1)
        pytest.fail("nginx did not listen")

    yield start
    for server in started:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
