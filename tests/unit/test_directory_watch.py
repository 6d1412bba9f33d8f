"""The file source's watch: filesystem events become debounced bursts (sources.directory_watch).

The debounce rules themselves are tested on fake time in ``test_debounce``;
these tests check the wiring to the filesystem, with short real periods.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from translators.sources.debounce import Burst, Debouncer
from translators.sources.directory_watch import DirectoryWatch


async def _edit(root: Path, count: int, every: float) -> None:
    await asyncio.sleep(0.2)  # let the watcher start before the first edit
    for i in range(count):
        (root / f"f{i % 3}.yaml").write_text(f"n: {i}\n")
        await asyncio.sleep(every)


async def _bursts(watch: DirectoryWatch, within: float) -> list[Burst]:
    found: list[Burst] = []
    async with contextlib.aclosing(watch.bursts()) as bursts:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                async for burst in bursts:
                    found.append(burst)
    return found


async def test_a_burst_of_edits_is_released_once_after_the_quiet_period(tmp_path: Path) -> None:
    watch = DirectoryWatch(tmp_path, Debouncer(quiet=0.3, max_wait=5.0))
    editing = asyncio.create_task(_edit(tmp_path, count=4, every=0.05))
    found = await _bursts(watch, within=2.5)
    await editing
    assert len(found) == 1, found
    assert found[0].changes >= 1
    assert found[0].released - found[0].first >= 0.3


async def test_edits_that_never_pause_are_released_at_the_maximum_wait(tmp_path: Path) -> None:
    watch = DirectoryWatch(tmp_path, Debouncer(quiet=0.3, max_wait=0.5))
    editing = asyncio.create_task(_edit(tmp_path, count=40, every=0.05))  # 2 s without a pause
    started = time.monotonic()
    found = await _bursts(watch, within=1.5)
    editing.cancel()
    assert found, "no burst while edits went on"
    assert found[0].first >= started
    assert 0.5 <= found[0].released - found[0].first < 1.0


async def test_closing_the_bursts_stops_watching(tmp_path: Path) -> None:
    watch = DirectoryWatch(tmp_path, Debouncer(quiet=0.05, max_wait=1.0))
    before = asyncio.all_tasks()
    bursts = watch.bursts()
    pending = asyncio.ensure_future(anext(bursts))
    await asyncio.sleep(0.2)
    assert len(asyncio.all_tasks() - before) == 2  # the reader above and the watcher
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pending
    await bursts.aclose()
    await asyncio.sleep(0.05)
    assert asyncio.all_tasks() - before == set()
