"""Bearer authentication, authorisation rules and the limit on failed attempts.

Rules (issue 14): no token or an unknown token -> 401; a counter client asking for a counter it
is not bound to, or an operator asking for identities -> 403; an operator sees the whole fleet,
a counter client only the devices of its own counters. Failed attempts (401) are counted per
client address over a sliding window; past the limit that address gets 429 (with
``Retry-After``) for every request that needs a token until the window has slid past its
failures, so guessing tokens costs time without locking out other addresses.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

__all__ = ["FailureLimiter", "bearer_token"]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, else None."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


class FailureLimiter:
    """At most ``limit`` failed attempts per address within ``window_s``; bounded memory."""

    def __init__(
        self,
        limit: int = 20,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise TypeError("limit >= 1 and window_s > 0")
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._max = max_addresses
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        now = self._clock()
        with self._lock:
            times = self._failures.get(address)
            if not times:
                return 0.0
            self._expire(times, now)
            if len(times) < self.limit:
                if not times:
                    del self._failures[address]
                return 0.0
            return max(0.001, times[0] + self.window_s - now)

    def failed(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                if len(self._failures) >= self._max:
                    self._prune(now)
                times = self._failures.setdefault(address, deque())
            self._expire(times, now)
            times.append(now)
            while len(times) > self.limit:
                times.popleft()

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()

    def _prune(self, now: float) -> None:
        for address in list(self._failures):
            times = self._failures[address]
            self._expire(times, now)
            if not times:
                del self._failures[address]
        while len(self._failures) >= self._max:  # still full: forget the oldest addresses
            del self._failures[next(iter(self._failures))]
