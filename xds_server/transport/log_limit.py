"""At most one log line per key per interval: a proxy cannot flood the control plane's log.

A proxy decides how often it NACKs and what its ``error_detail`` says; without
a limit, twenty 1 MB NACKs write 21 MB of log in a few milliseconds.
Invariants:

1. ``allow(key)`` is true for the first event of ``key`` and then at most
   once per ``interval`` seconds; the events it refused in between are
   counted and handed over with the next allowed one, so nothing is lost
   from the count, only from the log.
2. Time comes from the injected ``clock``; the owner (one stream) keeps one
   limiter, so one proxy's noise never silences another's.
3. ``clip`` bounds any text a client supplied before it reaches a log line
   or a status message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

MAX_CLIENT_TEXT = 1024
"""Characters of a client-supplied text (a NACK's ``error_detail``) kept for the log."""


def clip(text: str, limit: int = MAX_CLIENT_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class LogLimiter:
    """Lets one event per key through per ``interval`` and counts the rest (invariant 1)."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._last: dict[Hashable, float] = {}
        self._suppressed: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> tuple[bool, int]:
        """Whether to log this event of ``key`` now, and how many were not logged before it."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False, 0
        self._last[key] = now
        return True, self._suppressed.pop(key, 0)
