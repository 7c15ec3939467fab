"""A tiny HTML renderer that escapes by default (standard library only).

Markup is built with :func:`h`: its template is a trusted literal written in this package, and
every value put into it is escaped unless it is already :class:`Markup` (built the same way).
So text from the database, a form or a URL can only ever land in a page as text::

    h("<p class={}>{}</p>", "note", "<script>")  ->  '<p class=note>&lt;script&gt;</p>'

Attribute values are always quoted by the templates (``"{}"``); :func:`esc` escapes quotes too.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from html import escape
from typing import Any


class Markup(str):
    """Text that is already HTML: inserted as is."""

    __slots__ = ()


def escaped(value: Any) -> str:
    """``value`` as HTML text: ``esc`` without the Markup wrapper, for markup the renderer
    puts together itself (``h`` and ``join`` wrap their whole result once; the views' page
    frame). The replacements are ``html.escape``'s with ``quote=True``, in its order."""
    if type(value) is str:
        return (
            value.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&quot;")
            .replace("'", "&#x27;")
        )
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return fmt_time(value)  # digits, "-", " " and ":" only
    return escape(str(value), quote=True)


def esc(value: Any) -> Markup:
    """``value`` as HTML: Markup unchanged, None as nothing, anything else escaped text."""
    if isinstance(value, Markup):
        return value
    return Markup(escaped(value))


def h(template: str, *args: Any, **kwargs: Any) -> Markup:
    """Fill ``template`` (a trusted literal with ``{}`` / ``{name}`` fields) with escaped
    values. Fields take plain names only: no attribute or index look-ups on values."""
    if kwargs:
        for name, value in kwargs.items():  # a dict of this call's own
            kwargs[name] = escaped(value)
        if not args:
            return Markup(template.format_map(kwargs))
    return Markup(template.format(*map(escaped, args), **kwargs))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """Parts (escaped unless Markup) one after another."""
    return Markup(sep.join(map(escaped, parts)))


_CST = dt.timezone(dt.timedelta(hours=8), "CST")


def fmt_time(value: dt.datetime | None) -> str:
    """China Standard Time, to the minute: 2024-03-15 09:30 (as strftime's "%Y-%m-%d %H:%M").
    The database's times (UTC) are kept written: a page of cases shows a hundred, the same
    ones again and again; only UTC and naive ones, as equal times in other zones differ here."""
    if value is None:
        return ""
    if value.tzinfo is dt.UTC or value.tzinfo is None:
        return _cst_minutes(value)
    return value.astimezone(_CST).isoformat(" ", "minutes")[:16]


@functools.lru_cache(maxsize=20_000)
def _cst_minutes(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(_CST)
    return value.isoformat(" ", "minutes")[:16]
