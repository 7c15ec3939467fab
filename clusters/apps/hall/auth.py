"""Who is calling: citizens and enterprises (the hall's own accounts) and staff (pluggable).

Tokens carry their kind in a prefix so one lookup suffices:

- ``hall_a_...`` an account session (citizen or enterprise), issued by ``POST /api/login``;
- ``hall_s_...`` a staff token from the hall's local staff-token table (the default staff
  authenticator, issued by ``python3 -m hall staff-token`` or ``POST /api/admin/staff-tokens``);
- anything else is handed to the configured staff authenticator: with ``HALL_STAFF_AUTH=openbao``
  that is a token of the unified identity system, looked up with ``auth/token/lookup-self``.

Only SHA-256 digests of tokens are stored. Lookups are cached briefly (``CACHE_SECONDS``), so a
revoked token stops working within that time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

ACCOUNT_PREFIX = "hall_a_"
STAFF_PREFIX = "hall_s_"
CACHE_SECONDS = 10.0
STAFF_ROLES = frozenset({"clerk", "backoffice", "supervisor", "hotline", "kiosk"})


@dataclass(frozen=True)
class Caller:
    kind: str  # "citizen", "enterprise" or "staff"
    ident: str  # account id, or the staff member's name
    roles: frozenset[str] = field(default_factory=frozenset)
    site: str = ""  # staff: the site they work at (their scope is its subtree)
    account_id: int = 0

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.ident}"


def new_token(prefix: str) -> tuple[str, bytes]:
    token = prefix + secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# -- passwords (scrypt, standard library) -------------------------------------------------------


def hash_password(password: str, n: int) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return f"scrypt${n}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=8, p=1, dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(key))


class _Cache:
    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.data: dict[bytes, tuple[float, Caller | None]] = {}

    def get(self, key: bytes) -> tuple[bool, Caller | None]:
        hit = self.data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: bytes, caller: Caller | None) -> None:
        if len(self.data) >= self.size:
            self.data.clear()
        self.data[key] = (time.monotonic() + CACHE_SECONDS, caller)


# -- staff authenticators ----------------------------------------------------------------------


class StaffAuthenticator(Protocol):
    name: str

    async def authenticate(self, token: str) -> Caller | None: ...


class LocalStaffTokens:
    """Staff tokens from the hall's own ``staff_tokens`` table (until OpenBao is wired in)."""

    name = "local"

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def authenticate(self, token: str) -> Caller | None:
        if not token.startswith(STAFF_PREFIX):
            return None
        row = await self.pool.fetchrow(
            "SELECT staff, roles, site_code FROM staff_tokens"
            " WHERE token_hash = $1 AND expires_at > now()",
            digest(token),
        )
        if row is None:
            return None
        return Caller("staff", row["staff"], frozenset(row["roles"]), row["site_code"])


class OpenBaoStaff:
    """Staff tokens of the unified identity system (OpenBao), checked with ``lookup-self``.

    The token's metadata carries the hall role(s) and site: ``hall_roles`` ("clerk,backoffice")
    and ``hall_site`` ("520102"); OpenBao sets metadata per entity alias or token role. NOT YET
    exercised against a running OpenBao: that integration comes with the identity work.
    """

    name = "openbao"

    def __init__(self, addr: str, ca_file: str | None = None) -> None:
        self.addr = addr.rstrip("/")
        self.ca_file = ca_file

    def _lookup(self, token: str) -> dict[str, Any] | None:
        import ssl
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            f"{self.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}
        )
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
                data: dict[str, Any] = json.load(resp)
                return data
        except urllib.error.HTTPError:
            return None

    async def authenticate(self, token: str) -> Caller | None:
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, self._lookup, token)
        if not data:
            return None
        meta = (data.get("data") or {}).get("meta") or {}
        roles = frozenset(r for r in (meta.get("hall_roles") or "").split(",") if r in STAFF_ROLES)
        site = meta.get("hall_site") or ""
        if not roles or not site:
            return None
        name = (data.get("data") or {}).get("display_name") or "openbao"
        return Caller("staff", name, roles, site)


class Authenticator:
    """Resolves a bearer token to a caller, with a short cache in front of the database."""

    def __init__(self, pool: Any, staff: StaffAuthenticator) -> None:
        self.pool = pool
        self.staff = staff
        self.local_staff = staff if isinstance(staff, LocalStaffTokens) else LocalStaffTokens(pool)
        self.cache = _Cache()

    async def resolve(self, token: str) -> Caller | None:
        key = digest(token)
        hit, caller = self.cache.get(key)
        if hit:
            return caller
        if token.startswith(ACCOUNT_PREFIX):
            row = await self.pool.fetchrow(
                "SELECT a.id, a.kind FROM sessions s JOIN accounts a ON a.id = s.account_id"
                " WHERE s.token_hash = $1 AND s.expires_at > now()",
                key,
            )
            caller = Caller(row["kind"], str(row["id"]), account_id=row["id"]) if row else None
        elif token.startswith(STAFF_PREFIX):
            caller = await self.local_staff.authenticate(token)
        else:
            caller = await self.staff.authenticate(token)
        self.cache.put(key, caller)
        return caller

    def forget(self, token: str) -> None:
        self.cache.data.pop(digest(token), None)
