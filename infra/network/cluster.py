"""The flows the tenant cloud's Kubernetes cluster needs, as policy data like every other flow.

They are planned only when the spec has a control-plane host. Pod-to-pod traffic between nodes
is routed on the compute segment (one pod subnet per node) and never crosses a zone router or
a host's input chain; what the nodes exchange themselves is listed here.
"""

from __future__ import annotations

from govcloud.spec.model import Flow

API_PORT = 6443
KUBELET_PORT = 10250
REGISTRY_PORT = 443  # images are named registry.govcloud.local/<dept>/<app>:<tag>, no port
METRICS_PORT = 4443  # metrics-server in the nodes' network namespace (clusters.cloud.metrics)

CLUSTER_FLOWS: tuple[Flow, ...] = (
    Flow(
        name="k8s-nodes-to-apiserver",
        src="role:compute",
        dst="role:control-plane",
        ports=[API_PORT],
    ),
    Flow(
        name="k8s-apiserver-to-kubelets",
        src="role:control-plane",
        dst="role:compute",
        ports=[KUBELET_PORT],
    ),
    Flow(name="k8s-node-to-node", src="role:compute", dst="role:compute", ports=[KUBELET_PORT]),
    # the API server proxies the resource metrics API (autoscalers, kubectl top) to it
    Flow(
        name="k8s-apiserver-to-metrics-server",
        src="role:control-plane",
        dst="role:compute",
        ports=[METRICS_PORT],
    ),
    Flow(
        name="k8s-operators-to-apiserver",
        src="management",
        dst="role:control-plane",
        ports=[API_PORT],
    ),
    Flow(
        name="k8s-nodes-to-registry", src="role:compute", dst="role:registry", ports=[REGISTRY_PORT]
    ),
    Flow(
        name="k8s-operators-to-registry",
        src="management",
        dst="role:registry",
        ports=[REGISTRY_PORT],
    ),
)
