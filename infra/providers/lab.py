"""The lab as Pulumi resources: the fabric (bridges and LXC hosts of a topology).

The topology travels as JSON in the inputs; ``hosts`` maps each host to a digest of its
configuration, so a diff names exactly the hosts that change, and ``read`` (``pulumi refresh``)
marks a host that is missing or stopped.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from infra.lab.topology import Bridge, Interface, LabHost, Route, Topology
from infra.providers.base import GovProvider, digest


def topology_to_json(topo: Topology) -> str:
    return json.dumps(dataclasses.asdict(topo), sort_keys=True, ensure_ascii=False)


def topology_from_json(text: str) -> Topology:
    raw = json.loads(text)
    hosts = tuple(
        LabHost(
            **{
                **h,
                "interfaces": tuple(Interface(**i) for i in h["interfaces"]),
                "routes": tuple(Route(**r) for r in h["routes"]),
            }
        )
        for h in raw["hosts"]
    )
    bridges = tuple(
        Bridge(**{**b, "host_routes": tuple(Route(**r) for r in b.get("host_routes", ()))})
        for b in raw["bridges"]
    )
    return Topology(raw["name"], bridges, hosts, raw.get("meta", {}))


def host_digests(topo: Topology) -> dict[str, str]:
    return {h.name: digest(dataclasses.asdict(h)) for h in topo.hosts}


class LabFabricProvider(GovProvider):
    kind = "lab fabric"
    replace_on = ("lab",)
    ignore = ("__provider", "topology", "states")

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from infra.lab.lab import status, up

        topo = topology_from_json(props["topology"])
        up(topo)
        return topo.name, {
            "states": {h.name: h.state for h in status(topo.name, probe=False).hosts}
        }

    def read_(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        from infra.lab.lab import status

        states = {h.name: h.state for h in status(id_, probe=False).hosts}
        hosts = dict(props.get("hosts", {}))
        for name in hosts:
            if states.get(name) != "RUNNING":  # drift: refresh shows this host as changed
                hosts[name] = f"{states.get(name, 'MISSING').lower()}"
        return {**props, "hosts": hosts, "states": states}

    def delete_(self, id_: str, props: dict[str, Any]) -> None:
        from infra.lab.lab import down

        down(id_)

    def diff_(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        changes = super().diff_(olds, news)
        if "hosts" in changes:  # name the hosts rather than the whole map
            old, new = olds.get("hosts", {}), news.get("hosts", {})
            changes.remove("hosts")
            changes += [
                f"hosts.{h}" for h in sorted(set(old) | set(new)) if old.get(h) != new.get(h)
            ]
        return changes


class LabFabric(Resource):
    """Bridges and LXC hosts of one lab topology."""

    states: pulumi.Output[dict[str, str]]
    hosts: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, topology: Topology, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            LabFabricProvider(),
            name,
            {
                "lab": topology.name,
                "topology": topology_to_json(topology),
                "hosts": host_digests(topology),
                "states": None,
            },
            opts,
        )
