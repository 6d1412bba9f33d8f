"""The changes sources report, released as debounced bursts: Istio's debounce, one for all sources.

Every source (the directory watch, the Kubernetes watches) calls ``record``
when what it holds changed; ``bursts`` yields one ``Burst`` each time the
``Debouncer`` says the merged changes are due (a quiet period after the last
change, or a maximum wait after the first). Invariants:

1. One debounce for every source, as istiod has one for every config event:
   a file edit and a watch event in the same quiet period are one reload.
2. Changes recorded while the consumer handles a burst go into the next one.
3. Deadlines come from the injected ``clock``; the rules live in the pure
   ``Debouncer``, tested on fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable

from translators.sources.debounce import Burst, Debouncer


class Changes:
    """Where sources say that something changed."""

    def __init__(self, debouncer: Debouncer, clock: Callable[[], float] = time.monotonic) -> None:
        self.debouncer = debouncer
        self.clock = clock
        self._changed = asyncio.Event()

    def record(self) -> None:
        """One change, now."""
        self.debouncer.change(self.clock())
        self._changed.set()

    async def bursts(self) -> AsyncGenerator[Burst, None]:
        """Every burst the debouncer releases, forever."""
        while True:
            due = self.debouncer.deadline()
            timeout = None if due is None else max(0.0, due - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
            self._changed.clear()
            burst = self.debouncer.release(self.clock())
            if burst is not None:
                yield burst
