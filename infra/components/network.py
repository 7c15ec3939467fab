"""GovNetwork: the government network's plan as resources.

One address block per county (its townships and villages are data inside it, not resources:
a province stays within a few hundred resources), one per city and the province, and one
ruleset per router and host role. Previews and diffs name the county or ruleset that changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from infra.network.addressing import Site
from infra.plan import Plan
from infra.providers.base import RecordProvider, digest


class PlannedRecord(Resource):
    """A piece of the plan, recorded: ``content`` is its digest, ``summary`` what it holds."""

    content: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        kind: str,
        content: str,
        summary: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            RecordProvider(),
            name,
            {"name": name, "kind": kind, "content": content, "summary": summary},
            opts,
        )


@dataclass(frozen=True)
class GovNetworkArgs:
    plan: Plan


def _block(site: Site) -> dict[str, Any]:
    villages = sum(len(t.children) for t in site.children)
    return {
        "code": site.code,
        "name": site.name,
        "block": site.as_dict()["block"],
        "townships": len(site.children),
        "villages": villages,
    }


class GovNetwork(pulumi.ComponentResource):
    rulesets: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: GovNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("govcloud:index:GovNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = args.plan
        self.blocks: list[PlannedRecord] = []
        for province in plan.addresses.roots:
            self.blocks.append(
                PlannedRecord(
                    f"block-{province.code}",
                    "province",
                    digest(province.as_dict()),
                    {"code": province.code, "block": province.as_dict()["block"]},
                    child,
                )
            )
            for city in province.children:
                self.blocks.append(
                    PlannedRecord(
                        f"block-{city.code}",
                        "city",
                        digest(city.as_dict()),
                        {"code": city.code, "block": city.as_dict()["block"]},
                        child,
                    )
                )
                for county in city.children:  # the county's whole subtree is its content
                    subtree = [county.as_dict()] + [
                        s.as_dict() for t in county.children for s in (t, *t.children)
                    ]
                    self.blocks.append(
                        PlannedRecord(
                            f"block-{county.code}", "county", digest(subtree), _block(county), child
                        )
                    )
        self.ruleset_records = {
            key: PlannedRecord(
                f"ruleset-{key}", "nftables", digest(text), {"lines": text.count("\n")}, child
            )
            for key, text in sorted(plan.rulesets.items())
        }
        rules = [r.as_dict() for r in plan.policy.rules]
        self.policy = PlannedRecord(
            "policy",
            "policy",
            digest(rules),
            {
                "rules": rules,
                "intranet": plan.spec.network.supernets.intranet,
                "bastion": [h.address for h in plan.hosts if h.role == "bastion"],
            },
            child,
        )
        self.rulesets = pulumi.Output.from_input(
            {k: digest(v) for k, v in sorted(plan.rulesets.items())}
        )
        self.register_outputs(
            {"rulesets": self.rulesets, "extranet": plan.spec.network.supernets.extranet}
        )
