"""The converged role leaves a host alone only if nothing site.yml manages changed, so its
fingerprint must cover every file the site's roles write or set permissions on, and every unit
the baseline masks. Read from the roles themselves, so a new task cannot be forgotten."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.hosts.digests import PLAYBOOKS, roles_of

pytestmark = pytest.mark.unit

WRITERS = {
    "ansible.builtin.template": "dest",
    "ansible.builtin.copy": "dest",
    "ansible.builtin.lineinfile": "path",
    "ansible.builtin.file": "path",
}


# Log shipping's configuration: its certificates come and renew after a site run, so the
# logs play keeps these (and a refresh of that play shows their drift), not site's fingerprint.
NOT_FINGERPRINTED = {
    ("loghost", "/etc/rsyslog.d/10-govcloud-receive.conf"),
    ("logship", "/etc/rsyslog.d/90-govcloud-forward.conf"),
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def _defaults(role: str) -> dict[str, Any]:
    return _yaml(PLAYBOOKS / "roles" / role / "defaults" / "main.yml") or {}


def _paths(task: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The paths a task writes: loop items filled in, role defaults substituted, anything
    else left as a wildcard."""
    for module, key in WRITERS.items():
        if module in task:
            raw = str(task[module][key])
            break
    else:
        return []
    items = task.get("loop") or [{}]
    out = []
    for item in items:
        path = re.sub(
            r"\{\{\s*item\.(\w+)\s*\}\}", lambda m, i=item: str(i.get(m.group(1), "*")), raw
        )
        path = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(defaults.get(m.group(1), "*")), path)
        out.append(path)
    return out


def _managed() -> list[tuple[str, str]]:
    found = []
    for role in roles_of("site.yml"):
        if role == "converged":
            continue
        defaults = _defaults(role)
        for tasks in (PLAYBOOKS / "roles" / role / "tasks").glob("*.yml"):
            for task in _yaml(tasks) or []:
                found += [(role, p) for p in _paths(task, defaults)]
    return found


def test_the_fingerprint_covers_every_file_the_site_roles_write() -> None:
    converged = _defaults("converged")
    patterns = converged["converged_files"] + converged["converged_metadata"]
    managed = _managed()
    assert len(managed) > 20  # the parser found the roles' tasks
    missed = [
        (role, path)
        for role, path in managed
        if (role, path) not in NOT_FINGERPRINTED
        and not any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(p, path) for p in patterns)
    ]
    assert missed == []


def test_the_fingerprint_covers_every_masked_unit() -> None:
    assert set(_defaults("baseline")["baseline_masked_services"]) <= set(
        _defaults("converged")["converged_units"]
    )


def _inventory(ruleset: Path) -> dict[str, Any]:
    host = {"ansible_host": "10.0.0.1", "firewall_ruleset_file": str(ruleset)}
    group = {"hosts": {"compute-1": host}, "vars": {"hall_secrets_dir": str(ruleset.parent)}}
    return {"all": {"vars": {"baseline_admin_user": "ops"}, "children": {"compute": group}}}


def _inputs(inv: dict[str, Any]) -> str:
    from infra.hosts.apply import add_converged_inputs

    add_converged_inputs(inv)
    return str(inv["all"]["children"]["compute"]["hosts"]["compute-1"]["converged_inputs"])


def test_the_inputs_count_files_by_content_not_by_where_they_are(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "compute.nft", tmp_path / "b" / "compute.nft"
    for path in (a, b):
        path.parent.mkdir()
        path.write_text("table inet govcloud {}\n", encoding="utf-8")
    assert _inputs(_inventory(a)) == _inputs(_inventory(b))  # another state directory
    b.write_text("table inet govcloud { chain input {} }\n", encoding="utf-8")
    assert _inputs(_inventory(a)) != _inputs(_inventory(b))  # another ruleset
    other = _inventory(a)
    other["all"]["vars"]["baseline_admin_user"] = "admin"
    assert _inputs(other) != _inputs(_inventory(a))  # another variable
