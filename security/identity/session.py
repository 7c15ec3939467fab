"""Logging in to OpenBao as a person: password (+ TOTP for administrators), token cached.

A token is cached per user in ``state/secrets/identity/tokens/<user>.json`` (0600) until shortly
before it expires, like ``bao login`` keeps ``~/.vault-token``; a TOTP passcode can be used only
once, so reusing the token also keeps repeated commands from tripping over that.
"""

from __future__ import annotations

import os
import time

from govcloud.errors import InputError
from infra.inventory import InvHost
from security.identity.plan import USERPASS
from security.openbao.client import Bao, BaoForbidden, BaoUnauthorized
from security.openbao.cluster import Paths, connect, read_secret, write_secret

MIN_LEFT = 120  # seconds a cached token must still have to be reused


def cached_token(user: str, paths: Paths) -> str | None:
    data = read_secret(paths.tokens / f"{user}.json")
    if not data or data.get("expires", 0) - time.time() < MIN_LEFT:
        return None
    return str(data["token"])


def forget_token(user: str, paths: Paths) -> None:
    (paths.tokens / f"{user}.json").unlink(missing_ok=True)


def login(
    user: str,
    hosts: list[InvHost],
    paths: Paths,
    *,
    password: str | None = None,
    passcode: str | None = None,
    fresh: bool = False,
    check: bool = True,
) -> Bao:
    """A client holding ``user``'s token: the cached one if still valid, else a new login.

    The password comes from the argument, ``$GOVCLOUD_PASSWORD``, or the lab's credentials
    file; the TOTP passcode from the argument or the lab's enrolment."""
    if not fresh:
        token = cached_token(user, paths)
        if token:
            bao = connect(hosts, paths, token)
            if not check:
                return bao  # the caller retries with a fresh login if it is refused
            try:
                bao.lookup_token()
                return bao
            except (BaoUnauthorized, BaoForbidden):  # expired or revoked: log in again
                forget_token(user, paths)
    lab = (read_secret(paths.credentials_file) or {}).get("users", {}).get(user, {})
    password = password or os.environ.get("GOVCLOUD_PASSWORD") or lab.get("password")
    if not password:
        raise InputError(
            f"no password for {user}: pass --password-stdin or set GOVCLOUD_PASSWORD "
            "(the lab's users are in state/secrets/identity/credentials.json)"
        )
    bao = connect(hosts, paths).login_userpass(
        user,
        password,
        mount_point=USERPASS,
        totp_secret=None if passcode else lab.get("totp_secret"),
        passcode=passcode,
    )
    info = bao.lookup_token()
    write_secret(
        paths.tokens / f"{user}.json",
        {"token": bao.token, "expires": time.time() + int(info.get("ttl", 0))},
    )
    return bao
