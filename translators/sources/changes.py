"""Change signals merged into debounced bursts: the loop behind every source's ``changes``.

A source records each change in its ``Debouncer`` and sets an
``asyncio.Event``; ``debounced`` sleeps until the debouncer says a burst is
due (or a new change moves the deadline) and yields it. Deadlines come from
the injected ``clock``; the rules themselves live in the pure ``Debouncer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable

from translators.sources.debounce import Burst, Debouncer


async def debounced(
    debouncer: Debouncer, changed: asyncio.Event, clock: Callable[[], float]
) -> AsyncGenerator[Burst, None]:
    """Every burst the debouncer releases, forever."""
    while True:
        due = debouncer.deadline()
        timeout = None if due is None else max(0.0, due - clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
        changed.clear()
        burst = debouncer.release(clock())
        if burst is not None:
            yield burst
