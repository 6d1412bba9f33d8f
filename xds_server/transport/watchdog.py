"""Closes a stream whose proxy leaves a response unanswered: a stuck reader holds nothing long.

gRPC completes a write as soon as it has taken the message, whether or not
the peer reads it, so a proxy that stops reading shows only as silence: it
ACKs or NACKs nothing. Envoy answers every response (the xDS protocol asks
it to, and it does within seconds; CDS waits at most for its clusters to
warm). Invariants:

1. ``sent`` starts the clock when a response starts going out with none unanswered
   (before the write: a write the peer does not drain never completes);
   ``heard`` (any request from the proxy) stops it.
2. When a response has gone unanswered for ``after`` seconds, ``on_stall``
   is called once; the stream's owner then closes the stream (the proxy
   reconnects, if it is alive) and with it the response gRPC held for it.
3. One timer per stream, re-armed only when it fires (not per response):
   the hot path does no timer work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Watchdog:
    """Calls ``on_stall`` when a response stays unanswered for ``after`` seconds."""

    def __init__(
        self,
        after: float,
        on_stall: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.after = after
        self.on_stall = on_stall
        self.clock = clock
        self.unanswered_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.fired = False
        """Whether ``on_stall`` was called (once at most)."""

    def sent(self) -> None:
        """A response went out (invariant 1)."""
        if self.unanswered_since is None:
            self.unanswered_since = self.clock()
        if self._timer is None and not self.fired:
            self._arm(self.after)

    def heard(self) -> None:
        """The proxy sent a request: it reads and answers."""
        self.unanswered_since = None

    def stop(self) -> None:
        """The stream ended: no more checks, and no more reference to the owner's callback
        (a bound method of the stream, which owns this watchdog: a reference cycle that only
        the collector's rare older generations would free, with all the stream holds)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.on_stall = _nothing

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._check)

    def _check(self) -> None:
        self._timer = None
        if self.unanswered_since is None:
            return  # answered; the next response re-arms
        waited = self.clock() - self.unanswered_since
        if waited >= self.after:
            self.fired = True
            self.on_stall()
        else:
            self._arm(self.after - waited)


def _nothing() -> None:
    pass
