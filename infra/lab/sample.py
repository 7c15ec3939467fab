"""A small hand-made topology: the stand-in until the network planner provides one from the spec.

Three segments (management, public, application), one router forwarding between them and
enforcing a ruleset that lets SSH through only from the bastion, a bastion, and two hosts.
"""

from __future__ import annotations

from infra.lab.topology import Bridge, Interface, LabHost, Topology


def router_ruleset(bastion: str) -> str:
    """The router's whole policy: ping anywhere, SSH only from the bastion, nothing else."""
    return f"""\
table inet govcloud {{
    chain input {{
        type filter hook input priority filter; policy drop;
        iifname "lo" accept
        ct state established,related accept
        ct state invalid drop
        icmp type {{ echo-request, echo-reply, destination-unreachable, time-exceeded }} accept
        ip saddr {bastion} tcp dport 22 accept
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        icmp type {{ echo-request, echo-reply, destination-unreachable, time-exceeded }} accept
        ip saddr {bastion} tcp dport 22 accept
    }}
    chain output {{
        type filter hook output priority filter; policy accept;
    }}
}}
"""


def sample_topology(name: str = "sample", net: str = "10.255", first: int = 1) -> Topology:
    """The sample lab on ``<net>.<first>..<first+2>.0/24``."""
    mgmt, pub, app = (f"{net}.{first + i}" for i in range(3))
    bastion = f"{mgmt}.10"
    bridges = (
        Bridge("mgmt", f"{mgmt}.0/24", "management", host_address=f"{mgmt}.254/24"),
        Bridge("pub", f"{pub}.0/24", "public"),
        Bridge("app", f"{app}.0/24", "dept-app"),
    )
    hosts = (
        LabHost(
            "r1",
            "router",
            (
                Interface("mgmt", f"{mgmt}.1/24"),
                Interface("pub", f"{pub}.1/24"),
                Interface("app", f"{app}.1/24"),
            ),
            forwarding=True,
            ruleset=router_ruleset(bastion),
        ),
        LabHost("bastion", "bastion", (Interface("mgmt", f"{bastion}/24"),), gateway=f"{mgmt}.1"),
        LabHost("web", "compute", (Interface("pub", f"{pub}.10/24"),), gateway=f"{pub}.1"),
        LabHost(
            "app1",
            "hall",
            (Interface("app", f"{app}.10/24"),),
            gateway=f"{app}.1",
            template="hall",
        ),
    )
    return Topology(name, bridges, hosts, meta={"source": "infra.lab.sample"})
