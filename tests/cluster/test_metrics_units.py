"""metrics-server as an add-on: its objects hang together (the APIService reaches the Service,
the Service the pods, the pods their certificates), its RBAC covers what the server does and no
more, it runs as non-root and verifies the kubelets with the cluster CA. The integration test
applies the objects to a real local API server."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from clusters.cloud import metrics
from clusters.cloud import pki as cluster_pki
from clusters.cloud.plan import ClusterPlan, make_cluster_plan
from clusters.images.oci import build
from govcloud.errors import OperationError
from govcloud.spec.model import Spec
from govcloud.toolchain import pki
from govcloud.toolchain.versions import load_versions
from infra.plan import make_plan

unit = pytest.mark.unit


@pytest.fixture
def cp(lab_raw: dict[str, Any]) -> ClusterPlan:
    plan = make_plan(Spec.model_validate(lab_raw))
    out = make_cluster_plan(plan.spec, plan.hosts)
    assert out is not None
    return out


@pytest.fixture
def ca_dir(tmp_path: Path, cp: ClusterPlan) -> Path:
    d = tmp_path / "pki"
    d.mkdir()
    pki.ensure_ca(d, f"govcloud-{cp.name}-cluster-ca")
    return d


@pytest.fixture
def objs(cp: ClusterPlan, ca_dir: Path) -> list[dict[str, Any]]:
    return metrics.objects_from_pki(cp, ca_dir, image_ref="reg.test/platform/metrics-server:9")


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name}: {len(found)} objects"
    return found[0]


def pod_spec(objs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objs, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = pod_spec(objs)["containers"]
    assert isinstance(c, dict)
    return c


def args(objs: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for a in container(objs)["args"]:
        k, _, v = a.partition("=")
        out[k] = v
    return out


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
    )


# --- the objects hang together ------------------------------------------------------------


@unit
def test_the_apiservice_points_to_the_service_and_checks_its_certificate_with_the_ca(
    objs: list[dict[str, Any]], ca_dir: Path
) -> None:
    api = one(objs, "APIService", "v1beta1.metrics.k8s.io")
    svc = one(objs, "Service", "metrics-server")
    spec = api["spec"]
    assert (spec["group"], spec["version"]) == ("metrics.k8s.io", "v1beta1")
    ref = spec["service"]
    assert (ref["name"], ref["namespace"]) == (
        svc["metadata"]["name"],
        svc["metadata"]["namespace"],
    )
    assert ref["port"] in [p["port"] for p in svc["spec"]["ports"]]
    assert spec["insecureSkipTLSVerify"] is False
    assert base64.b64decode(spec["caBundle"]) == (ca_dir / "ca.crt").read_bytes()
    assert objs[-1] is api, "the APIService goes last, once what it points to exists"


@unit
def test_the_service_reaches_the_pods_on_the_port_the_server_listens_on(
    objs: list[dict[str, Any]],
) -> None:
    svc = one(objs, "Service", "metrics-server")
    labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert svc["metadata"]["namespace"] == "kube-system"
    assert svc["spec"]["selector"].items() <= labels.items()
    (port,) = svc["spec"]["ports"]
    (cport,) = container(objs)["ports"]
    assert port["targetPort"] == cport["containerPort"] == int(args(objs)["--secure-port"])


@unit
def test_the_server_runs_in_the_nodes_network_beside_the_kubelet_not_on_its_port(
    objs: list[dict[str, Any]], cp: ClusterPlan
) -> None:
    """The control plane has no route to pods and no kube-proxy: the API server reaches
    metrics-server at a node's address (aggregator routing), on a port the kubelet leaves free."""
    spec = pod_spec(objs)
    assert spec["hostNetwork"] is True
    assert int(args(objs)["--secure-port"]) == metrics.HOST_PORT != cp.kubelet_port


@unit
def test_in_a_pod_network_it_listens_on_the_upstream_port(cp: ClusterPlan, ca_dir: Path) -> None:
    objs = metrics.objects_from_pki(cp, ca_dir, image_ref="r/p/m:1", host_network=False)
    assert "hostNetwork" not in pod_spec(objs)
    assert args(objs)["--secure-port"] == "10250"
    assert one(objs, "Service")["spec"]["ports"][0]["targetPort"] == 10250


@unit
def test_the_server_mounts_what_the_objects_provide(objs: list[dict[str, Any]]) -> None:
    spec = pod_spec(objs)
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(objs)["volumeMounts"]}
    secret = one(objs, "Secret", vols["tls"]["secret"]["secretName"])
    assert secret["type"] == "kubernetes.io/tls" and {"tls.crt", "tls.key"} <= set(secret["data"])
    one(objs, "ConfigMap", vols["kubelet-ca"]["configMap"]["name"])
    a = args(objs)
    for flag, vol, key in (
        ("--tls-cert-file", "tls", "tls.crt"),
        ("--tls-private-key-file", "tls", "tls.key"),
        ("--kubelet-certificate-authority", "kubelet-ca", "ca.crt"),
    ):
        directory, _, file = a[flag].rpartition("/")
        assert mounts[directory] == vol and file == key, flag
    assert spec["serviceAccountName"] == one(objs, "ServiceAccount")["metadata"]["name"]


@unit
def test_the_args_are_the_clouds(objs: list[dict[str, Any]]) -> None:
    a = args(objs)
    assert a["--kubelet-preferred-address-types"] == "InternalIP"
    assert a["--metric-resolution"] == "15s"
    assert "--kubelet-insecure-tls" not in a
    assert a["--tls-min-version"] == "VersionTLS12"


# --- certificates ---------------------------------------------------------------------------


@unit
def test_the_serving_certificate_names_the_service_and_is_issued_by_the_cluster_ca(
    objs: list[dict[str, Any]], ca_dir: Path, cp: ClusterPlan
) -> None:
    secret = one(objs, "Secret", metrics.TLS_SECRET)
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(pki.load_cert(ca_dir / "ca.crt"))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # the aggregator dials <service>.<namespace>.svc and checks that name
    assert "metrics-server.kube-system.svc" in names.get_values_for_type(x509.DNSName)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ExtendedKeyUsageOID.SERVER_AUTH in usage
    # a second call reuses it
    again = metrics.objects_from_pki(cp, ca_dir, image_ref="x/y/z:1")
    assert one(again, "Secret", metrics.TLS_SECRET)["data"] == secret["data"]


@unit
def test_every_kubelet_serving_certificate_carries_its_nodes_address(cp: ClusterPlan) -> None:
    """Why --kubelet-certificate-authority works with InternalIP: metrics-server dials each
    node's address, and the CA issued each kubelet a certificate with that address as an IP SAN."""
    reqs = {r.name: r for r in cluster_pki.cert_requests(cp)}
    for node in cp.nodes:
        req = reqs[f"kubelet-{node.name}"]
        assert req.server and node.address in req.ip_addresses
        ipaddress.ip_address(node.address)


@unit
def test_without_the_cluster_ca_nothing_is_made(cp: ClusterPlan, tmp_path: Path) -> None:
    with pytest.raises(OperationError, match="no cluster CA"):
        metrics.objects_from_pki(cp, tmp_path, image_ref="x/y/z:1")
    assert not list(tmp_path.iterdir())


# --- RBAC -----------------------------------------------------------------------------------


@unit
def test_rbac_covers_what_the_server_reads_and_nothing_more(objs: list[dict[str, Any]]) -> None:
    sa = one(objs, "ServiceAccount")
    subject = {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "kube-system"}
    bound = {
        (b["kind"], b["roleRef"]["kind"], b["roleRef"]["name"], b["metadata"].get("namespace"))
        for b in objs
        if b["kind"] in ("ClusterRoleBinding", "RoleBinding") and subject in b["subjects"]
    }
    assert bound == {
        ("ClusterRoleBinding", "ClusterRole", "system:metrics-server", None),
        ("ClusterRoleBinding", "ClusterRole", "system:auth-delegator", None),
        ("RoleBinding", "Role", "extension-apiserver-authentication-reader", "kube-system"),
    }
    rules = one(objs, "ClusterRole", "system:metrics-server")["rules"]
    for resource, verb in (
        ("nodes/metrics", "get"),  # the kubelets' /metrics/resource
        ("nodes", "list"),
        ("nodes", "watch"),
        ("pods", "list"),
        ("pods", "watch"),
    ):
        assert allows(rules, "", resource, verb), (resource, verb)
    writes = {"create", "update", "patch", "delete", "deletecollection", "*"}
    assert not any(set(r["verbs"]) & writes for r in rules)
    assert not any(
        allows(rules, "", res, "get") for res in ("secrets", "configmaps", "nodes/proxy")
    )


@unit
def test_the_metrics_are_readable_by_every_view_edit_and_admin_role(
    objs: list[dict[str, Any]],
) -> None:
    reader = one(objs, "ClusterRole", "system:aggregated-metrics-reader")
    labels = reader["metadata"]["labels"]
    for role in ("view", "edit", "admin"):
        assert labels[f"rbac.authorization.k8s.io/aggregate-to-{role}"] == "true"
    for res in ("pods", "nodes"):
        for verb in ("get", "list", "watch"):
            assert allows(reader["rules"], "metrics.k8s.io", res, verb)
    assert all(r["apiGroups"] == ["metrics.k8s.io"] for r in reader["rules"])


# --- the pod and its image ------------------------------------------------------------------


@unit
def test_the_pod_runs_as_non_root_without_privileges(objs: list[dict[str, Any]]) -> None:
    spec = pod_spec(objs)
    ctx = spec["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0
    assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
    c = container(objs)["securityContext"]
    assert c["allowPrivilegeEscalation"] is False
    assert c["capabilities"]["drop"] == ["ALL"] and "add" not in c["capabilities"]
    assert c["readOnlyRootFilesystem"] is True and "privileged" not in c
    assert container(objs)["image"] == "reg.test/platform/metrics-server:9"
    assert spec["priorityClassName"] == "system-cluster-critical"


@unit
def test_replicas_spread_one_per_node_and_at_least_one(cp: ClusterPlan, ca_dir: Path) -> None:
    objs = metrics.objects_from_pki(cp, ca_dir, image_ref="x/y/z:1", replicas=2)
    anti = pod_spec(objs)["affinity"]["podAntiAffinity"]
    (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert one(objs, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    with pytest.raises(ValueError, match="at least one replica"):
        metrics.objects_from_pki(cp, ca_dir, image_ref="x/y/z:1", replicas=0)


@unit
def test_the_image_is_the_static_binary_run_as_a_non_root_user(
    tmp_path: Path, cp: ClusterPlan
) -> None:
    (tmp_path / "metrics-server").write_bytes(b"\x7fELF not really")
    spec = metrics.image_spec(tmp_path)
    assert spec.entrypoint == ("/metrics-server",)
    assert spec.files["/metrics-server"][1] == 0o755
    uid = int(spec.user.split(":")[0])
    assert uid == metrics.USER and uid != 0
    assert spec.ports == (metrics.HOST_PORT,)
    assert build(spec).digest == build(metrics.image_spec(tmp_path)).digest  # reproducible
    version = load_versions()["METRICS_SERVER_VERSION"]
    assert metrics.image(cp) == f"{cp.registry}/platform/metrics-server:{version}"


@unit
def test_the_api_server_flags_name_a_front_proxy_ca_of_its_own() -> None:
    flags = dict(f.partition("=")[::2] for f in metrics.apiserver_aggregation_flags("/pki"))
    assert flags["--requestheader-client-ca-file"] == "/pki/front-proxy-ca.crt"
    assert flags["--requestheader-allowed-names"] == metrics.FRONT_PROXY_CLIENT
    assert flags["--proxy-client-cert-file"] == f"/pki/{metrics.FRONT_PROXY_CLIENT}.crt"
    assert flags["--enable-aggregator-routing"] == "true"
    req = metrics.front_proxy_client_request()
    assert req.client and not req.server and req.common_name == metrics.FRONT_PROXY_CLIENT


@unit
def test_apply_refuses_a_kind_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        metrics.apply_objects(None, [{"apiVersion": "x/v1", "kind": "Nope", "metadata": {}}])  # type: ignore[arg-type]


@unit
def test_available_reads_the_condition() -> None:
    assert not metrics.available(None)
    assert not metrics.available(
        {"status": {"conditions": [{"type": "Available", "status": "False"}]}}
    )
    assert metrics.available({"status": {"conditions": [{"type": "Available", "status": "True"}]}})


# --- against a real API server --------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.tenants.conftest import running_cluster

    with running_cluster(tmp_path_factory.mktemp("metrics-k8s")) as cluster:
        yield cluster


def _sar(kube: Any, user: str, attrs: dict[str, str], groups: list[str] | None = None) -> bool:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups or [], "resourceAttributes": attrs},
    }
    out = kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body)
    return bool(out["status"].get("allowed"))


@pytest.mark.integration
@pytest.mark.slow
def test_the_objects_apply_to_a_real_api_server(api: Any, cp: ClusterPlan, ca_dir: Path) -> None:
    """Applied twice (the second changes nothing), the APIService exists pointing at the
    Service, and the API server's own authorizer grants what the server needs. It does not
    become Available: there are no kubelets here to run the pod."""
    kube = api.admin()
    objs = metrics.objects_from_pki(cp, ca_dir, image_ref="reg.test/platform/metrics-server:9")
    first = metrics.apply_objects(kube, objs)
    second = metrics.apply_objects(kube, objs)

    # controllers write the status of some: the Deployment's generation says whether its spec
    # changed; the APIService (its availability written as it is checked) has none, so its spec
    # is compared; resourceVersion for the others
    def version(o: dict[str, Any]) -> Any:
        md = o["metadata"]
        return (
            o["spec"]
            if o["kind"] == "APIService"
            else md.get("generation") or md["resourceVersion"]
        )

    assert [version(o) for o in second] == [version(o) for o in first]
    got = metrics.get_apiservice(kube)
    assert got is not None
    assert got["spec"]["service"] == {
        "name": "metrics-server",
        "namespace": "kube-system",
        "port": 443,
    }
    assert got["spec"]["caBundle"] == one(objs, "APIService")["spec"]["caBundle"]
    assert not metrics.available(got)
    sa = "system:serviceaccount:kube-system:metrics-server"
    sa_groups = ["system:serviceaccounts", "system:serviceaccounts:kube-system"]
    for attrs in (
        {"resource": "nodes", "subresource": "metrics", "verb": "get"},
        {"resource": "pods", "verb": "list"},
        {"resource": "nodes", "verb": "watch"},
        {"group": "authentication.k8s.io", "resource": "tokenreviews", "verb": "create"},
        {"group": "authorization.k8s.io", "resource": "subjectaccessreviews", "verb": "create"},
        {
            "namespace": "kube-system",
            "resource": "configmaps",
            "name": "extension-apiserver-authentication",
            "verb": "get",
        },
    ):
        assert _sar(kube, sa, attrs, sa_groups), attrs
    assert not _sar(kube, sa, {"resource": "secrets", "verb": "list"}, sa_groups)
    # a department's viewer (the view role, bound in its namespace) reads its pods' metrics
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "viewer", "namespace": "default"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer"}
            ],
        }
    )
    attrs = {"group": "metrics.k8s.io", "resource": "pods", "verb": "list", "namespace": "default"}
    assert _poll(lambda: _sar(kube, "viewer", attrs))


def _poll(check: Any, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return bool(check())


def _get(port: int, path: str, ca: Path, name: str) -> tuple[int, bytes]:
    """GET over TLS checking the certificate for ``name``, as the aggregator does."""
    import socket
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as s,
    ):
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.integration
@pytest.mark.slow
def test_the_built_server_takes_the_deployments_args_and_serves_its_certificate(
    api: Any, cp: ClusterPlan, ca_dir: Path, tmp_path: Path
) -> None:
    """The binary toolchain/build made, run here with the Deployment's own args (paths and port
    moved to this machine, the admin kubeconfig instead of the pod's token), answers /livez with
    the serving certificate checked by the cluster CA under the Service's name. /readyz stays
    false: with no kubelets there are no metrics to serve."""
    import time

    from govcloud.toolchain.tools import bin_dir
    from tests.toolchain.conftest import free_ports

    binary = bin_dir() / "metrics-server"
    if not binary.is_file():
        pytest.fail("metrics-server is not built: run toolchain/build services", pytrace=False)
    metrics.objects_from_pki(cp, ca_dir, image_ref="x/y/z:1")  # issues the serving certificate
    (port,) = free_ports(1)
    log = tmp_path / "metrics-server.log"
    proc = _run_server(binary, ca_dir, api.kubeconfig, port, "127.0.0.1", log)
    try:
        name = "metrics-server.kube-system.svc"
        deadline = time.monotonic() + 60
        live: tuple[int, bytes] | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                live = _get(port, "/livez", ca_dir / "ca.crt", name)
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, log.read_text()[-3000:]
        assert live is not None and live[0] == 200, log.read_text()[-3000:]
        status, _ = _get(port, "/readyz", ca_dir / "ca.crt", name)
        assert status != 200
    finally:
        proc.terminate()
        proc.wait(15)


def _own_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), or None."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            addr = str(s.getsockname()[0])
    except OSError:
        return None
    return None if addr.startswith("127.") else addr


def _run_server(
    binary: Path, pki_dir: Path, kubeconfig: Path, port: int, bind: str, log: Path
) -> Any:
    import subprocess

    moved = {
        "/etc/metrics-server/tls/tls.crt": pki_dir / "metrics-server.crt",
        "/etc/metrics-server/tls/tls.key": pki_dir / "metrics-server.key",
        "/etc/metrics-server/kubelet-ca/ca.crt": pki_dir / "ca.crt",
    }
    argv = [str(binary)]
    for a in metrics.container_args():
        flag, _, value = a.partition("=")
        value = str(moved.get(value, value))
        argv.append(
            f"{flag}={port}" if flag == "--secure-port" else f"{flag}={value}" if value else flag
        )
    argv += [f"--{k}kubeconfig={kubeconfig}" for k in ("", "authentication-", "authorization-")]
    argv.append(f"--bind-address={bind}")
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.integration
@pytest.mark.slow
def test_with_the_aggregation_flags_the_api_server_serves_the_metrics_api(
    cp: ClusterPlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control-plane flags this add-on asks for, proven on a real API server: started with
    apiserver_aggregation_flags (a front-proxy CA of its own), it finds the APIService Available
    and answers metrics.k8s.io through the built metrics-server, whose certificate it checks
    under the Service's name, and which trusts its front-proxy identity. The Service's endpoint
    is set by hand (no nodes run pods here) to this machine's own address: an endpoint may not
    be a loopback address."""
    from clusters.tenants.kube import Kube
    from govcloud.toolchain import k8s
    from govcloud.toolchain.k8s import ClusterConfig
    from govcloud.toolchain.tools import bin_dir
    from tests.toolchain.conftest import free_ports

    binary = bin_dir() / "metrics-server"
    if not binary.is_file():
        pytest.fail("metrics-server is not built: run toolchain/build services", pytrace=False)
    ip = _own_address()
    if ip is None:
        pytest.skip("this machine has no address besides loopback for the Service's endpoint")
    etcd, _peer, api_port, cm, ms_port = free_ports(5)
    cfg = ClusterConfig(
        state_dir=tmp_path / "k8s", api_port=api_port, etcd_port=etcd, controller_manager_port=cm
    )
    front = tmp_path / "front-proxy"
    front.mkdir()
    fkey, fcert = pki.ensure_ca(front, "govcloud-front-proxy-ca")
    for ext in ("crt", "key"):
        (front / f"ca.{ext}").rename(front / f"{metrics.FRONT_PROXY_CA}.{ext}")
    pki.ensure_cert(front, fkey, fcert, metrics.front_proxy_client_request())
    plain = k8s.apiserver_args
    monkeypatch.setattr(
        k8s,
        "apiserver_args",
        lambda c: [*plain(c), *metrics.apiserver_aggregation_flags(str(front))],
    )
    k8s.up(cfg)
    proc = None
    try:
        kube = Kube.from_kubeconfig(cfg.kubeconfig)
        objs = metrics.objects_from_pki(cp, cfg.pki, image_ref="x/y/z:1")  # the local CA issues
        svc = one(objs, "Service")
        del svc["spec"]["selector"]  # its endpoint is this machine, set below
        svc["spec"]["ports"][0]["targetPort"] = ms_port
        metrics.apply_objects(kube, objs)
        ports = [{"name": "https", "port": ms_port, "protocol": "TCP"}]
        kube.request(
            "POST",
            "/api/v1/namespaces/kube-system/endpoints",
            body={
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "metrics-server", "namespace": "kube-system"},
                "subsets": [{"addresses": [{"ip": ip}], "ports": ports}],
            },
        )
        kube.request(
            "POST",
            "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
            body={
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "metrics-server-by-hand",
                    "namespace": "kube-system",
                    "labels": {"kubernetes.io/service-name": "metrics-server"},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                "ports": ports,
            },
        )
        log = tmp_path / "metrics-server.log"
        proc = _run_server(binary, cfg.pki, cfg.kubeconfig, ms_port, ip, log)
        assert _poll(lambda: metrics.available(metrics.get_apiservice(kube)), 60), (
            f"{metrics.get_apiservice(kube)}\n{log.read_text()[-3000:]}"
        )
        nodes = kube.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
        assert nodes["kind"] == "NodeMetricsList"
        pods = kube.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
        assert pods["kind"] == "PodMetricsList"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
        k8s.down(cfg)
