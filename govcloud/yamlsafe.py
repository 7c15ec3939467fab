"""The one way govcloud reads YAML that people wrote: specs, app specs, load profiles.

Those files arrive through merge requests and GitOps repositories, so they are input, not trusted
configuration. A YAML file can describe far more data than it holds: anchors and aliases let a
1 KB file stand for hundreds of millions of strings (the "billion laughs" alias bomb), and the
code that walks the loaded data then runs out of memory. :func:`load_yaml` refuses a file that
passes one of three limits before it is built into Python objects, naming the file, the limit and
what it found:

1. its size, checked before it is read;
2. its number of nodes once every alias is expanded (each scalar, list and mapping is one node;
   an alias counts as many nodes as the anchored node it repeats);
3. how deeply it nests, aliases included.

How, so that loading costs only a few percent more than libyaml's own loader (``CSafeLoader``;
``bench/yaml_limits.py``) and a refusal takes well under a second and no more memory than the
file's text:

- a large file is first run through libyaml's parser in C without building anything
  (``raw_parse`` counts its events), which bounds the number of nodes before any is built; when
  that count is not conclusive, or the file has aliases, the parser's events are counted exactly
  in Python (an alias adds the size of what it repeats), stopping at the limit;
- then the file is composed into libyaml's node graph (aliases are shared nodes there, so the
  graph is as small as the text) and the graph is measured with each node's expanded size and
  height computed once and remembered, so an alias costs one addition however much it repeats;
- only then are the Python objects built.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode

from govcloud.errors import InputError, Problem

try:  # libyaml is an order of magnitude faster on province-scale specs
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - the PyPI wheels ship libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

# The largest spec govcloud makes, `govcloud spec generate --profile guizhou` (17,342 villages,
# 59 departments), is 796,898 bytes and 34,841 nodes and nests 11 levels; the lab spec nests 12.
# Each limit is about ten times that, so a province ten times Guizhou's size still loads (the
# --scale 10 spec is 6.3 MB and 190,919 nodes; bench/yaml_limits.py loads it), while a file
# that expands past it is refused before it costs more memory than such a province.
MAX_FILE_BYTES = 8 * 1024 * 1024
"""Ten times the Guizhou spec's 0.8 MB, rounded up to 8 MiB."""
MAX_NODES = 350_000
"""Ten times the Guizhou spec's 34,841 nodes, rounded up."""
MAX_DEPTH = 120
"""Ten times the lab spec's 12 levels; far below libyaml's own limit of 1,000 and Python's
recursion limit, which code walking the loaded data (validation, JSON output) would hit."""

QUICK_BYTES = 64 * 1024
"""Files up to this size are composed without a counting pass first: they hold at most about
one node a byte, which libyaml composes in a fraction of a second."""

ErrorFactory = Callable[[list[Problem]], InputError]


class _Refused(Exception):
    """A limit was passed; the message says which and what was found."""


def load_yaml(path: Path, error: ErrorFactory = InputError) -> Any:
    """The one YAML document in ``path`` as Python data (``None`` for an empty file).

    Raises ``error(problems)`` (an :class:`InputError`, exit code 2) naming the file when it
    cannot be read, is not YAML, or passes :data:`MAX_FILE_BYTES`, :data:`MAX_NODES` or
    :data:`MAX_DEPTH`."""
    source = str(path)

    def refuse(message: str) -> InputError:
        return error([Problem("", message, source)])

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _Refused(_too_big(size))
        with open(path, "rb") as fh:  # read one byte past the limit: the file may have grown
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise _Refused(_too_big(len(raw), at_least=True))
        text = raw.decode("utf-8")
    except _Refused as exc:
        raise refuse(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise refuse(f"expected UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror or exc}") from None
    try:
        return _load(text, raw)
    except _Refused as exc:
        raise refuse(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise refuse(f"malformed YAML: {where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise refuse(f"malformed YAML: {exc}") from None
    except RecursionError:  # pragma: no cover - only the pure-Python loader recurses
        raise refuse(f"nested too deeply (the limit is {MAX_DEPTH} levels)") from None


def _too_big(size: int, *, at_least: bool = False) -> str:
    found = f"{'more than ' if at_least else ''}{size:,} bytes"
    return f"the file is {found}, more than the limit of {MAX_FILE_BYTES:,} bytes"


def _too_many(found: str, *, aliases: bool = True) -> str:
    expanded = " once aliases are expanded" if aliases else ""
    return f"{found} nodes{expanded}, more than the limit of {MAX_NODES:,}"


def _too_deep(found: int) -> str:
    return (
        f"nested {found:,} levels deep once aliases are expanded, more than the limit of "
        f"{MAX_DEPTH} levels"
    )


def _load(text: str, raw: bytes) -> Any:
    if len(raw) > QUICK_BYTES:
        _precount(raw)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            # a value the safe constructor cannot make: `!!int x`, a 13th month, `!!timestamp x`
            raise yaml.YAMLError(f"cannot read a value: {exc}") from None
    finally:
        loader.dispose()


def _precount(raw: bytes) -> None:
    """Bound the nodes of a large file before any is built (from its bytes, which libyaml
    reads without a copy: the text was checked to be UTF-8)."""
    loader = _Loader(raw)
    try:
        raw_parse = getattr(loader, "raw_parse", None)
        if raw_parse is not None and b"*" not in raw:
            # no alias: nodes = scalars + collections, and the parser's events (less the four
            # of the stream and document) are scalars + 2 × collections
            events = int(raw_parse()) - 4
            if events <= MAX_NODES:
                return
            if events > 2 * MAX_NODES:
                raise _Refused(_too_many(f"at least {(events + 1) // 2:,}", aliases=False))
            loader.dispose()
            loader = _Loader(raw)
        _count_events(loader)
    finally:
        loader.dispose()


def _count_events(loader: Any) -> None:
    """Count the document's nodes from the parser's events, aliases expanded, and stop at the
    first limit passed. An anchor's expanded size and height are noted when its node ends."""
    total = 0
    depth = 0  # open collections
    anchors: dict[str, tuple[int, int]] = {}  # anchor: (expanded nodes, height)
    open_anchors: set[str] = set()
    frames: list[tuple[str | None, int, int]] = []  # open collections: anchor, total, depth
    deepest = [0]  # deepest level reached inside each open collection, innermost last
    while (event := loader.get_event()) is not None:
        if isinstance(event, CollectionEndEvent):
            anchor, start, level = frames.pop()
            inner = deepest.pop()
            deepest[-1] = max(deepest[-1], inner)
            if anchor is not None:
                anchors[anchor] = (total - start, inner - level + 1)
                open_anchors.discard(anchor)
            depth -= 1
            continue
        if not isinstance(event, NodeEvent):
            continue
        level = depth + 1
        if isinstance(event, AliasEvent):
            name = event.anchor or ""
            if name in open_anchors:
                raise _Refused(_recursive(name, event.start_mark))
            size, height = anchors.get(name, (1, 1))  # an undefined alias: compose says so
            total += size
            reached = level + height - 1
        else:
            total += 1
            reached = level
            if isinstance(event, CollectionStartEvent):
                depth = level
                frames.append((event.anchor, total - 1, level))
                deepest.append(level)
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
            elif event.anchor is not None:
                anchors[event.anchor] = (1, 1)
        deepest[-1] = max(deepest[-1], reached)
        if total > MAX_NODES:
            raise _Refused(_too_many(f"at least {total:,}", aliases=bool(anchors)))
        if reached > MAX_DEPTH:
            raise _Refused(_too_deep(reached))


def _recursive(anchor: str, mark: Any) -> str:
    where = f" (line {mark.line + 1})" if mark is not None else ""
    return f"the alias *{anchor} is inside its own anchor &{anchor}{where}: data without end"


def _frame(node: Node) -> list[Any]:
    """An open collection: [id, its collections still to measure, expanded nodes so far, height
    so far]. Its scalars are counted at once (they are most nodes: one village a line)."""
    if isinstance(node, MappingNode):
        kids = [c for pair in node.value for c in pair if type(c) is not ScalarNode]
        scalars = 2 * len(node.value) - len(kids)
    else:
        kids = [c for c in node.value if type(c) is not ScalarNode]
        scalars = len(node.value) - len(kids)
    return [id(node), iter(kids), 1 + scalars, 2 if scalars else 1]


def _measure(root: Node) -> None:
    """Refuse the composed document if, aliases expanded, it passes :data:`MAX_NODES` or
    :data:`MAX_DEPTH`. An alias is the same node object in several places, so each
    collection's expanded size and height are computed once (depth first) and remembered."""
    if isinstance(root, ScalarNode):
        return
    done: dict[int, tuple[int, int]] = {}  # id(collection): (expanded nodes, height)
    open_ids = {id(root)}
    stack = [_frame(root)]
    while stack:
        frame = stack[-1]
        for child in frame[1]:
            key = id(child)
            known = done.get(key)
            if known is not None:  # measured already: an alias, or the node it repeats
                frame[2] += known[0]
                if frame[3] <= known[1]:
                    frame[3] = known[1] + 1
                continue
            if key in open_ids:
                raise _Refused(
                    "an alias is inside the anchored node it repeats (anchored at line "
                    f"{child.start_mark.line + 1}): data without end"
                )
            open_ids.add(key)
            stack.append(_frame(child))
            break
        else:
            stack.pop()
            key, _, size, height = frame
            open_ids.discard(key)
            done[key] = (size, height)
            if stack:
                parent = stack[-1]
                parent[2] += size
                if parent[3] <= height:
                    parent[3] = height + 1
    size, height = done[id(root)]
    if size > MAX_NODES:
        raise _Refused(_too_many(f"{size:,}"))
    if height > MAX_DEPTH:
        raise _Refused(_too_deep(height))
