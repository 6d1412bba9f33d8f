"""How many responses are encoded and written at once, across every stream.

Istio caps pushes in flight (``PILOT_PUSH_THROTTLE``, 100). Here the cap
bounds memory: a full CDS response for a large mesh is most of a megabyte,
and a thousand of them queued in gRPC at once is a gigabyte. Invariants:

1. A write that the peer does not drain within ``slow_after`` seconds gives
   its slot back (and goes on waiting outside the cap), so stuck proxies
   cannot starve the rest.
2. A stream's first response skips the queue: a new proxy never waits
   behind stuck ones for its first config (new streams are paced by the
   admission limiter, which bounds this lane).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from xds_server.protocol.events import Send


class PushLimiter:
    """A semaphore over response writes, with a release for slow peers."""

    def __init__(self, limit: int = 100, slow_after: float = 5.0) -> None:
        self.limit = limit
        self.slow_after = slow_after
        self._slots: asyncio.Semaphore | None = None

    async def write(
        self,
        send: Send,
        encode: Callable[[Send], bytes],
        write: Callable[[bytes], Awaitable[None]],
        *,
        first: bool = False,
    ) -> int:
        """Encode ``send`` and write it within the cap (``first``: outside it, invariant 2);
        returns its size in bytes.

        A timer (not a task: this is the hot path) gives the slot back if the
        peer has not taken the bytes within ``slow_after`` seconds.
        """
        if first:
            data = encode(send)
            await write(data)
            return len(data)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        await slots.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                slots.release()

        timer = asyncio.get_running_loop().call_later(self.slow_after, release)
        try:
            data = encode(send)
            await write(data)
        finally:
            timer.cancel()
            release()
        return len(data)
