"""A token bucket on new streams, so a connect storm degrades gracefully.

istiod rate-limits new xDS connections (``PILOT_MAX_REQUESTS_PER_SECOND``);
here a stream waits for a token before its node is admitted, and the bucket
refills at ``rate`` per second up to ``burst``. Time comes from the injected
clock, so the arithmetic is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. Pure: times are passed in."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    stamp: float | None = None

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> float:
        """Take one token at ``now``; returns how long to wait before using it (0: at once)."""
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class AdmissionLimiter:
    """Spaces out new streams to ``rate`` per second after a ``burst``."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.clock = clock

    async def admit(self) -> float:
        """Wait for this stream's turn; returns how long it waited."""
        delay = self.bucket.take(self.clock())
        if delay > 0:
            await asyncio.sleep(delay)
        return delay
