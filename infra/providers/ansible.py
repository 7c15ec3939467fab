"""An Ansible play as a Pulumi resource: runs a playbook on a host set through the project's
ansible-runner wrapper. Its inputs' digest (playbook and roles, inventory, planned files)
decides when it runs again; ``read`` (``pulumi refresh``) runs the play in check mode and
records the hosts that would change, so a hand-made change on a host shows up as drift.
"""

from __future__ import annotations

import sys
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from govcloud.errors import OperationError
from infra.providers.base import GovProvider, admin_credentials, marked_inputs


class AnsiblePlayProvider(GovProvider):
    kind = "ansible play"
    # the spec's path says where to read it, not what it holds: what the play depends on is
    # in ``inputs`` (the digest), so a spec moved elsewhere unchanged re-runs nothing
    ignore = ("__provider", "result", "drift", "spec")

    def _run(self, props: dict[str, Any], *, check: bool = False) -> dict[str, Any]:
        from infra.providers.child import in_child

        result: dict[str, str] = in_child(
            "infra.providers.ansible:run_play", {**props, "check": check}
        )
        return result

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        result = self._run(props)
        return props["playbook"], {"result": result, "drift": {}}

    def read_(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        would = self._run(props, check=True)
        drift = {h: s for h, s in would.items() if s != "ok"}
        return {**props, "drift": drift, "inputs": marked_inputs(props, drifted=bool(drift))}


def run_play(props: dict[str, Any]) -> dict[str, str]:
    """The play itself (run by ``in_child``, away from the provider's gRPC threads)."""
    from govcloud.spec import load_spec
    from infra.hosts.apply import before_play, prepare, silent_bastion
    from infra.hosts.runner import RunResult, retry_unreachable, run_playbook

    check = bool(props.get("check"))
    target = prepare(load_spec(props["spec"]), admin_credentials(props))
    silent = silent_bastion(target.plan.hosts) if check else None
    if silent:  # refresh of a cloud whose hosts are gone: no need to wait for every one
        return {silent: "unreachable"}
    before_play(props["playbook"], target, check=check, say=_stderr)

    def play(limit: str | None) -> RunResult:
        return run_playbook(
            props["playbook"], target.inventory, target.connection, limit=limit, check=check
        )

    result = play(props.get("limit") or None)
    if not check:  # a refresh reports an unreachable host as it is
        result = retry_unreachable(result, play)
    if not check and not result.ok:
        detail = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures[:5])
        raise OperationError(f"{props['playbook']} failed: {detail}")
    return {h.host: h.status for h in result.hosts.values()}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class AnsiblePlay(Resource):
    """``playbooks/<playbook>`` applied to the spec's hosts; re-run when its inputs change."""

    result: pulumi.Output[dict[str, str]]
    drift: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        *,
        playbook: str,
        spec: str,
        inputs: str,
        limit: str | None = None,
        user: str | None = None,
        identity_file: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            AnsiblePlayProvider(),
            name,
            {
                "playbook": playbook,
                "spec": spec,
                "inputs": inputs,
                "limit": limit,
                "user": user,
                "identity_file": identity_file,
                "result": None,
                "drift": None,
            },
            opts,
        )
