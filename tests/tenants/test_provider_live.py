"""The Pulumi provider of a department's tenant, called directly against the real API server:
create applies every object, read reports a hand-made quota change as drift, delete removes
what it applied."""

from __future__ import annotations

import json
import time

import pytest

from clusters.tenants.kube import KINDS, kind_of
from clusters.tenants.plan import TenantPlan, plan_tenants
from govcloud.spec import parse
from govcloud.spec.generate import generate
from infra.providers.base import digest
from infra.providers.kubernetes import KubernetesObjectsProvider
from tests.tenants.conftest import TenantCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_tenant_provider_create_read_drift_delete(tenant_cluster: TenantCluster) -> None:
    spec = parse(generate("lab"))
    for d in spec.departments:
        old = d.code
        d.code = f"{d.code}prov"  # codes of their own on the shared test server
        for r in d.tenant.reaches:  # its own hosts are named after its code
            r.host = r.host.replace(f"{old}-vm-", f"{d.code}-vm-", 1)
    tenant = plan_tenants(spec).tenants[0]
    manifests = TenantPlan.manifests_of(tenant.objects)
    props = {
        "name": f"tenant-{tenant.code}",
        "kind": "tenant",
        "kubeconfig": str(tenant_cluster.kubeconfig),
        "manifests": json.dumps(manifests, sort_keys=True),
        "content": digest(manifests),
        "summary": {},
    }
    provider = KubernetesObjectsProvider()
    k = tenant_cluster.admin()

    created = provider.create(props)
    assert created.id == props["name"]
    for m in manifests:
        md = m["metadata"]
        assert k.get(kind_of(m), md["name"], md.get("namespace")) is not None, md["name"]
    assert provider.read(created.id, props).outs["drift"] == []

    quota = next(m for m in manifests if m["kind"] == "ResourceQuota")
    qmd = quota["metadata"]
    k.request(
        "PATCH",
        kind_of(quota).path(qmd["namespace"], qmd["name"]),
        body={"spec": {"hard": {"pods": "1"}}},
        content_type="application/merge-patch+json",
        what="a hand-made quota change",
    )
    outs = provider.read(created.id, props).outs
    assert len(outs["drift"]) == 1 and qmd["name"] in outs["drift"][0], outs["drift"]
    assert outs["content"] == props["content"] + "+drift"  # so refresh shows a change

    provider.delete(created.id, props)
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = [n for n in namespaces if k.get(KINDS[("v1", "Namespace")], n) is not None]
        if not left:
            break
        time.sleep(1)
    assert not left, f"namespaces left after delete: {left}"
