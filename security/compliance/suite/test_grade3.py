"""Grade-3 evidence, one case per host and control item (see security/compliance/controls.py)."""

from __future__ import annotations

from typing import Any

from security.compliance.checks import CHECKS, Context


def test_control(
    case: tuple[dict[str, Any], Any], host: Any, ctx: Context, record_property: Any
) -> None:
    target, item = case
    record_property("host", target["name"])
    record_property("item", item.id)
    record_property("family", item.family)
    record_property("clause", item.clause)
    evidence = CHECKS[item.id](host, ctx)
    record_property("evidence", evidence)
