"""One private PostgreSQL cluster and one hall app for the whole test session (shared by
tests/hall and tests/loadtests): real PostgreSQL on loopback, the real app on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clusters.apps.hall.devserver import LocalHall, LocalPostgres, http_json
from clusters.hallseed import seed_plan
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC

_STATE: dict[str, object] = {}


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    if "pg" not in _STATE:
        _STATE["pg"] = LocalPostgres().start()
        owner = True
    else:
        owner = False
    cluster = _STATE["pg"]
    assert isinstance(cluster, LocalPostgres)
    yield cluster
    if owner:
        _STATE.pop("hall", None)
        cluster.stop()
        _STATE.pop("pg", None)


@pytest.fixture(scope="session")
def seeded(pg: LocalPostgres) -> dict[str, int]:
    if "seeded" not in _STATE:
        plan = seed_plan(load_spec(LAB_SPEC))
        _STATE["seeded"] = LocalHall(pg).seed(plan)
    counts = _STATE["seeded"]
    assert isinstance(counts, dict)
    return counts


@pytest.fixture(scope="session")
def hall(pg: LocalPostgres, seeded: dict[str, int]) -> Iterator[LocalHall]:
    if "hall" not in _STATE:
        _STATE["hall"] = LocalHall(pg).start()
        owner = True
    else:
        owner = False
    app = _STATE["hall"]
    assert isinstance(app, LocalHall)
    yield app
    if owner:
        app.stop()


@pytest.fixture
def no_faults(hall: LocalHall) -> Iterator[LocalHall]:
    """The hall with its fault switch cleared before and after the test."""
    http_json("PUT", hall.url + "/api/admin/faults", {"faults": ""}, hall.admin_token)
    yield hall
    http_json("PUT", hall.url + "/api/admin/faults", {"faults": ""}, hall.admin_token)
