"""The identity system on the lab, for every test that needs OpenBao (session-scoped): applied
once (kept between runs), every node unsealed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from govcloud.spec import load_spec
from govcloud.spec.model import Spec
from infra.inventory import InvHost
from infra.plan import make_plan
from security.access.ssh_config import Layout
from security.identity.plan import IdentityPlan, make_identity_plan
from security.openbao.cluster import Paths, bootstrap, status

LAB = Path(__file__).resolve().parents[1] / "examples" / "lab.yaml"


@dataclass
class IdentityLab:
    spec: Spec
    hosts: list[InvHost]
    plan: IdentityPlan
    paths: Paths
    applied: dict[str, Any] | None

    def host(self, name: str) -> InvHost:
        return next(h for h in self.hosts if h.name == name)


def _hosts_configured() -> bool:
    """The site playbook ran: the log host receives (session logs are shipped there)."""
    from infra.lab.lab import Lab

    probe = ["test", "-f", "/etc/rsyslog.d/10-govcloud-receive.conf"]
    return Lab("lab").exec("loghost", probe, check=False).returncode == 0


@pytest.fixture(scope="session")
def identity_lab(spec_lab: Any, request: pytest.FixtureRequest) -> IdentityLab:
    """`govcloud identity apply` once if the lab has no identity system yet (or when
    GOVCLOUD_IDENTITY_APPLY=1), after `hosts apply` if the hosts were never configured;
    afterwards every OpenBao node is unsealed."""
    if not _hosts_configured():
        request.getfixturevalue("configured_lab")
    spec = load_spec(LAB)
    hosts = make_plan(spec).hosts
    paths = Paths.default()
    plan = make_identity_plan(spec, hosts)
    ready = (
        paths.credentials_file.is_file()
        and Layout.default().pinned_hosts.is_file()
        and any(r["state"] in ("active", "standby", "sealed") for r in status(hosts, paths))
    )
    applied = None
    if not ready or os.environ.get("GOVCLOUD_IDENTITY_APPLY"):
        from security.identity.deploy import deploy

        applied = deploy(spec).as_dict()
    bootstrap(hosts, paths)
    return IdentityLab(spec, hosts, plan, paths, applied)
