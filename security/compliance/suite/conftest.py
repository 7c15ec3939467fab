"""The compliance suite's fixtures: one testinfra ``host`` per target host, through the bastion.

Targets come from the JSON file named by ``$GOVCLOUD_COMPLIANCE_TARGETS`` (written by
``govcloud compliance check`` from the plan's inventory): the ssh_config, and each host's name,
address and role. One test case per (host, control item).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import testinfra

from security.compliance.checks import Context
from security.compliance.controls import ITEMS, applies


def _targets() -> dict[str, Any]:
    path = os.environ.get("GOVCLOUD_COMPLIANCE_TARGETS")
    if not path:
        raise pytest.UsageError(
            "GOVCLOUD_COMPLIANCE_TARGETS is not set: run this suite through "
            "`govcloud compliance check`"
        )
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    targets = _targets()
    cases = [(h, item) for h in targets["hosts"] for item in ITEMS if applies(item, h["role"])]
    metafunc.parametrize("case", cases, ids=[f"{h['name']}::{i.id}" for h, i in cases])


_HOSTS: dict[str, Any] = {}
_CONTEXTS: dict[str, Context] = {}


@pytest.fixture
def host(case: tuple[dict[str, Any], Any]) -> Any:
    """The testinfra host of this case (connections are reused across its cases)."""
    target = case[0]
    if target["name"] not in _HOSTS:
        cfg = _targets()["ssh_config"]
        _HOSTS[target["name"]] = testinfra.get_host(
            f"ssh://{target['name']}", ssh_config=cfg, sudo=True
        )
    return _HOSTS[target["name"]]


@pytest.fixture
def ctx(case: tuple[dict[str, Any], Any]) -> Context:
    target = case[0]
    if target["name"] not in _CONTEXTS:
        t = _targets()
        _CONTEXTS[target["name"]] = Context(
            target["role"],
            t["bastion"],
            t["loghost"],
            frozenset(target.get("ports", ())),
            target.get("address", ""),
        )
    return _CONTEXTS[target["name"]]
