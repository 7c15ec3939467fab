"""Shared fixtures: the generated specs, built once per test run."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from govcloud.spec.generate import generate


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
