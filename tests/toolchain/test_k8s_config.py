"""The control plane's pure parts: configuration, arguments, kubeconfig, prepared files."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from govcloud.errors import InputError
from govcloud.toolchain import k8s, pki

pytestmark = pytest.mark.unit


def flags(args: list[str]) -> dict[str, str]:
    out = {}
    for a in args:
        assert a.startswith("--") and "=" in a, a
        k, v = a[2:].split("=", 1)
        assert k not in out, f"--{k} given twice"
        out[k] = v
    return out


@pytest.fixture
def cfg(tmp_path: Path) -> k8s.ClusterConfig:
    return k8s.ClusterConfig(
        tmp_path / "k8s", api_port=20443, etcd_port=20379, controller_manager_port=20444
    )


def test_apiserver_is_loopback_tls_rbac_with_tenant_admission(cfg: k8s.ClusterConfig) -> None:
    f = flags(k8s.apiserver_args(cfg))
    assert f["bind-address"] == f["advertise-address"] == "127.0.0.1"
    assert f["secure-port"] == "20443"
    assert f["authorization-mode"] == "RBAC"
    assert f["anonymous-auth"] == "false"
    assert set(f["enable-admission-plugins"].split(",")) >= {
        "NamespaceLifecycle",
        "LimitRanger",
        "ResourceQuota",
        "PodSecurity",
        "ServiceAccount",
    }
    assert f["etcd-servers"] == "https://127.0.0.1:20379"
    assert f["client-ca-file"] == str(cfg.cert("ca"))
    assert f["service-account-signing-key-file"].endswith("service-account.key")


def test_etcd_requires_client_certificates_on_loopback(cfg: k8s.ClusterConfig) -> None:
    f = flags(k8s.etcd_args(cfg))
    assert f["listen-client-urls"] == "https://127.0.0.1:20379"
    assert f["listen-peer-urls"] == "https://127.0.0.1:20380"
    assert f["client-cert-auth"] == f["peer-client-cert-auth"] == "true"
    assert f["data-dir"] == str(cfg.etcd_data)


def test_every_path_argument_is_inside_the_state_dir(cfg: k8s.ClusterConfig) -> None:
    binaries = {c: Path(f"/opt/{c}") for c in k8s.COMPONENTS}
    lines = k8s.command_lines(cfg, binaries)
    assert [Path(v[0]).name for v in lines.values()] == list(k8s.COMPONENTS)
    for argv in lines.values():
        for k, v in flags(argv[1:]).items():
            if v.startswith("/"):
                assert Path(v).is_relative_to(cfg.state_dir), v
            # Nothing but loopback is ever addressed (the issuer is a name, not an address).
            if "://" in v and k != "service-account-issuer":
                assert "://127.0.0.1:" in v, v


@pytest.mark.parametrize(
    ("ports", "fragment"),
    [
        ({"api_port": 80}, "1024..65535"),
        ({"etcd_port": 65535}, "1024..65535"),  # its peer port would be 65536
        ({"api_port": 20000, "controller_manager_port": 20000}, "must all differ"),
        ({"api_port": 20001, "etcd_port": 20000}, "must all differ"),  # peer = 20001
    ],
)
def test_bad_ports_are_input_errors(tmp_path: Path, ports: dict[str, int], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        k8s.ClusterConfig(tmp_path, **ports)


def test_kubeconfig_points_at_the_server_with_client_certs(cfg: k8s.ClusterConfig) -> None:
    kc = k8s.kubeconfig(cfg, "someone", "admin")
    assert kc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:20443"
    assert kc["users"][0]["user"]["client-key"] == str(cfg.key("admin"))
    assert kc["current-context"] == kc["contexts"][0]["name"]


def test_prepare_makes_a_consistent_private_state_dir(cfg: k8s.ClusterConfig) -> None:
    k8s.prepare(cfg)
    assert stat.S_IMODE(cfg.state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(cfg.etcd_data.stat().st_mode) == 0o700
    ca = pki.load_cert(cfg.cert("ca"))
    for req in k8s.cert_requests():
        pki.load_cert(cfg.cert(req.name)).verify_directly_issued_by(ca)
        assert stat.S_IMODE(cfg.key(req.name).stat().st_mode) == 0o600
    kc = yaml.safe_load(cfg.kubeconfig.read_text())
    assert Path(kc["users"][0]["user"]["client-certificate"]).exists()
    assert stat.S_IMODE(cfg.kubeconfig.stat().st_mode) == 0o600
    policy = yaml.safe_load(cfg.audit_policy.read_text())
    assert policy["kind"] == "Policy"
    # The saved ports are what a later `down`/`status` uses.
    assert json.loads((cfg.state_dir / "cluster.json").read_text())["api_port"] == 20443
    again = k8s.ClusterConfig.load(cfg.state_dir)
    assert again == cfg
    # Idempotent: a second prepare keeps the CA.
    serial = ca.serial_number
    k8s.prepare(cfg)
    assert pki.load_cert(cfg.cert("ca")).serial_number == serial


def test_damaged_saved_config_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text('{"api_port": "x"}')
    with pytest.raises(InputError, match="damaged"):
        k8s.ClusterConfig.load(tmp_path)


def test_status_of_a_stopped_plane(cfg: k8s.ClusterConfig) -> None:
    st = k8s.status(cfg)
    assert st["ready"] is False
    assert all(not c["running"] for c in st["components"].values())
    assert k8s.down(cfg) == {c: "not running" for c in reversed(k8s.COMPONENTS)}


def test_a_pid_file_naming_a_stranger_is_not_trusted(cfg: k8s.ClusterConfig) -> None:
    cfg.run.mkdir(parents=True)
    cfg.pid_file("etcd").write_text("1\n")  # init: alive, but not ours
    assert k8s.running_pid(cfg, "etcd") is None
    assert k8s.down(cfg)["etcd"] == "not running"
    assert not cfg.pid_file("etcd").exists()


def test_down_stops_exactly_our_process(tmp_path: Path) -> None:
    """A process counts as ours by its name and an argument inside our state dir; a sibling
    directory whose name merely starts the same is not ours."""
    fake = tmp_path / "bin" / "etcd"
    fake.parent.mkdir()
    fake.symlink_to(sys.executable)  # a process whose argv[0] is .../etcd
    cfg = k8s.ClusterConfig(tmp_path / "k8s0")
    sibling = k8s.ClusterConfig(tmp_path / "k8s")
    proc = subprocess.Popen(
        [str(fake), "-c", "import time; time.sleep(60)", f"--data-dir={cfg.state_dir}/etcd"]
    )
    try:
        deadline = time.monotonic() + 10
        while not k8s._is_ours(cfg, proc.pid, "etcd") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert k8s._is_ours(cfg, proc.pid, "etcd")
        assert not k8s._is_ours(sibling, proc.pid, "etcd")
        assert not k8s._is_ours(cfg, proc.pid, "kube-apiserver")
        cfg.run.mkdir(parents=True)
        cfg.pid_file("etcd").write_text(f"{proc.pid}\n")
        sibling.run.mkdir(parents=True)
        sibling.pid_file("etcd").write_text(f"{proc.pid}\n")
        assert k8s.down(sibling)["etcd"] == "not running"
        assert proc.poll() is None
        assert k8s.down(cfg)["etcd"] == "stopped"
        assert proc.wait(timeout=10) == -signal.SIGTERM
        assert not cfg.pid_file("etcd").exists()
    finally:
        proc.kill()
        proc.wait()
