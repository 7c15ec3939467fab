"""The identity system as one Pulumi resource: OpenBao on the identity hosts, initialised and
unsealed, identity as code applied, host keys signed, the bastion trusting only the SSH CA.

These steps are one procedure (``security.identity.deploy``): the bastion's trust and the
hosts' certificates come from the cluster the same run bootstraps, so they are not separate
plays. The procedure is idempotent; it runs again when its inputs' digest changes.
"""

from __future__ import annotations

from typing import Any

from infra.providers.base import GovProvider, SpecProcedure, admin_credentials, marked_inputs


class IdentityDeploymentProvider(GovProvider):
    kind = "identity deployment"
    ignore = ("__provider", "result", "nodes", "spec")  # as for plays: the digest holds what counts

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from infra.providers.child import in_child

        return "identity", {"result": in_child("infra.providers.identity:deploy_identity", props)}

    def read_(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        """Each OpenBao node's state; a node down, sealed or uninitialised (its host recreated)
        marks the inputs, so refresh shows the drift and the next `up` deploys again (which
        unseals, or initialises a cluster whose old secrets were retired)."""
        from infra.providers.child import in_child

        nodes: dict[str, str] = in_child("infra.providers.identity:node_states", props)
        unwell = any(s not in ("active", "standby") for s in nodes.values())
        return {**props, "nodes": nodes, "inputs": marked_inputs(props, drifted=unwell)}


def deploy_identity(props: dict[str, Any]) -> dict[str, Any]:
    """The procedure itself (run by ``in_child``, away from the provider's gRPC threads)."""
    from govcloud.spec import load_spec
    from security.identity.deploy import deploy

    report = deploy(load_spec(props["spec"]), admin=admin_credentials(props))
    return {
        "host_certificates": report.host_certificates,
        "root_revoked": report.root_revoked,
        "changed": len(report.identity.get("changed", [])),
        # what each of the procedure's plays changed, per host (nothing: it found them as planned)
        "plays": {
            run.playbook: {h.host: h.changed for h in run.hosts.values()} for run in report.runs
        },
    }


def node_states(props: dict[str, Any]) -> dict[str, str]:
    """OpenBao's own word on each identity host (active, standby, sealed, uninitialised, down;
    unknown without the deployment's CA certificate)."""
    from govcloud.spec import load_spec
    from infra.plan import make_plan
    from security.openbao.cluster import Paths, status

    hosts = make_plan(load_spec(props["spec"])).hosts
    return {row["url"]: row["state"] for row in status(hosts, Paths.default())}


class IdentityDeployment(SpecProcedure):
    """The identity system and the bastion's trust, deployed from the spec."""

    provider = IdentityDeploymentProvider
