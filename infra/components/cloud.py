"""The components that provision the cloud from the plan: the data center's hosts and their
configuration, the identity system and bastion, the tenant cloud, the halls.

Each takes an ``Args`` object, parents its children, exposes outputs and registers them.
Plays whose playbook is not in this checkout are left out, so the program grows as they land.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi

from infra.components.network import GovNetwork, PlannedRecord
from infra.hosts.digests import PLAYBOOKS, digest, playbook_digest, roles_of, tree_digest
from infra.inventory import ansible_inventory
from infra.plan import Plan
from infra.providers.ansible import AnsiblePlay
from infra.providers.base import SpecProcedure
from infra.providers.identity import IdentityDeployment
from infra.settings import Settings


def play_inputs(plan: Plan, playbook: str) -> str:
    """What a play depends on: its playbook and roles, the inventory, the rulesets, and for
    the halls the catalog seed plan (a new department or site re-runs the hall play)."""
    parts: list[Any] = [
        playbook_digest(playbook),
        ansible_inventory(plan.spec, plan.hosts),
        sorted(plan.rulesets.items()),
    ]
    if "hall" in roles_of(playbook):
        from clusters.hallseed import seed_plan
        from clusters.hallsite import hall_site

        parts += [seed_plan(plan.spec), hall_site(plan.spec)]
    return digest(parts)


def _play(
    name: str, playbook: str, args: Any, parent: pulumi.Resource, depends_on: list[pulumi.Resource]
) -> AnsiblePlay:
    s: Settings = args.settings
    return AnsiblePlay(
        name,
        playbook=playbook,
        spec=str(s.spec),
        inputs=play_inputs(args.plan, playbook),
        user=s.admin_user,
        identity_file=str(s.identity_file) if s.identity_file else None,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
    )


@dataclass(frozen=True)
class DataCenterArgs:
    plan: Plan
    settings: Settings
    network: GovNetwork


class DataCenter(pulumi.ComponentResource):
    """The inventory's hosts (LXC containers on the lab target, registered existing hosts
    otherwise, department VM hosts in their private segments) and their configuration."""

    hosts: pulumi.Output[dict[str, str]]
    bastion: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataCenterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:DataCenter", name, None, opts)
        plan = args.plan
        made: list[pulumi.Resource] = []
        if args.settings.target == "lab":
            from infra.lab.from_plan import lab_topology
            from infra.providers.lab import LabFabric

            made.append(
                LabFabric("fabric", lab_topology(plan), pulumi.ResourceOptions(parent=self))
            )
        self.records = [
            PlannedRecord(
                f"host-{h.name}",
                "host",
                digest(h.as_dict()),
                {"role": h.role, "zone": h.zone, "address": h.address, "rack": h.rack or ""},
                pulumi.ResourceOptions(parent=self, depends_on=made),
            )
            for h in plan.hosts
        ]
        rulesets = list(args.network.ruleset_records.values())
        self.site = _play("site", "site.yml", args, self, [*made, *rulesets])
        managed = {h.name: h.address for h in plan.hosts if h.zone != "intranet"}
        self.hosts = pulumi.Output.from_input(managed)
        self.bastion = pulumi.Output.from_input(
            next((h.address for h in plan.hosts if h.role == "bastion"), "")
        )
        self.register_outputs({"hosts": self.hosts, "bastion": self.bastion})


@dataclass(frozen=True)
class PlayArgs:
    plan: Plan
    settings: Settings
    after: list[pulumi.Resource] = dataclasses.field(default_factory=list)


P = TypeVar("P", bound=SpecProcedure)


def _procedure(cls: type[P], name: str, inputs: str, args: PlayArgs, parent: pulumi.Resource) -> P:
    """A procedure run over the spec's hosts, logging in as the stack's administrator."""
    s = args.settings
    return cls(
        name,
        spec=str(s.spec),
        inputs=inputs,
        user=s.admin_user,
        identity_file=str(s.identity_file) if s.identity_file else None,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=args.after),
    )


def identity_inputs(plan: Plan) -> str:
    """What the identity deployment depends on: its playbooks and roles, the inventory, and
    the identity plan (mounts, policies, groups, users, SSH roles, TTLs) made from the spec."""
    from security.identity.plan import make_identity_plan

    roles = [PLAYBOOKS / "roles" / r for b in IDENTITY_PLAYBOOKS for r in roles_of(b)]
    return digest(
        [
            tree_digest(*(PLAYBOOKS / b for b in IDENTITY_PLAYBOOKS), *roles),
            ansible_inventory(plan.spec, plan.hosts),
            dataclasses.asdict(make_identity_plan(plan.spec, plan.hosts)),
        ]
    )


IDENTITY_PLAYBOOKS = ("identity.yml", "bastion.yml")


class Identity(pulumi.ComponentResource):
    """The OpenBao cluster on the identity hosts, identity as code, host certificates and the
    bastion's trust in the SSH CA (one procedure: ``IdentityDeployment``)."""

    address: pulumi.Output[str]

    def __init__(
        self, name: str, args: PlayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:Identity", name, None, opts)
        self.deployment = _procedure(
            IdentityDeployment, "identity", identity_inputs(args.plan), args, self
        )
        first = next((h.address for h in args.plan.hosts if h.role == "identity"), "")
        self.address = pulumi.Output.from_input(f"https://{first}:8200" if first else "")
        self.register_outputs({"address": self.address})


class Bastion(pulumi.ComponentResource):
    """The bastion: the one way in, trusting only the identity system's SSH CA and logging
    every session. Configured by the identity deployment it waits for (``args.after``)."""

    address: pulumi.Output[str]

    def __init__(
        self, name: str, args: PlayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "govcloud:index:Bastion",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=args.after)),
        )
        self.address = pulumi.Output.from_input(
            next((h.address for h in args.plan.hosts if h.role == "bastion"), "")
        )
        self.register_outputs({"address": self.address})


class Halls(pulumi.ComponentResource):
    """The online hall around the cloud: its edge on the hall hosts (nginx serving HTTPS with
    each host's certificate from the PKI, forwarding to the nodes) and its database on the
    department's own host (hall.yml); ``urls`` are the edges by their own names. The app
    itself is the department's, on the cloud: ``HallApp``."""

    urls: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: PlayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:Halls", name, None, opts)
        self.play = (
            _play("halls", "hall.yml", args, self, args.after)
            if (PLAYBOOKS / "hall.yml").is_file()
            else None
        )
        from security.pki.hostcerts import edge_certs

        self.urls = pulumi.Output.from_input(
            [f"https://{c.stem}/" for c in edge_certs(args.plan.spec, args.plan.hosts)]
        )
        self.register_outputs({"urls": self.urls})


class LogShipping(pulumi.ComponentResource):
    """Every host ships its logs to the log host over TLS, each with its own certificate from
    the PKI (logs.yml, after identity: the automation identity issues them)."""

    def __init__(
        self, name: str, args: PlayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:LogShipping", name, None, opts)
        self.play = _play("logs", "logs.yml", args, self, args.after)
        self.register_outputs({})


def cluster_inputs(plan: Plan) -> str:
    """What the cluster deployment depends on: its playbook and roles, the inventory, the
    cluster plan, and the stamps of the tools it installs (a rebuilt kubelet is a new input)."""
    from clusters.cloud.apply import NODE_TOOLS
    from clusters.cloud.plan import make_cluster_plan
    from govcloud.toolchain.tools import bin_dir

    cp = make_cluster_plan(plan.spec, plan.hosts)
    stamps = bin_dir() / ".stamps"
    return digest(
        [
            playbook_digest("cluster.yml"),
            ansible_inventory(plan.spec, plan.hosts),
            cp.as_dict() if cp else None,
            [(t, (stamps / t).read_text() if (stamps / t).is_file() else None) for t in NODE_TOOLS],
        ]
    )


class Cluster(pulumi.ComponentResource):
    """The cloud's Kubernetes cluster: registry, control plane, worker nodes, DNS and the
    NetworkPolicy agent (one procedure: ``ClusterDeployment``). Exposes the platform
    administrator's kubeconfig and the API server's address."""

    kubeconfig: pulumi.Output[str]
    server: pulumi.Output[str]

    def __init__(
        self, name: str, args: PlayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:Cluster", name, None, opts)
        from clusters.cloud.pki import cluster_dir
        from clusters.cloud.plan import make_cluster_plan
        from infra.providers.cluster import ClusterDeployment

        cp = make_cluster_plan(args.plan.spec, args.plan.hosts)
        self.deployment = _procedure(
            ClusterDeployment, "cluster", cluster_inputs(args.plan), args, self
        )
        self.kubeconfig = pulumi.Output.from_input(str(cluster_dir() / "admin.kubeconfig"))
        self.server = pulumi.Output.from_input(cp.server if cp else "")
        self.register_outputs({"kubeconfig": self.kubeconfig, "server": self.server})


def hall_app_inputs(plan: Plan) -> str:
    """What the hall's deployment depends on: the app's files (its code, image definition and
    app spec) and the tenant it goes to (edge port, database host, addresses)."""
    from clusters.hallapp import HALL_DIR
    from clusters.hallsite import hall_site

    site = hall_site(plan.spec)
    sources = sorted(  # what goes into the image and the app spec, not Python's byte code
        (str(p.relative_to(HALL_DIR)), p.read_bytes().hex())
        for p in HALL_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    return digest(
        [
            sources,
            site,
            [(h.name, h.address) for h in plan.hosts if h.role in ("compute", "vm")],
        ]
    )


class HallApp(pulumi.ComponentResource):
    """The online hall on the cloud: its image in the registry, its secrets in the
    department's OpenBao mount, deployed by the department's operator into its tenant (one
    procedure: ``infra.providers.hallapp.HallApp``). Exposes the namespace it runs in."""

    namespace: pulumi.Output[str]

    def __init__(
        self, name: str, args: PlayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:HallApp", name, None, opts)
        from clusters.hallsite import hall_site
        from govcloud.naming import tenant_namespace
        from infra.providers.hallapp import HallApp as HallAppProcedure

        site = hall_site(args.plan.spec)
        self.deployment = _procedure(
            HallAppProcedure, "hall-app", hall_app_inputs(args.plan), args, self
        )
        self.namespace = pulumi.Output.from_input(
            tenant_namespace(site.department, "prod") if site else ""
        )
        self.register_outputs({"namespace": self.namespace})
