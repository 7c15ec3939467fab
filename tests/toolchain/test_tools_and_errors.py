"""Finding tools, and what a user sees when one is missing or an input is bad: a message that
names the missing piece and how to get it, an exit code, never a traceback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from govcloud.errors import OperationError
from govcloud.toolchain import tools
from govcloud.toolchain.pulumi import LocalBackend, project_root

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def fake_tool(directory: Path, name: str, output: str) -> Path:
    """A stand-in executable that only prints a version line (tests the PATH policy)."""
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / name
    p.write_text(f"#!/bin/sh\necho '{output}'\n")
    p.chmod(0o755)
    return p


@pytest.fixture
def empty_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOVCLOUD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    return tmp_path


def test_missing_tool_names_itself_and_make_tools(empty_env: Path) -> None:
    with pytest.raises(OperationError) as exc:
        tools.locate("kube-apiserver")
    msg = str(exc.value)
    assert "kube-apiserver not found" in msg
    assert "make tools" in msg and "k8s.io/kubernetes" in msg


def test_too_old_tool_on_path_is_refused_with_its_version(empty_env: Path) -> None:
    fake_tool(empty_env / "path", "kubectl", "Client Version: v1.32.4-dispatcher")
    with pytest.raises(OperationError, match=r"reports 1\.32\.4, older than 1\.35\.0"):
        tools.locate("kubectl")


def test_recent_tool_on_path_is_used(empty_env: Path) -> None:
    p = fake_tool(empty_env / "path", "etcd", "etcd Version: 3.6.8")
    assert tools.locate("etcd") == p


def test_cache_bin_wins_over_path(empty_env: Path) -> None:
    fake_tool(empty_env / "path", "etcd", "etcd Version: 3.6.8")
    cached = fake_tool(empty_env / "cache" / "bin", "etcd", "etcd Version: 3.6.8")
    assert tools.locate("etcd") == cached
    assert tools.tool_env({"PATH": "/x"})["PATH"].split(os.pathsep)[0] == str(cached.parent)


def test_unknown_tool() -> None:
    with pytest.raises(OperationError, match="unknown tool"):
        tools.locate("helm")


def govcloud(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govcloud", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_k8s_up_without_tools_says_what_is_missing(empty_env: Path) -> None:
    env = {**os.environ, "GOVCLOUD_K8S_DIR": str(empty_env / "k8s")}
    r = govcloud(env, "k8s", "up")
    assert r.returncode == 1, r.stderr
    assert "not found" in r.stderr and "make tools" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_k8s_bad_port_is_exit_2(empty_env: Path) -> None:
    env = {**os.environ, "GOVCLOUD_K8S_DIR": str(empty_env / "k8s")}
    r = govcloud(env, "k8s", "up", "--api-port", "80")
    assert r.returncode == 2
    assert "1024..65535" in r.stderr and "Traceback" not in r.stderr


def test_k8s_status_json_when_stopped(empty_env: Path) -> None:
    env = {**os.environ, "GOVCLOUD_K8S_DIR": str(empty_env / "k8s")}
    r = govcloud(env, "k8s", "status", "--json")
    assert r.returncode == 1
    assert '"ready": false' in r.stdout


def test_build_script_refuses_unknown_arguments() -> None:
    r = subprocess.run(
        [str(ROOT / "toolchain" / "build"), "--bogus"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 2 and "unknown argument '--bogus'" in r.stderr


def test_build_check_on_an_empty_cache_lists_what_is_missing(empty_env: Path) -> None:
    env = {**os.environ, "GOVCLOUD_CACHE": str(empty_env / "cache"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [str(ROOT / "toolchain" / "build"), "--check"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 1
    assert "missing or stale:" in r.stdout
    for tool in ("pulumi", "kube-apiserver", "etcd"):
        assert tool in r.stdout.split("missing or stale:")[1]


# --- the local Pulumi backend ------------------------------------------------------------------


def test_passphrase_is_generated_once_private(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path / "state")
    b.ensure()
    pf = b.passphrase_file
    assert stat.S_IMODE(pf.stat().st_mode) == 0o600
    first = pf.read_text()
    assert len(first.strip()) >= 40
    b.ensure()
    assert pf.read_text() == first
    assert LocalBackend(tmp_path / "other").passphrase_file.exists() is False


def test_backend_env(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path / "state")
    env = b.env(
        python=Path("/venv/bin/python"),
        base={"PATH": "/usr/bin", "PULUMI_CONFIG_PASSPHRASE": "leak"},
    )
    assert env["PULUMI_BACKEND_URL"] == f"file://{(tmp_path / 'state' / 'pulumi').resolve()}"
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"].endswith("pulumi-passphrase")
    assert "PULUMI_CONFIG_PASSPHRASE" not in env
    assert env["PULUMI_PYTHON_CMD"] == "/venv/bin/python"
    assert env["PATH"].split(os.pathsep)[:2] == ["/venv/bin", str(tools.bin_dir())]


def test_project_root_is_where_pulumi_yaml_is(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: x\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert project_root(deep) == tmp_path.resolve()
    assert project_root(ROOT / "govcloud") == ROOT
