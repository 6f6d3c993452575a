"""Counting hits per key (a client address) in a sliding window on the service clock, in this
process: the customer form's report limit and the failed sign-in limit."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

MAX_KEYS = 10_000


class SlidingWindow:
    """At most `limit` hits per `window` per key. `retry_after` and `record` do not await, so a
    check followed by a record is atomic on the event loop. Memory is bounded by `max_keys`."""

    def __init__(self, limit: int, window: timedelta, max_keys: int = MAX_KEYS) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: dict[str, deque[datetime]] = {}

    def _live(self, key: str, now: datetime) -> deque[datetime]:
        hits = self._hits.get(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def retry_after(self, key: str, now: datetime) -> int:
        """Seconds until `key` may hit again; 0: now."""
        hits = self._live(key, now)
        if len(hits) < self.limit:
            return 0
        return max(1, math.ceil((hits[0] + self.window - now).total_seconds()))

    def record(self, key: str, now: datetime) -> None:
        if key not in self._hits and len(self._hits) >= self.max_keys:
            for old in list(self._hits):
                if not self._live(old, now):
                    del self._hits[old]
            while len(self._hits) >= self.max_keys:  # still full: forget the oldest client
                del self._hits[next(iter(self._hits))]
        self._hits.setdefault(key, deque()).append(now)
