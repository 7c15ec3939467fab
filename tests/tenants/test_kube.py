"""The client layer's errors are messages, not tracebacks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from clusters.tenants.kube import KINDS, Kube
from govcloud.errors import InputError, OperationError

pytestmark = pytest.mark.unit


def test_missing_kubeconfig_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="govcloud k8s up"):
        Kube.from_kubeconfig(tmp_path / "nope.kubeconfig")


def test_unreachable_server_is_named(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }  # fmt: skip
    path = tmp_path / "k.kubeconfig"
    path.write_text(yaml.safe_dump(conf))
    k = Kube.from_kubeconfig(path)
    with pytest.raises(OperationError) as err:
        k.list(KINDS[("v1", "Namespace")])
    msg = str(err.value)
    assert f"cannot reach the API server at https://127.0.0.1:{port}" in msg
    assert "Connection refused" in msg
