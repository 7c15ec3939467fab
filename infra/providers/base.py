"""The one base of govcloud's dynamic providers.

Subclasses implement plain methods (``create_``, ``read_``, ``update_``, ``delete_`` and, when
the default comparison is not enough, ``diff_``) over dictionaries; this base turns them into
Pulumi's results and every failure into the project's own exception with what was being done.
Clients (LXC, Ansible, hvac, kubernetes) are built inside those methods, never kept on the
provider, which Pulumi serializes into the state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from govcloud.errors import GovcloudError, OperationError
from infra.hosts.digests import digest as digest  # the providers' one digest


def admin_credentials(props: dict[str, Any]) -> Any:
    """The administrator's account and key on the hosts from a resource's ``user`` and
    ``identity_file`` inputs (no key: the lab's own)."""
    from pathlib import Path

    from infra.hosts.apply import lab_credentials
    from security.access.ssh_config import Credentials

    key = props.get("identity_file")
    return Credentials(props.get("user") or "ops", Path(key)) if key else lab_credentials()


DRIFT = "+drift"


def marked_inputs(props: dict[str, Any], *, drifted: bool) -> str:
    """A resource's ``inputs`` digest as ``read`` (`pulumi refresh`) returns it: marked once when
    what it configured drifted, so the refreshed state differs from the program's inputs and
    the next `up` applies again; unmarked when all is well again."""
    inputs = str(props.get("inputs", "")).removesuffix(DRIFT)
    return inputs + DRIFT if drifted else inputs


class GovProvider(ResourceProvider):
    """Base of every govcloud dynamic provider."""

    #: a short name for messages ("lab fabric", "ansible play", ...)
    kind = "resource"
    #: inputs whose change needs a new resource rather than an update
    replace_on: tuple[str, ...] = ()
    #: inputs not compared by the default diff (bookkeeping)
    ignore: tuple[str, ...] = ("__provider",)

    # -- what subclasses implement ------------------------------------------------------------

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def read_(self, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        return props

    def update_(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        _, outs = self.create_(news)
        return outs

    def delete_(self, id_: str, props: dict[str, Any]) -> None:
        return None

    def diff_(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        """The names of the inputs that changed."""
        keys = (set(olds) | set(news)) - set(self.ignore)
        return sorted(k for k in keys if olds.get(k) != news.get(k) and k in news)

    # -- Pulumi's interface --------------------------------------------------------------------

    def _guard(self, action: str, fn: Any) -> Any:
        try:
            return fn()
        except GovcloudError:
            raise
        except Exception as exc:  # a client's own exception: say what we were doing
            raise OperationError(
                f"{self.kind}: {action} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def create(self, props: dict[str, Any]) -> CreateResult:
        id_, outs = self._guard("create", lambda: self.create_(props))
        return CreateResult(id_, {**props, **outs})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        outs = self._guard("read", lambda: self.read_(id_, props))
        return ReadResult(id_, outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = self._guard("update", lambda: self.update_(id_, olds, news))
        return UpdateResult({**news, **outs})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self._guard("delete", lambda: self.delete_(id_, props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changes = self._guard("diff", lambda: self.diff_(olds, news))
        replaces = [k for k in changes if k in self.replace_on]
        return DiffResult(
            changes=bool(changes),
            replaces=replaces,
            stables=[],
            delete_before_replace=bool(replaces),
        )


class RecordProvider(GovProvider):
    """Planned data made visible as a resource (a county's address block, a ruleset): nothing to
    touch outside Pulumi, but previews and diffs show exactly which piece of the plan changed."""

    kind = "planned record"

    def create_(self, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return str(props.get("name") or digest(props)), {}


class SpecProcedure(Resource):
    """A resource whose work is one procedure run over the spec's hosts (the identity system,
    the cluster): its inputs are the spec, the digest of what the procedure depends on, and the
    administrator account and key it logs in with; ``result`` is what the procedure reports."""

    provider: ClassVar[type[ResourceProvider]]
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
        props = {"spec": spec, "inputs": inputs, "user": user, "identity_file": identity_file}
        super().__init__(self.provider(), name, {**props, "result": None}, opts)
