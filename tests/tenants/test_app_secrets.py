"""App secrets from the department's OpenBao mount, read with the department's own token, on a
real OpenBao (dev server on loopback, in memory) and, deployed, stored in the app's Secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from clusters.deploy.rollout import read_openbao_secrets
from clusters.deploy.spec import load_app, parse_app
from clusters.tenants.kube import KINDS
from govcloud.errors import InputError
from tests.baodev import ROOT_TOKEN, dev_openbao
from tests.tenants.conftest import Applied, TenantCluster

ROOT = Path(__file__).resolve().parents[2]
HALL = ROOT / "clusters" / "apps" / "hall" / "app.yaml"
LAB = ROOT / "examples" / "lab.yaml"
VALUES = {
    "hall/db": {"dsn": "postgresql://hall:pw@db/hall", "ca": "-----BEGIN CERTIFICATE-----"},
    "hall/tokens": {"admin": "adm-1", "metrics": "met-1"},
    "hall/tls": {"cert": "-----BEGIN CERTIFICATE----- hall", "key": "-----BEGIN PRIVATE KEY-----"},
}


def _policy(mount: str) -> str:
    return f'path "{mount}/data/*" {{ capabilities = ["read"] }}'


@pytest.fixture(scope="module")
def bao() -> Iterator[tuple[str, str, str]]:
    """(address, dsjj's token, gat's token) on a dev OpenBao with kv-dsjj and kv-gat."""
    import hvac

    with dev_openbao() as addr:
        root = hvac.Client(url=addr, token=ROOT_TOKEN)
        tokens = []
        for code in ("dsjj", "gat"):
            mount = f"kv-{code}"
            root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
            root.sys.create_or_update_policy(f"dept-{code}-developers", _policy(mount))
            tokens.append(
                root.auth.token.create(policies=[f"dept-{code}-developers"])["auth"]["client_token"]
            )
        for path, secret in VALUES.items():
            root.secrets.kv.v2.create_or_update_secret(
                path=path, secret=secret, mount_point="kv-dsjj"
            )
        yield addr, tokens[0], tokens[1]


@pytest.mark.integration
def test_secrets_are_read_with_the_department_token(bao: tuple[str, str, str]) -> None:
    addr, dsjj, _gat = bao
    values = read_openbao_secrets(load_app(HALL), addr, dsjj)
    assert values == {
        "HALL_DSN": "postgresql://hall:pw@db/hall",
        "HALL_DB_CA": "-----BEGIN CERTIFICATE-----",
        "HALL_ADMIN_TOKEN": "adm-1",
        "HALL_METRICS_TOKEN": "met-1",
        "HALL_TLS_CERT": "-----BEGIN CERTIFICATE----- hall",
        "HALL_TLS_KEY": "-----BEGIN PRIVATE KEY-----",
    }


@pytest.mark.integration
def test_another_department_token_is_refused_by_openbao(bao: tuple[str, str, str]) -> None:
    addr, _dsjj, gat = bao
    with pytest.raises(InputError) as err:
        read_openbao_secrets(load_app(HALL), addr, gat)
    assert err.value.problems[0].message.startswith("secrets[0].path: OpenBao refused")


@pytest.mark.integration
def test_a_missing_key_names_the_field(bao: tuple[str, str, str]) -> None:
    addr, dsjj, _gat = bao
    raw = yaml.safe_load(HALL.read_text())
    raw["secrets"][3]["key"] = "nosuch"
    with pytest.raises(InputError) as err:
        read_openbao_secrets(parse_app(raw), addr, dsjj)
    assert "secrets[3].key" in str(err.value)


@pytest.mark.integration
@pytest.mark.slow
def test_deploy_stores_the_secrets_in_the_app_secret(
    bao: tuple[str, str, str], guizhou_applied: Applied, tenant_cluster: TenantCluster
) -> None:
    addr, dsjj, _gat = bao
    kc = str(tenant_cluster.department("dsjj"))
    r = subprocess.run(
        [sys.executable, "-m", "govcloud", "app", "deploy", str(HALL), "--spec", str(LAB),
         "--kubeconfig", kc, "--openbao-addr", addr, "--no-wait", "--json"],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "BAO_TOKEN": dsjj},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Secret dsjj-prod/hall-openbao" in json.loads(r.stdout)["applied"]
    secret = tenant_cluster.admin().get(KINDS[("v1", "Secret")], "hall-openbao", "dsjj-prod")
    assert secret is not None
    assert sorted(secret["data"]) == [
        "HALL_ADMIN_TOKEN",
        "HALL_DB_CA",
        "HALL_DSN",
        "HALL_METRICS_TOKEN",
        "HALL_TLS_CERT",
        "HALL_TLS_KEY",
    ]
