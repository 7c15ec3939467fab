"""How a load run reaches halls by name over HTTPS: the CA it trusts and the names it resolves.

A hall's certificate carries names, not addresses, so a run that verifies it must ask for the
name. The lab's names (``hall-1.zwfw.guizhou.gov.cn``) are in no DNS the machine can reach, so
the run resolves them itself, in its own processes only, as ``curl --resolve`` does: every other
name still goes to the system's resolver, and nothing on the machine changes. The CA is the
cloud's PKI root (``--ca-file``; the lab's by default for ``--target lab``).

:func:`install` applies both to the process: the standard library's sockets and urllib (the
readiness checks, staff tokens and accounts before the clock starts) and, once locust has
patched them, gevent's (the users' own HTTP client).
"""

from __future__ import annotations

import socket
import ssl
import sys
import urllib.request
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from govcloud.errors import InputError, Problem


def parse_resolve(items: Iterable[str]) -> dict[str, str]:
    """``NAME:ADDRESS`` pairs (``--resolve``) as a table."""
    import ipaddress

    table: dict[str, str] = {}
    for item in items:
        name, sep, address = item.rpartition(":")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            sep = ""
        if not sep or not name or "/" in name:
            raise InputError(
                [Problem("--resolve", f'expected NAME:ADDRESS (an IP address), got "{item}"')]
            )
        table[name.lower()] = address
    return table


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context: the given CA only, or the system's trust store."""
    if ca_file is None:
        return ssl.create_default_context()
    if not Path(ca_file).is_file():
        raise InputError([Problem("--ca-file", f"no CA certificate at {ca_file}")])
    try:
        return ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError as exc:
        raise InputError(
            [Problem("--ca-file", f"{ca_file}: not a PEM CA bundle ({exc})")]
        ) from None


def _resolving(original: Callable[..., Any], table: dict[str, str]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        address = table.get(host.lower()) if isinstance(host, str) else None
        return original(address or host, *args, **kwargs)

    return getaddrinfo


def install(resolve: dict[str, str], ca_file: str | None) -> Callable[[], None]:
    """Resolve ``resolve``'s names to their addresses and trust ``ca_file`` in this process;
    returns what puts the process back as it was."""
    undo: list[Callable[[], None]] = []
    if resolve:
        modules = [socket, sys.modules.get("gevent.socket")]
        for module in (m for m in modules if m is not None):
            before = module.getaddrinfo
            module.getaddrinfo = _resolving(before, resolve)  # type: ignore[attr-defined]
            undo.append(partial(setattr, module, "getaddrinfo", before))
    if ca_file is not None:
        handler = urllib.request.HTTPSHandler(context=tls_context(ca_file))
        before_opener = urllib.request._opener  # type: ignore[attr-defined]
        urllib.request.install_opener(urllib.request.build_opener(handler))
        undo.append(partial(urllib.request.install_opener, before_opener))

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


def gevent_context_factory(ca_file: str) -> Callable[..., ssl.SSLContext]:
    """The users' HTTP client's context factory: trust ``ca_file`` (geventhttpclient passes its
    own default bundle, which is ignored)."""
    import gevent.ssl

    def factory(ca: str, cafile: str | None = None) -> ssl.SSLContext:
        return gevent.ssl.create_default_context(cafile=ca)

    return partial(factory, ca_file)
