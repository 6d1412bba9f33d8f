"""Edits under the config directory become debounced bursts (sources.directory_watch, changes).

The debounce rules themselves are tested on fake time in ``test_debounce``;
these tests check the wiring to the filesystem and to ``Changes``, with short
real periods.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from translators.sources.changes import Changes
from translators.sources.debounce import Burst, Debouncer
from translators.sources.directory_watch import DirectoryWatch


async def _edit(root: Path, count: int, every: float) -> None:
    await asyncio.sleep(0.2)  # let the watcher start before the first edit
    for i in range(count):
        (root / f"f{i % 3}.yaml").write_text(f"n: {i}\n")
        await asyncio.sleep(every)


async def _bursts(changes: Changes, within: float) -> list[Burst]:
    found: list[Burst] = []
    async with contextlib.aclosing(changes.bursts()) as bursts:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                async for burst in bursts:
                    found.append(burst)
    return found


async def _watching(root: Path, changes: Changes, edits: int, every: float) -> list[Burst]:
    watch = asyncio.create_task(DirectoryWatch(root, changes).run())
    editing = asyncio.create_task(_edit(root, count=edits, every=every))
    try:
        return await _bursts(changes, within=2.5 if edits < 10 else 1.5)
    finally:
        editing.cancel()
        watch.cancel()
        await asyncio.gather(editing, watch, return_exceptions=True)


async def test_a_burst_of_edits_is_released_once_after_the_quiet_period(tmp_path: Path) -> None:
    found = await _watching(tmp_path, Changes(Debouncer(quiet=0.3, max_wait=5.0)), 4, 0.05)
    assert len(found) == 1, found  # four edits 50 ms apart: one burst
    assert found[0].released - found[0].first >= 0.3


async def test_edits_that_never_pause_are_released_at_the_maximum_wait(tmp_path: Path) -> None:
    started = time.monotonic()
    found = await _watching(tmp_path, Changes(Debouncer(quiet=0.3, max_wait=0.5)), 40, 0.05)
    assert found, "no burst while edits went on"
    assert found[0].first >= started
    assert 0.5 <= found[0].released - found[0].first < 1.0


async def test_changes_from_two_sources_in_one_quiet_period_are_one_burst() -> None:
    changes = Changes(Debouncer(quiet=0.1, max_wait=5.0))
    changes.record()  # a file edit
    await asyncio.sleep(0.02)
    changes.record()  # a watch event
    found = await _bursts(changes, within=0.5)
    assert [b.changes for b in found] == [2]
