"""The online hall on the lab's cloud (session-scoped): hall.yml on the configured lab (its
database, backups and edges), then the hall published onto the cloud as its department's app.
For the hall's lab tests and the stack test that finds it as planned."""

from __future__ import annotations

from typing import Any

import pytest

from infra.hosts.runner import RunResult


@pytest.fixture(scope="session")
def hall_lab(
    cloud: Any, identity_lab: Any, configured_lab: tuple[Any, Any]
) -> tuple[Any, RunResult, dict[str, Any]]:
    """The hosts' target, hall.yml's run and what publishing the hall did."""
    from clusters.hallapp import publish_hall
    from infra.hosts.apply import before_play
    from infra.hosts.runner import run_playbook

    target, _ = configured_lab
    before_play("hall.yml", target)  # the edge's certificates, issued by the automation
    first = run_playbook("hall.yml", target.inventory, target.connection)
    assert first.ok, [f.__dict__ for f in first.failures]
    published = publish_hall(target.plan.spec, target.plan.hosts).as_dict()
    return target, first, published
