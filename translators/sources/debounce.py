"""Istio's push debounce as a pure state machine over times passed in.

Rules (istiod's ``PILOT_DEBOUNCE_AFTER`` / ``PILOT_DEBOUNCE_MAX``):

1. A change starts a pending period; every further change extends it.
2. The merged changes are released ``quiet`` seconds after the last change,
   or ``max_wait`` seconds after the first, whichever comes first.
3. Nothing is released while nothing is pending.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Debouncer:
    """Decides when a burst of changes becomes one push. Times are seconds, from a clock."""

    quiet: float
    max_wait: float
    first: float | None = None
    last: float | None = None
    merged: int = 0

    def change(self, now: float) -> None:
        """Record a change at ``now``."""
        if self.first is None:
            self.first = now
        self.last = now
        self.merged += 1

    def deadline(self) -> float | None:
        """When the pending changes are due, if none arrives before; None if idle."""
        if self.first is None or self.last is None:
            return None
        return min(self.last + self.quiet, self.first + self.max_wait)

    def release(self, now: float) -> Burst | None:
        """If due at ``now``, end the period and return the burst it merged; else None."""
        due = self.deadline()
        if due is None or now < due or self.first is None:
            return None
        burst = Burst(self.merged, self.first, now)
        self.first, self.last, self.merged = None, None, 0
        return burst


@dataclass(frozen=True, slots=True)
class Burst:
    """Changes merged into one push: how many, when the first came, when released."""

    changes: int
    first: float
    released: float
