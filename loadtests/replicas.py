"""The hall's replicas on the cloud over a load run: the autoscaler at work, sampled from the API
server every few seconds while locust runs, for the report's chart beside latency and
throughput.

The sampler is a thread of the controller: it must start before the run moves into the hall
LAN's network namespace (only the calling thread moves, and a thread keeps the namespace it
was started in), since the API server is reached from the operators' side, not a hall's.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from govcloud.spec.model import Spec


class ReplicaWatch(threading.Thread):
    """Samples ``[seconds, wanted, ready]`` of one Deployment until stopped."""

    def __init__(self, kubeconfig: Path, namespace: str, name: str, every: float = 5.0) -> None:
        super().__init__(name="replica-watch", daemon=True)
        self.kubeconfig, self.namespace, self.deployment = kubeconfig, namespace, name
        self.every = every
        self.samples: list[list[float]] = []
        self.error: str | None = None
        self._halt = threading.Event()
        self._t0 = time.time()

    def run(self) -> None:
        from clusters.tenants.kube import KINDS, Kube
        from govcloud.errors import GovcloudError

        try:
            kube = Kube.from_kubeconfig(self.kubeconfig)
        except GovcloudError as exc:
            self.error = str(exc)
            return
        kind = KINDS[("apps/v1", "Deployment")]
        while not self._halt.is_set():
            try:
                dep = kube.get(kind, self.deployment, self.namespace) or {}
            except GovcloudError as exc:  # reported with the samples, never fatal to the run
                self.error = str(exc)
            else:
                wanted = (dep.get("spec") or {}).get("replicas") or 0
                ready = (dep.get("status") or {}).get("readyReplicas") or 0
                self.samples.append([round(time.time() - self._t0, 1), wanted, ready])
            self._halt.wait(self.every)

    def stop(self) -> dict[str, Any]:
        self._halt.set()
        self.join(timeout=self.every + 10)
        wanted = [s[1] for s in self.samples]
        return {
            "deployment": f"{self.namespace}/{self.deployment}",
            "samples": self.samples,
            "min": min(wanted, default=0),
            "max": max(wanted, default=0),
            "error": self.error,
        }


def hall_watch(spec: Spec) -> ReplicaWatch | None:
    """A watch on the hall's Deployment when the spec puts the hall on the cloud and this
    controller holds the cloud's administrator kubeconfig; None otherwise."""
    from clusters.cloud.pki import cluster_dir
    from clusters.hallsite import HALL_APP, hall_site
    from govcloud.naming import tenant_namespace

    site = hall_site(spec)
    kubeconfig = cluster_dir() / "admin.kubeconfig"
    if site is None or not kubeconfig.is_file():
        return None
    return ReplicaWatch(kubeconfig, tenant_namespace(site.department, "prod"), HALL_APP)
