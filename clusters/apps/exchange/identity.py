"""Who is calling: the caller's OpenBao token resolved to its department.

The exchange looks the token up with its own token (``auth/token/lookup``), reads the token's
entity and the entity's groups, and takes the department from the groups' names
(``dept-<code>-developers|operators|viewers``, the names identity as code creates). A token
without an entity, or whose entity belongs to no department or to several, is refused: the
exchange never guesses. Answers are cached for a few seconds (never past the token's expiry)
so a burst of reads costs one lookup.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

GROUP = re.compile(r"^dept-([a-z][a-z0-9-]*[a-z0-9])-(developers|operators|viewers)$")


@dataclass(frozen=True)
class Caller:
    department: str
    entity: str  # the entity's name (or id when unnamed)
    display: str  # the token's display name


class Unidentified(Exception):
    """The caller could not be identified; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Resolver:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        addr: str,
        token: str,
        cache_seconds: float = 5.0,
    ) -> None:
        self.session = session
        self.addr = addr.rstrip("/")
        self.token = token
        self.cache_seconds = cache_seconds
        self._tokens: dict[bytes, tuple[float, Caller]] = {}
        self._groups: dict[str, tuple[float, str]] = {}
        self.lookups = 0  # OpenBao token lookups made (for the bench)

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        try:
            async with self.session.request(
                method, f"{self.addr}/v1/{path}", json=body, headers={"X-Vault-Token": self.token}
            ) as resp:
                data = await resp.json(content_type=None) if resp.status != 204 else {}
                return resp.status, data or {}
        except aiohttp.ClientError as exc:
            raise Unidentified(503, f"OpenBao did not answer ({type(exc).__name__})") from exc

    async def resolve(self, token: str) -> Caller:
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        hit = self._tokens.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        self.lookups += 1
        status, data = await self._call("POST", "auth/token/lookup", {"token": token})
        if status in (400, 403, 404):
            raise Unidentified(401, "the caller's OpenBao token is not valid")
        if status != 200:
            raise Unidentified(503, f"OpenBao token lookup failed ({status})")
        info = data.get("data") or {}
        entity_id = info.get("entity_id") or ""
        if not entity_id:
            raise Unidentified(403, "the caller's token has no identity (entity) in OpenBao")
        status, data = await self._call("GET", f"identity/entity/id/{entity_id}")
        if status != 200:
            raise Unidentified(403, "the caller's identity (entity) cannot be read")
        entity = data.get("data") or {}
        departments = set()
        for gid in entity.get("group_ids") or []:
            name = await self._group_name(gid)
            m = GROUP.match(name)
            if m:
                departments.add(m.group(1))
        if len(departments) != 1:
            found = ", ".join(sorted(departments)) or "none"
            raise Unidentified(
                403, f"the caller must belong to exactly one department (found: {found})"
            )
        caller = Caller(
            department=departments.pop(),
            entity=str(entity.get("name") or entity_id),
            display=str(info.get("display_name") or ""),
        )
        ttl = float(info.get("ttl") or 0)
        keep = min(self.cache_seconds, ttl) if ttl > 0 else self.cache_seconds
        if keep > 0:
            self._tokens[key] = (now + keep, caller)
        return caller

    async def _group_name(self, gid: str) -> str:
        now = time.monotonic()
        hit = self._groups.get(gid)
        if hit is not None and hit[0] > now:
            return hit[1]
        status, data = await self._call("GET", f"identity/group/id/{gid}")
        name = str((data.get("data") or {}).get("name", "")) if status == 200 else ""
        self._groups[gid] = (now + 60.0, name)
        return name
