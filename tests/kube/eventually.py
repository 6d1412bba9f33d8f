"""Waiting for the API server (or a process watching it) to reach a state."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, every: float = 0.05
) -> None:
    """Poll ``check`` (plain or async) until it holds; ``TimeoutError`` after ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while True:
            held = check()
            if inspect.isawaitable(held):
                held = await held
            if held:
                return
            await asyncio.sleep(every)
