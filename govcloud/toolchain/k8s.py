"""A local Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

Everything is TLS with a CA made here (etcd requires client certificates too); the API server
authorizes with RBAC and runs the admission plugins multi-tenancy relies on (NamespaceLifecycle,
LimitRanger, ServiceAccount, ResourceQuota, PodSecurity) and writes an audit log. The controller
manager keeps quota usage, service accounts and namespace deletion working. No kubelet: pods are
admitted and stored, never run.

State lives in one directory (``$GOVCLOUD_K8S_DIR``, default ``$GOVCLOUD_CACHE/k8s``): ``pki/``,
``etcd/`` (data), ``logs/``, ``run/`` (pid files), ``cluster.json`` (ports) and
``admin.kubeconfig``. The processes run in their own sessions and outlive the command that started
them; :func:`down` stops exactly the processes whose pid files it wrote (checked against
``/proc/<pid>/cmdline``), so nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from govcloud.errors import InputError, OperationError
from govcloud.paths import cache_dir
from govcloud.toolchain import pki
from govcloud.toolchain.tools import locate

HOST = "127.0.0.1"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` service's address: a name in the serving cert only
ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMISSION_PLUGINS = (
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "ResourceQuota",
    "PodSecurity",
)
ADMIN_USER = "govcloud-admin"

AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # Secrets and tokens: who touched them, never their content.
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version"]},
        {"level": "None", "verbs": ["get", "list", "watch"]},
        {"level": "Request"},
    ],
}


def default_state_dir() -> Path:
    return Path(os.environ.get("GOVCLOUD_K8S_DIR") or cache_dir() / "k8s")


@dataclass(frozen=True)
class ClusterConfig:
    """Where the control plane keeps its state and which loopback ports it uses."""

    state_dir: Path
    api_port: int = 16443
    etcd_port: int = 12379  # the peer port is etcd_port + 1
    controller_manager_port: int = 16444

    def __post_init__(self) -> None:
        ports = {
            "api_port": self.api_port,
            "etcd_port": self.etcd_port,
            "etcd peer port (etcd_port + 1)": self.etcd_port + 1,
            "controller_manager_port": self.controller_manager_port,
        }
        bad = [f"{k}={v}" for k, v in ports.items() if not 1024 <= v <= 65535]
        if bad:
            raise InputError(f"ports must be in 1024..65535: {', '.join(bad)}")
        if len(set(ports.values())) != len(ports):
            raise InputError(f"ports must all differ: {ports}")

    @property
    def etcd_peer_port(self) -> int:
        return self.etcd_port + 1

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.api_port}"

    # paths
    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run(self) -> Path:
        return self.state_dir / "run"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def cm_kubeconfig(self) -> Path:
        return self.state_dir / "controller-manager.kubeconfig"

    @property
    def audit_policy(self) -> Path:
        return self.state_dir / "audit-policy.yaml"

    def cert(self, name: str) -> Path:
        return self.pki / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / f"{name}.key"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["state_dir"] = str(self.state_dir)
        return d

    @classmethod
    def load(cls, state_dir: Path | None = None) -> ClusterConfig:
        """The config the last ``up`` saved in ``state_dir``, else the defaults."""
        state_dir = state_dir or default_state_dir()
        saved = state_dir / "cluster.json"
        if saved.exists():
            try:
                data = json.loads(saved.read_text())
                return cls(
                    state_dir=state_dir,
                    api_port=int(data["api_port"]),
                    etcd_port=int(data["etcd_port"]),
                    controller_manager_port=int(data["controller_manager_port"]),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{saved} is damaged ({exc}); remove it to start over") from exc
        return cls(state_dir=state_dir)


# --- pure parts: certificates wanted, arguments, kubeconfig ------------------------------------


def cert_requests() -> list[pki.CertRequest]:
    local = ("localhost",)
    return [
        # etcd's gRPC gateway dials etcd itself with the serving certificate: it needs both usages.
        pki.CertRequest(
            "etcd-server", "etcd", dns_names=local, ip_addresses=(HOST,), server=True, client=True
        ),
        pki.CertRequest(
            "etcd-peer",
            "etcd-peer",
            dns_names=local,
            ip_addresses=(HOST,),
            server=True,
            client=True,
        ),
        pki.CertRequest("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True),
        pki.CertRequest("probe-etcd-client", "govcloud-probe", client=True),
        pki.CertRequest(
            "apiserver",
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=(HOST, SERVICE_IP),
            server=True,
        ),
        pki.CertRequest(
            "controller-manager-serving",
            "kube-controller-manager",
            dns_names=local,
            ip_addresses=(HOST,),
            server=True,
        ),
        pki.CertRequest("controller-manager", "system:kube-controller-manager", client=True),
        pki.CertRequest("admin", ADMIN_USER, organizations=("system:masters",), client=True),
    ]


def etcd_args(cfg: ClusterConfig) -> list[str]:
    client = f"https://{HOST}:{cfg.etcd_port}"
    peer = f"https://{HOST}:{cfg.etcd_peer_port}"
    ca = str(cfg.cert("ca"))
    return [
        "--name=govcloud",
        f"--data-dir={cfg.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=govcloud={peer}",
        "--initial-cluster-state=new",
        f"--cert-file={cfg.cert('etcd-server')}",
        f"--key-file={cfg.key('etcd-server')}",
        "--client-cert-auth=true",
        f"--trusted-ca-file={ca}",
        f"--peer-cert-file={cfg.cert('etcd-peer')}",
        f"--peer-key-file={cfg.key('etcd-peer')}",
        "--peer-client-cert-auth=true",
        f"--peer-trusted-ca-file={ca}",
        "--log-level=warn",
    ]


def apiserver_args(cfg: ClusterConfig) -> list[str]:
    return [
        f"--advertise-address={HOST}",
        f"--bind-address={HOST}",
        f"--secure-port={cfg.api_port}",
        f"--etcd-servers=https://{HOST}:{cfg.etcd_port}",
        f"--etcd-cafile={cfg.cert('ca')}",
        f"--etcd-certfile={cfg.cert('apiserver-etcd-client')}",
        f"--etcd-keyfile={cfg.key('apiserver-etcd-client')}",
        f"--tls-cert-file={cfg.cert('apiserver')}",
        f"--tls-private-key-file={cfg.key('apiserver')}",
        f"--client-ca-file={cfg.cert('ca')}",
        "--anonymous-auth=false",
        "--authorization-mode=RBAC",
        f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={cfg.pki / 'service-account.pub'}",
        f"--service-account-signing-key-file={cfg.pki / 'service-account.key'}",
        f"--audit-policy-file={cfg.audit_policy}",
        f"--audit-log-path={cfg.logs / 'audit.log'}",
        "--audit-log-maxsize=100",
        "--audit-log-maxbackup=3",
        "--profiling=false",
    ]


def controller_manager_args(cfg: ClusterConfig) -> list[str]:
    kc = str(cfg.cm_kubeconfig)
    return [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--bind-address={HOST}",
        f"--secure-port={cfg.controller_manager_port}",
        f"--tls-cert-file={cfg.cert('controller-manager-serving')}",
        f"--tls-private-key-file={cfg.key('controller-manager-serving')}",
        f"--client-ca-file={cfg.cert('ca')}",
        f"--requestheader-client-ca-file={cfg.cert('ca')}",
        f"--root-ca-file={cfg.cert('ca')}",
        f"--service-account-private-key-file={cfg.pki / 'service-account.key'}",
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={cfg.cert('ca')}",
        f"--cluster-signing-key-file={cfg.key('ca')}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def kubeconfig(cfg: ClusterConfig, user: str, cert_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "govcloud-local",
                "cluster": {
                    "server": cfg.server,
                    "certificate-authority": str(cfg.cert("ca")),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(cfg.cert(cert_name)),
                    "client-key": str(cfg.key(cert_name)),
                },
            }
        ],
        "contexts": [
            {"name": "govcloud-local", "context": {"cluster": "govcloud-local", "user": user}}
        ],
        "current-context": "govcloud-local",
    }


def command_lines(cfg: ClusterConfig, binaries: dict[str, Path]) -> dict[str, list[str]]:
    args: dict[str, Callable[[ClusterConfig], list[str]]] = {
        "etcd": etcd_args,
        "kube-apiserver": apiserver_args,
        "kube-controller-manager": controller_manager_args,
    }
    return {c: [str(binaries[c]), *args[c](cfg)] for c in COMPONENTS}


# --- files -------------------------------------------------------------------------------------


def prepare(cfg: ClusterConfig) -> None:
    """Certificates, keys, kubeconfigs, the audit policy and directories (idempotent)."""
    for d in (cfg.state_dir, cfg.pki, cfg.etcd_data, cfg.run):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
    cfg.logs.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = pki.ensure_ca(cfg.pki, "govcloud-local-ca")
    for req in cert_requests():
        pki.ensure_cert(cfg.pki, ca_key, ca_cert, req)
    pki.ensure_signing_key(cfg.pki, "service-account")
    for path, user, cert in (
        (cfg.kubeconfig, ADMIN_USER, "admin"),
        (cfg.cm_kubeconfig, "system:kube-controller-manager", "controller-manager"),
    ):
        pki.write_private(path, yaml.safe_dump(kubeconfig(cfg, user, cert)).encode())
    pki.write_public(cfg.audit_policy, yaml.safe_dump(AUDIT_POLICY).encode())
    pki.write_public(cfg.state_dir / "cluster.json", json.dumps(cfg.to_json(), indent=2).encode())


# --- processes ---------------------------------------------------------------------------------


def _read_pid(cfg: ClusterConfig, component: str) -> int | None:
    try:
        return int(cfg.pid_file(component).read_text().strip())
    except (OSError, ValueError):
        return None


def _is_ours(cfg: ClusterConfig, pid: int, component: str) -> bool:
    """Is ``pid`` alive and the ``component`` started for this state directory?"""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie is gone
        return False
    argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return (
        bool(argv)
        and Path(argv[0]).name == component
        and any(f"{cfg.state_dir}/" in a for a in argv[1:])
    )


def running_pid(cfg: ClusterConfig, component: str) -> int | None:
    pid = _read_pid(cfg, component)
    return pid if pid is not None and _is_ours(cfg, pid, component) else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _start(cfg: ClusterConfig, component: str, argv: list[str]) -> subprocess.Popen[bytes]:
    log = cfg.log_file(component).open("ab")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cfg.state_dir,
            start_new_session=True,  # outlives `govcloud k8s up`; not killed by its terminal
            close_fds=True,
        )
    except OSError as exc:
        raise OperationError(f"cannot start {component} ({argv[0]}): {exc.strerror}") from exc
    finally:
        log.close()
    cfg.pid_file(component).write_text(f"{proc.pid}\n")
    return proc


def _ssl_context(cfg: ClusterConfig, client_cert: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cfg.cert("ca")))
    ctx.load_cert_chain(str(cfg.cert(client_cert)), str(cfg.key(client_cert)))
    return ctx


def probe(url: str, ctx: ssl.SSLContext, timeout: float = 3.0) -> tuple[int, str]:
    """``(HTTP status, body)``; status 0 with the reason when nothing answered."""
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def _wait(
    cfg: ClusterConfig,
    component: str,
    alive: Callable[[], bool],
    check: Callable[[], tuple[int, str]],
    want: Callable[[int, str], bool],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    last: tuple[int, str] = (0, "no answer yet")
    while time.monotonic() < deadline:
        if not alive():
            raise OperationError(
                f"{component} exited while starting; last lines of "
                f"{cfg.log_file(component)}:\n{_tail(cfg.log_file(component))}"
            )
        last = check()
        if want(*last):
            return
        time.sleep(0.5)
    raise OperationError(
        f"{component} did not become ready within {timeout:.0f} s (last answer: "
        f"{last[0]} {last[1][:300]}); last lines of {cfg.log_file(component)}:\n"
        f"{_tail(cfg.log_file(component))}"
    )


def _child_alive(proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: proc.poll() is None


def _pid_alive(cfg: ClusterConfig, pid: int, component: str) -> Callable[[], bool]:
    return lambda: _is_ours(cfg, pid, component)


def _healthy(code: int, body: str) -> bool:
    """200, and for etcd's /health also ``"health":"true"``."""
    return code == 200 and ('"health"' not in body or '"health":"true"' in body.replace(" ", ""))


def readyz(cfg: ClusterConfig) -> tuple[int, str]:
    return probe(f"{cfg.server}/readyz", _ssl_context(cfg, "admin"))


def up(cfg: ClusterConfig, timeout: float = 180.0) -> dict[str, Any]:
    """Start whatever is not running yet and wait until the API server is ready."""
    binaries = {c: locate(c) for c in COMPONENTS}
    running = {c: running_pid(cfg, c) for c in COMPONENTS}
    ports = {
        "etcd": (cfg.etcd_port, cfg.etcd_peer_port),
        "kube-apiserver": (cfg.api_port,),
        "kube-controller-manager": (cfg.controller_manager_port,),
    }
    busy = [
        f"{port} ({c})"
        for c in COMPONENTS
        if not running[c]
        for port in ports[c]
        if not _port_free(port)
    ]
    if busy:
        raise OperationError(
            f"loopback port(s) already in use: {', '.join(busy)}. Stop what holds them, or choose "
            "others (govcloud k8s up --api-port/--etcd-port/--controller-manager-port)."
        )
    if not all(running.values()):
        prepare(cfg)
    argv = command_lines(cfg, binaries)
    etcd_ctx = _ssl_context(cfg, "probe-etcd-client")
    cm_ctx = ssl.create_default_context(cafile=str(cfg.cert("ca")))
    checks: dict[str, Callable[[], tuple[int, str]]] = {
        "etcd": lambda: probe(f"https://{HOST}:{cfg.etcd_port}/health", etcd_ctx),
        "kube-apiserver": lambda: readyz(cfg),
        "kube-controller-manager": lambda: probe(
            f"https://{HOST}:{cfg.controller_manager_port}/healthz", cm_ctx
        ),
    }
    started: list[str] = []
    try:
        for c in COMPONENTS:
            pid = running[c]
            if pid is None:
                # Our own child: poll() knows at once when it exits (/proc may still show the
                # forked python for a moment before exec).
                proc = _start(cfg, c, argv[c])
                started.append(c)
                alive = _child_alive(proc)
            else:
                alive = _pid_alive(cfg, pid, c)
            _wait(cfg, c, alive, checks[c], _healthy, timeout)
    except BaseException:
        for c in reversed(started):
            _stop(cfg, c)
        raise
    result = status(cfg)
    result["started"] = started
    return result


def _stop(cfg: ClusterConfig, component: str, timeout: float = 30.0) -> str:
    pid = running_pid(cfg, component)
    if pid is None:
        cfg.pid_file(component).unlink(missing_ok=True)
        return "not running"
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # it went between the check and the signal
        cfg.pid_file(component).unlink(missing_ok=True)
        return "stopped"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_ours(cfg, pid, component):
        time.sleep(0.2)
    how = "stopped"
    if _is_ours(cfg, pid, component):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        how = "killed after SIGTERM timed out"
        for _ in range(50):
            if not _is_ours(cfg, pid, component):
                break
            time.sleep(0.1)
    cfg.pid_file(component).unlink(missing_ok=True)
    return how


def down(cfg: ClusterConfig) -> dict[str, str]:
    """Stop the components, the API server's clients first; data and certificates stay."""
    return {c: _stop(cfg, c) for c in reversed(COMPONENTS)}


def status(cfg: ClusterConfig) -> dict[str, Any]:
    components = {}
    for c in COMPONENTS:
        pid = running_pid(cfg, c)
        components[c] = {"running": pid is not None, "pid": pid, "log": str(cfg.log_file(c))}
    api_running = components["kube-apiserver"]["running"]
    code, body = readyz(cfg) if api_running and cfg.cert("admin").exists() else (0, "not running")
    ready = code == 200 and all(v["running"] for v in components.values())
    return {
        "ready": ready,
        "readyz": body.strip() if code else f"unreachable: {body}",
        "server": cfg.server,
        "kubeconfig": str(cfg.kubeconfig),
        "state_dir": str(cfg.state_dir),
        "components": components,
    }
