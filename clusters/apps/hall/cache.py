"""Hot reads of the public catalog kept in the process: sites, their items and the guides.

Why this is safe: the catalog (``sites``, ``departments``, ``items``) is written only by the seed
path (``python3 -m hall seed``, run by the deployment), never by a request: citizens and staff
write cases, events, ratings and sessions, which are never cached. Every statement that writes a
catalog table bumps ``catalog_version`` in its own transaction (a trigger, schema migration 5:
the seed's writes and plain SQL alike); every hall process polls that one row once a second and
drops its whole cache when it changed, so any committed change shows within about a second. A
read that was loading when the cache was dropped is not kept (``generation``): it may have seen
the catalog from before the change. Entries also expire after ``HALL_READ_CACHE_S`` seconds
(default 300), a bound for a change that fires no trigger (a session that switched triggers
off). ``HALL_READ_CACHE_S=0`` switches the cache off (every read goes to PostgreSQL, as before).
What is cached is public data only (the same for every caller), and misses (a 404) are not
cached, so a new item shows at once.

The cache is bounded (``size`` entries, the oldest dropped first): Guizhou's 256,419 guides do not
all fit, the ones being read do. Free-text searches are not kept (a key of None): they are a long
tail, and a stream of made-up searches must not push the hot reads out.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING = object()


class ReadCache:
    def __init__(self, seconds: float, size: int = 20_000) -> None:
        self.seconds = seconds
        self.size = size
        self.data: dict[Hashable, tuple[float, Any]] = {}
        self.version: int | None = None
        self.hits = 0
        self.misses = 0
        self.clears = 0

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def get(self, key: Hashable) -> Any:
        """The value cached for ``key``, or ``None`` when there is none (or it expired, or the
        key is None: a read not worth keeping, such as a free-text search)."""
        if key is None or not self.enabled:
            return None
        hit = self.data.get(key)
        if hit is not None and hit[0] > time.monotonic():
            self.hits += 1
            return hit[1]
        self.misses += 1
        return None

    @property
    def generation(self) -> int:
        """Changes whenever the cache is dropped: take it before loading what ``put`` keeps."""
        return self.clears

    def put(self, key: Hashable, value: Any, since: int | None = None) -> None:
        """Keep ``value``; with ``since`` (the ``generation`` taken before it was loaded) only
        when the cache has not been dropped meanwhile."""
        if not self.enabled or key is None or value is None:
            return
        if since is not None and since != self.clears:
            return
        if len(self.data) >= self.size:
            for old in list(self.data)[: max(1, self.size // 10)]:  # the oldest tenth
                del self.data[old]
        self.data[key] = (time.monotonic() + self.seconds, value)

    async def through(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value for ``key``, or ``load()``'s (then cached; None is not)."""
        if not self.enabled or key is None:
            return await load()
        value = self.get(key)
        if value is None:
            since = self.clears
            value = await load()
            self.put(key, value, since)
        return value

    def saw_version(self, version: int) -> bool:
        """Note the catalog's version; a change drops everything cached. True when it did."""
        changed = self.version is not None and version != self.version
        self.version = version
        if changed:
            self.clear()
        return changed

    def clear(self) -> None:
        self.data.clear()
        self.clears += 1

    def as_metrics(self) -> dict[str, float]:
        return {
            "hall_read_cache_hits_total": float(self.hits),
            "hall_read_cache_misses_total": float(self.misses),
            "hall_read_cache_entries": float(len(self.data)),
            "hall_read_cache_clears_total": float(self.clears),
        }
