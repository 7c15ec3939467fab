"""Kubernetes objects as a Pulumi resource: one department's tenant (or the platform's shared
objects), applied with server-side apply under the field manager ``govcloud``.

``read`` (``pulumi refresh``) asks the server what differs from the planned objects, so a
quota edited by hand shows up as drift; ``delete`` removes exactly the objects it applied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from infra.providers.base import GovProvider, digest


def _kube(props: dict[str, Any]) -> Any:
    from clusters.tenants.kube import Kube

    return Kube.from_kubeconfig(Path(props["kubeconfig"]))


class KubernetesObjectsProvider(GovProvider):
    kind = "kubernetes objects"
    ignore = ("__provider", "manifests", "drift")

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        k = _kube(props)
        for m in json.loads(props["manifests"]):
            k.apply(m)
        return props["name"], {"drift": []}

    def read_(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        from clusters.tenants.apply import normalise
        from clusters.tenants.kube import ApiError, describe, key, kind_of
        from govcloud.errors import OperationError

        k = _kube(props)
        drift = []
        content = props["content"].removesuffix("+drift")
        try:
            for m in json.loads(props["manifests"]):
                md = m["metadata"]
                live = k.get(kind_of(m), md["name"], md.get("namespace"))
                if live is None or normalise(k.apply(m, dry_run=True)) != normalise(live):
                    drift.append(describe(key(m)))
        except ApiError:
            raise
        except OperationError as exc:
            # the API server is gone (its cluster removed behind the stack's back): every object
            # is drift, and the next `up` applies them once the cluster is back
            drift = [f"the API server cannot be reached: {exc}"]
        return {**props, "drift": drift, "content": content + ("+drift" if drift else "")}

    def delete_(self, id_: str, props: dict[str, Any]) -> None:
        from clusters.tenants.kube import kind_of

        k = _kube(props)
        for m in reversed(json.loads(props["manifests"])):
            md = m["metadata"]
            k.delete(kind_of(m), md["name"], md.get("namespace"))


class KubernetesObjects(Resource):
    """A set of Kubernetes objects applied together."""

    drift: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        kubeconfig: str,
        manifests: list[dict[str, Any]],
        summary: dict[str, Any],
        kind: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            KubernetesObjectsProvider(),
            name,
            {
                "name": name,
                "kind": kind,
                "kubeconfig": kubeconfig,
                "manifests": json.dumps(manifests, sort_keys=True),
                "content": digest(manifests),
                "summary": summary,
                "drift": None,
            },
            opts,
        )
