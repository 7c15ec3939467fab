"""Digests that decide when configuration must be applied again: of JSON-able data, of the
files of a playbook and its roles, and of what one run of a playbook applies to one host."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from govcloud.paths import PROJECT_ROOT

PLAYBOOKS = PROJECT_ROOT / "playbooks"


def digest(value: Any) -> str:
    """A stable short hash of JSON-able data (what decides whether something changed)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tree_digest(*roots: Path) -> str:
    """A digest of every file under ``roots`` (paths and contents)."""
    parts = []
    for root in roots:
        for p in sorted(root.rglob("*") if root.is_dir() else [root]):
            if p.is_file():
                parts.append((str(p.relative_to(root.parent)), p.read_bytes().hex()))
    return digest(parts)


def roles_of(playbook: str) -> list[str]:
    """The roles a playbook uses (``roles:`` and ``include_role``), with their meta
    dependencies."""
    import yaml

    def names(entries: Any) -> list[str]:
        out = []
        for e in entries or []:
            name = e.get("role") if isinstance(e, dict) else e
            if isinstance(name, str):
                out.append(name)
        return out

    todo = []
    for play in yaml.safe_load((PLAYBOOKS / playbook).read_text()) or []:
        todo += names(play.get("roles"))
        for task in [*(play.get("pre_tasks") or []), *(play.get("tasks") or [])]:
            included = task.get("ansible.builtin.include_role") or {}
            todo += [included["name"]] if "name" in included else []
    seen: list[str] = []
    while todo:
        role = todo.pop()
        if role in seen:
            continue
        seen.append(role)
        meta = PLAYBOOKS / "roles" / role / "meta" / "main.yml"
        if meta.is_file():
            todo += names((yaml.safe_load(meta.read_text()) or {}).get("dependencies"))
    return sorted(seen)


def playbook_digest(playbook: str) -> str:
    """A digest of a playbook and every role it uses."""
    roles = [PLAYBOOKS / "roles" / r for r in roles_of(playbook)]
    return tree_digest(PLAYBOOKS / playbook, *roles)
