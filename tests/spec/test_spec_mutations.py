"""Property-based: any mutation of a valid spec is either still valid or refused with paths.

Never another exception, never a problem without a location.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govcloud.errors import SpecError
from govcloud.spec import parse
from govcloud.spec.generate import generate
from govcloud.spec.load import format_loc

pytestmark = pytest.mark.unit

LAB = generate("lab")
Path_ = tuple[str | int, ...]


def _leaves(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every path in the raw spec, containers and scalars alike."""
    out: list[Path_] = [path] if path else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, (*path, i))
    return out


PATHS = _leaves(LAB)


def _get(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


SCALAR_PATHS = [p for p in PATHS if not isinstance(_get(LAB, p), dict | list)]

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=2),
)


def _assert_located(raw: dict[str, Any]) -> list[str]:
    try:
        parse(raw)
    except SpecError as exc:
        assert exc.problems, "a refused spec lists at least one problem"
        for p in exc.problems:
            assert p.path, f"problem without a path: {p}"
            assert p.message
        return [p.path for p in exc.problems]
    return []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=junk)
def test_replacing_any_value_is_valid_or_located(path: Path_, value: Any) -> None:
    raw = copy.deepcopy(LAB)
    parent = _get(raw, path[:-1])
    parent[path[-1]] = value
    _assert_located(raw)


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from([p for p in PATHS if isinstance(p[-1], str)]))
def test_deleting_any_key_is_valid_or_located(path: Path_) -> None:
    raw = copy.deepcopy(LAB)
    del _get(raw, path[:-1])[path[-1]]
    _assert_located(raw)


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(SCALAR_PATHS))
def test_a_mapping_where_a_scalar_belongs_is_refused_at_that_path(path: Path_) -> None:
    raw = copy.deepcopy(LAB)
    _get(raw, path[:-1])[path[-1]] = {"bogus": 1}
    located = _assert_located(raw)
    want = format_loc(path)
    assert any(
        p == want or p.startswith(want + ".") or p.startswith(want + "[") for p in located
    ), f"{want} not among {located}"


@settings(max_examples=100, deadline=None)
@given(
    path=st.sampled_from([p for p in SCALAR_PATHS if p[-1] == "code"]),
    digit=st.sampled_from("0123456789"),
)
def test_changing_a_code_prefix_is_refused_at_that_code(path: Path_, digit: str) -> None:
    raw = copy.deepcopy(LAB)
    parent = _get(raw, path[:-1])
    code = parent["code"]
    if not code.isdigit():
        return  # department codes are names, not division codes
    first = str((int(code[0]) + 1) % 10) if digit == code[0] else digit
    parent["code"] = first + code[1:]
    assert format_loc(path) in _assert_located(raw)
