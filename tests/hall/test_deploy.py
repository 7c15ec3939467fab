"""The files that put the hall on a lab host: Debian packages, systemd unit, nginx, env."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

pytestmark = pytest.mark.unit

HALL = Path(__file__).resolve().parents[2] / "clusters" / "apps" / "hall"


def _render(name: str, **values: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string((HALL / "deploy" / name).read_text(encoding="utf-8")).render(**values)


def test_debian_packages_cover_every_runtime_import() -> None:
    packages = {
        line.strip()
        for line in (HALL / "debian-packages.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"python3-aiohttp", "python3-asyncpg", "postgresql", "nginx"} <= packages
    # the app itself imports nothing else outside the standard library
    runtime = ["app.py", "auth.py", "codes.py", "observe.py", "schema.py", "seed.py", "__main__.py"]
    runtime += ["pages.py", "views.py", "markup.py", "assets.py"]  # the web pages
    runtime += ["cache.py"]  # the catalog's read cache
    third_party = set()
    for name in runtime:
        for line in (HALL / name).read_text().splitlines():
            words = line.split()
            if line.startswith(("import ", "from ")) and not words[1].startswith("."):
                top = words[1].split(".")[0]
                if top not in {
                    "__future__",
                    "argparse",
                    "asyncio",
                    "base64",
                    "bisect",
                    "dataclasses",
                    "datetime",
                    "functools",
                    "hashlib",
                    "hmac",
                    "json",
                    "os",
                    "random",
                    "re",
                    "secrets",
                    "ssl",
                    "sys",
                    "time",
                    "typing",
                    "uuid",
                    "collections",
                    "html",
                    "urllib",
                }:
                    third_party.add(top)
    assert third_party == {"aiohttp", "asyncpg"}


def test_systemd_unit_runs_one_instance_per_port(tmp_path: Path) -> None:
    unit = _render("govcloud-hall@.service.j2")
    assert "Environment=HALL_PORT=%i" in unit
    assert "ExecStartPre=/usr/bin/python3 -m hall migrate" in unit
    assert "ExecStart=/usr/bin/python3 -m hall serve" in unit
    assert "EnvironmentFile=/etc/govcloud/hall/hall.env" in unit
    if shutil.which("systemd-analyze"):
        path = tmp_path / "govcloud-hall@.service"
        path.write_text(_render("govcloud-hall@.service.j2", user="root"))
        proc = subprocess.run(
            ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr


def test_nginx_spreads_over_the_instances_and_fences_metrics() -> None:
    conf = _render("hall.nginx.conf.j2", ports=[8081, 8082, 8083], mgmt_cidr="10.255.0.0/24")
    assert conf.count("server 127.0.0.1:808") == 3
    assert "proxy_set_header X-Real-IP $remote_addr;" in conf
    assert "allow 10.255.0.0/24;" in conf and "deny all;" in conf
    assert conf.count("{") == conf.count("}")


def test_env_file_needs_the_secrets() -> None:
    with pytest.raises(jinja2.UndefinedError):
        _render("hall.env.j2")
    env = _render("hall.env.j2", admin_token="a" * 32, metrics_token="m" * 32)
    assert "HALL_ADMIN_TOKEN=" + "a" * 32 in env and "HALL_STAFF_AUTH=local" in env
