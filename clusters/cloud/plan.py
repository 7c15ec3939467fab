"""The cluster's plan, from the spec and the host inventory: pure and fast.

The control-plane host runs etcd, the API server, the controller manager and the scheduler;
every compute host is a worker node with its own pod subnet (taken in the order of the spec's
hosts, so adding a node renumbers none); the registry host serves the cloud's images under one
name. Nothing here touches a host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

from govcloud.errors import PlanError
from govcloud.spec.model import Spec
from infra.inventory import InvHost
from infra.network.cluster import API_PORT, KUBELET_PORT, REGISTRY_PORT

DNS_INDEX = 10  # the cluster DNS Service takes the 10th address of the Service range


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    pod_cidr: str

    @property
    def pod_gateway(self) -> str:
        """The node's own address on its pod bridge (the pods' default route)."""
        return str(ipaddress.IPv4Network(self.pod_cidr)[1])


@dataclass(frozen=True)
class ClusterPlan:
    name: str  # the spec's name: the cluster's name
    api_host: str
    api_address: str
    nodes: tuple[Node, ...]
    registry_host: str
    registry_address: str
    registry_name: str
    pod_cidr: str
    service_cidr: str
    dns_domain: str
    eviction_seconds: int
    api_port: int = API_PORT
    kubelet_port: int = KUBELET_PORT
    registry_port: int = REGISTRY_PORT

    @property
    def server(self) -> str:
        return f"https://{self.api_address}:{self.api_port}"

    @property
    def api_service_ip(self) -> str:
        """The address of the `kubernetes` Service (the first of the Service range)."""
        return str(ipaddress.IPv4Network(self.service_cidr)[1])

    @property
    def dns_ip(self) -> str:
        return str(ipaddress.IPv4Network(self.service_cidr)[DNS_INDEX])

    @property
    def registry(self) -> str:
        """How images are named: the registry's name (``name:port`` off the HTTPS port)."""
        if self.registry_port == 443:
            return self.registry_name
        return f"{self.registry_name}:{self.registry_port}"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            server=self.server,
            api_service_ip=self.api_service_ip,
            dns_ip=self.dns_ip,
            registry=self.registry,
            nodes=[{**asdict(n), "pod_gateway": n.pod_gateway} for n in self.nodes],
        )
        return d


def make_cluster_plan(spec: Spec, hosts: list[InvHost]) -> ClusterPlan | None:
    """The cluster of ``spec``, or None when the spec plans no control-plane host."""
    planes = [h for h in hosts if h.role == "control-plane"]
    if not planes:
        return None
    registry = next((h for h in hosts if h.role == "registry"), None)
    if registry is None:
        raise PlanError(
            "datacenter.hosts: a cloud with a control-plane host needs a registry host "
            "(role: registry) to pull its images from"
        )
    c = spec.cluster
    pods = ipaddress.IPv4Network(c.pod_cidr)
    subnets = pods.subnets(new_prefix=c.node_pod_prefix)
    nodes = tuple(Node(h.name, h.address, str(next(subnets))) for h in hosts if h.role == "compute")
    return ClusterPlan(
        name=spec.name,
        api_host=planes[0].name,
        api_address=planes[0].address,
        nodes=nodes,
        registry_host=registry.name,
        registry_address=registry.address,
        registry_name=c.registry_name,
        pod_cidr=c.pod_cidr,
        service_cidr=c.service_cidr,
        dns_domain=c.dns_domain,
        eviction_seconds=c.eviction_seconds,
    )
