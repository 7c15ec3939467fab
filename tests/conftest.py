"""Shared fixtures: the generated specs, built once per test run."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govcloud.spec.generate import generate


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``last`` go to the end, whatever order the paths were given in."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def _lab_raw() -> dict[str, Any]:
    return generate("lab")


@pytest.fixture
def lab_raw(_lab_raw: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy of the lab spec's raw mapping, free to mutate."""
    return copy.deepcopy(_lab_raw)


@pytest.fixture(scope="session")
def guizhou_raw() -> dict[str, Any]:
    """The Guizhou-scale spec's raw mapping (do not mutate: it is shared)."""
    return generate("guizhou")


LAB_SPEC = Path(__file__).resolve().parents[1] / "examples" / "lab.yaml"
FAILLOCK = "/etc/security/faillock.conf"


def loosen_faillock(lab: Any, host: str) -> None:
    """A hand-made change on a lab host that the baseline undoes: lockout after 50 failed
    logins instead of 5."""
    lab.exec(host, ["sed", "-i", "s/^deny = .*/deny = 50/", FAILLOCK])


def faillock_text(lab: Any, host: str) -> str:
    return str(lab.exec(host, ["cat", FAILLOCK]).stdout)


def lab_unusable() -> str | None:
    """Why the lab cannot run here, or None."""
    import shutil

    from infra.lab import lxc

    if not lxc.is_root():
        return "the lab needs root"
    if shutil.which("lxc-create") is None:
        return "LXC is not installed (make deps installs it)"
    return None


@pytest.fixture(scope="session")
def spec_lab() -> Iterator[Any]:
    """The lab of the lab spec, up once for the whole test run, torn down at its end
    (kept when GOVCLOUD_KEEP_LAB=1, for a quicker next run). A lab found up for another
    project's state directory is brought down first."""
    reason = lab_unusable()
    if reason:
        pytest.skip(reason)
    from govcloud.spec import load_spec
    from infra.lab.from_plan import plan_topology
    from infra.lab.lab import Lab, down, up
    from infra.lab.state import LabPaths, load_state, this_project

    topo = plan_topology(load_spec(LAB_SPEC))
    found = load_state(LabPaths.default(), topo.name)
    if found and found.project != this_project():
        # a lab another checkout brought up: the secrets its hosts hold are not in our state
        down(topo.name)
    up(topo)
    yield topo
    if not os.environ.get("GOVCLOUD_KEEP_LAB"):
        down(topo.name)
        lab = Lab(topo.name)
        left = lab.our_containers() + lab.our_bridges()
        assert not left, f"lab down left {left}"


@pytest.fixture(scope="session")
def configured_lab(spec_lab: Any) -> Iterator[tuple[Any, Any]]:
    """The spec lab after one `hosts apply` (the site playbook), with that run's result."""
    from govcloud.spec import load_spec
    from infra.hosts.apply import apply, lab_credentials, prepare

    target = prepare(load_spec(LAB_SPEC), lab_credentials())
    first = apply(target)
    assert first.ok, [f.__dict__ for f in first.failures]
    yield target, first


# the lab's cluster (session-scoped), for the cluster tests and the host compliance tests
from tests.cloudlab import cloud  # noqa: E402, F401

# the lab's identity system (session-scoped), for the identity tests and the hall on the cloud
from tests.identitylab import identity_lab  # noqa: E402, F401


@pytest.fixture(scope="session")
def logs_shipped(configured_lab: tuple[Any, Any], request: pytest.FixtureRequest) -> Any:
    """Log shipping over TLS turned on, as the Pulumi program does after identity: the
    automation issues every host's log certificate, then logs.yml. Returns that run."""
    from infra.hosts.apply import before_play
    from infra.hosts.runner import run_playbook

    request.getfixturevalue("identity_lab")  # the automation identity issues the certificates
    target, _ = configured_lab
    before_play("logs.yml", target)
    result = run_playbook("logs.yml", target.inventory, target.connection)
    assert result.ok, [f.__dict__ for f in result.failures]
    return result
