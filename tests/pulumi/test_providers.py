"""Dynamic providers' CRUD called directly (no engine) against the real backends."""

from __future__ import annotations

from typing import Any

import pytest

from infra.lab.lab import Lab, down
from infra.lab.sample import sample_topology
from infra.providers.lab import LabFabricProvider, host_digests, topology_to_json
from tests.conftest import lab_unusable

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "gcprov"


@pytest.fixture(scope="module")
def props() -> Any:
    reason = lab_unusable()
    if reason:
        pytest.skip(reason)
    down(NAME)  # left by a killed run
    topo = sample_topology(NAME, "10.253", 21)
    yield {
        "lab": NAME,
        "topology": topology_to_json(topo),
        "hosts": host_digests(topo),
        "states": None,
    }
    down(NAME)


def test_lab_fabric_crud_and_drift(props: dict[str, Any]) -> None:
    provider = LabFabricProvider()
    created = provider.create(props)
    assert created.id == NAME
    assert set(created.outs["states"].values()) == {"RUNNING"}

    lab = Lab(NAME)
    lab.lxc.stop(lab.container("web"), kill=True)  # a hand-made change behind Pulumi's back
    read = provider.read(NAME, created.outs)
    assert read.outs["states"]["web"] == "STOPPED"
    assert read.outs["hosts"]["web"] == "stopped"
    diff = provider.diff(NAME, read.outs, props)
    assert diff.changes is True and diff.replaces == []
    assert provider.diff_(read.outs, props) == ["hosts.web"]  # exactly the drifted host

    updated = provider.update(NAME, read.outs, props)  # converges again
    assert updated.outs["states"]["web"] == "RUNNING"
    assert provider.diff(NAME, {**props, **updated.outs}, props).changes is False

    provider.delete(NAME, updated.outs)
    assert Lab(NAME).our_containers() == [] and Lab(NAME).our_bridges() == []
