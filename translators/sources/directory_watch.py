"""Edits under a config directory, merged into debounced bursts: when to read the files again.

Invariants:

1. Every batch of filesystem events below the root (files created, changed,
   deleted, in any subdirectory) counts as one change for the ``Debouncer``;
   a burst is released by its rules (quiet period, maximum wait), never
   earlier, and edits made while the consumer handles a burst are merged
   into the next one.
2. Deadlines come from the injected ``clock`` (the ``Debouncer`` itself is
   pure and tested on fake time).
3. Nothing is read, parsed or logged here: a burst says only that the
   directory changed, how many changes it merged and when the first came.
   Reading the files is ``files.load_dir``'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import watchfiles

from translators.sources.changes import debounced
from translators.sources.debounce import Burst, Debouncer


class DirectoryWatch:
    """Yields a ``Burst`` after each debounced run of edits under ``root``."""

    def __init__(
        self, root: Path, debouncer: Debouncer, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.root = root
        self.debouncer = debouncer
        self.clock = clock
        self._changed = asyncio.Event()

    async def bursts(self) -> AsyncGenerator[Burst, None]:
        """Every burst, forever; close it (``contextlib.aclosing``) to stop watching."""
        watcher = asyncio.create_task(self._watch())
        try:
            async with contextlib.aclosing(
                debounced(self.debouncer, self._changed, self.clock)
            ) as bursts:
                async for burst in bursts:
                    yield burst
        finally:
            watcher.cancel()

    async def _watch(self) -> None:
        async for _changes in watchfiles.awatch(self.root, debounce=20, step=5, recursive=True):
            self.debouncer.change(self.clock())
            self._changed.set()
