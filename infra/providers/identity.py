"""The identity system as one Pulumi resource: OpenBao on the identity hosts, initialised and
unsealed, identity as code applied, host keys signed, the bastion trusting only the SSH CA.

These steps are one procedure (``security.identity.deploy``): the bastion's trust and the
hosts' certificates come from the cluster the same run bootstraps, so they are not separate
plays. The procedure is idempotent; it runs again when its inputs' digest changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from infra.providers.base import GovProvider


class IdentityDeploymentProvider(GovProvider):
    kind = "identity deployment"
    ignore = ("__provider", "result")

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        from infra.providers.child import in_child

        return "identity", {"result": in_child("infra.providers.identity:deploy_identity", props)}


def deploy_identity(props: dict[str, Any]) -> dict[str, Any]:
    """The procedure itself (run by ``in_child``, away from the provider's gRPC threads)."""
    from govcloud.spec import load_spec
    from infra.hosts.apply import lab_credentials
    from security.access.ssh_config import Credentials
    from security.identity.deploy import deploy

    key = props.get("identity_file")
    admin = Credentials(props.get("user") or "ops", Path(key)) if key else lab_credentials()
    report = deploy(load_spec(props["spec"]), admin=admin)
    return {
        "host_certificates": report.host_certificates,
        "root_revoked": report.root_revoked,
        "changed": len(report.identity.get("changed", [])),
    }


class IdentityDeployment(Resource):
    """The identity system and the bastion's trust, deployed from the spec."""

    result: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        *,
        spec: str,
        inputs: str,
        user: str | None = None,
        identity_file: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            IdentityDeploymentProvider(),
            name,
            {
                "spec": spec,
                "inputs": inputs,
                "user": user,
                "identity_file": identity_file,
                "result": None,
            },
            opts,
        )
