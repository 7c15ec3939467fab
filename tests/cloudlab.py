"""The lab's cluster, applied once per test run on the configured lab (session-scoped), with
the tenants applied to it and a small app image in the registry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAB_SPEC = ROOT / "examples" / "lab.yaml"


def govcloud(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govcloud", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@dataclass
class Cloud:
    target: Any  # clusters.cloud.apply.ClusterTarget
    first: Any  # the first apply's result
    image_dir: Path

    @property
    def admin(self) -> Path:
        return Path(self.target.kubeconfig)

    def department(self, code: str) -> Path:
        from clusters.cloud.pki import department_kubeconfig

        return department_kubeconfig(self.target.plan, code)

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        from govcloud.toolchain.tools import bin_dir

        return subprocess.run(
            [str(bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig or self.admin}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def push(self, code: str, name: str, tag: str, page: str = "hello") -> str:
        """A busybox web server image (static busybox from the machine, one page, /readyz)."""
        d = self.image_dir / f"{code}-{name}-{tag}"
        (d / "www").mkdir(parents=True, exist_ok=True)
        (d / "www" / "index.html").write_text(f"{page}\n")
        (d / "www" / "readyz").write_text("ok\n")
        definition = {
            "name": f"{code}/{name}",
            "tag": tag,
            "files": [
                {"src": "/bin/busybox", "dest": "/bin/busybox"},
                {"src": "www", "dest": "/www"},
            ],
            "entrypoint": ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
            "ports": [8080],
        }  # fmt: skip
        (d / "image.yaml").write_text(yaml.safe_dump(definition))
        r = govcloud("images", "push", str(d / "image.yaml"), "--spec", str(LAB_SPEC), "--json")
        assert r.returncode == 0, r.stderr
        return str(json.loads(r.stdout)["image"])

    def app_spec(self, code: str, name: str, image: str, **extra: Any) -> Path:
        app = {
            "name": name,
            "department": code,
            "environment": "prod",
            "image": image,
            "replicas": 2,
            "ports": [{"name": "http", "port": 8080}],
            "resources": {"cpu": "50m", "memory": "32Mi"},
            "health": {"path": "/readyz", "port": "http", "initial_delay_seconds": 1,
                       "period_seconds": 2},
            **extra,
        }  # fmt: skip
        path = (
            self.image_dir / f"app-{code}-{name}-{abs(hash(json.dumps(app, sort_keys=True)))}.yaml"
        )
        path.write_text(yaml.safe_dump(app))
        return path

    def deploy(self, app: Path, code: str, *more: str) -> subprocess.CompletedProcess[str]:
        return govcloud(
            "app", "deploy", str(app), "--spec", str(LAB_SPEC),
            "--kubeconfig", str(self.department(code)), "--json", *more,
        )  # fmt: skip

    def status(self, app: Path, code: str) -> dict[str, Any]:
        r = govcloud("app", "status", str(app), "--kubeconfig", str(self.department(code)),
                     "--json")  # fmt: skip
        assert r.returncode in (0, 1), r.stderr
        out: dict[str, Any] = json.loads(r.stdout)
        return out

    def exec(self, namespace: str, pod: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.kubectl("-n", namespace, "exec", pod, "--", "/bin/busybox", *argv)

    # Debian's static busybox crashes (SIGSEGV) where glibc would load NSS modules (wget, and
    # nslookup on its way out), so names are resolved with nslookup's own DNS client and
    # pages fetched with nc.
    def resolve(self, namespace: str, pod: str, name: str) -> list[str]:
        """The addresses the cluster DNS gives ``name``, asked from inside ``pod``."""
        out = self.exec(namespace, pod, "nslookup", name).stdout
        answer = out.split("Name:", 1)[1] if "Name:" in out else ""
        return [line.split()[-1] for line in answer.splitlines() if line.startswith("Address")]

    def fetch(
        self, namespace: str, pod: str, host: str, port: int = 8080, wait: int = 3
    ) -> str | None:
        """The body of ``http://host:port/`` fetched from inside ``pod``; None if nothing came
        back (refused, dropped, or a name that does not resolve)."""
        addresses = [host] if host[0].isdigit() else self.resolve(namespace, pod, host)
        if not addresses:
            return None
        request = (
            f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w {wait} {addresses[0]} {port}"
        )
        r = self.exec(namespace, pod, "sh", "-c", request)
        if r.returncode != 0 or " 200 " not in r.stdout:
            return None
        return r.stdout.split("\n\n", 1)[-1].strip()  # text mode: CRLF arrives as LF


@pytest.fixture(scope="session")
def cloud(configured_lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    from clusters.cloud.apply import apply, missing_tools, prepare
    from govcloud.spec import load_spec
    from infra.hosts.apply import lab_credentials

    missing = missing_tools()
    if missing:
        pytest.fail(f"the cluster's tools are not built: {missing} (make tools)")
    target = prepare(load_spec(LAB_SPEC), lab_credentials())
    first = apply(target)
    assert first.run.ok, [f.__dict__ for f in first.run.failures]
    assert first.ok, first.nodes
    r = govcloud("tenants", "apply", str(LAB_SPEC), "--kubeconfig", str(target.kubeconfig))
    assert r.returncode == 0, r.stdout + r.stderr
    yield Cloud(target, first, tmp_path_factory.mktemp("images"))
