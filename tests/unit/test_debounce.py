"""Debounce rules with times passed in: no sleeping, no wall clock."""

from __future__ import annotations

from translators.sources.debounce import Burst, Debouncer


def test_idle_releases_nothing() -> None:
    d = Debouncer(quiet=0.1, max_wait=10)
    assert d.deadline() is None
    assert d.release(100.0) is None


def test_burst_is_released_once_after_the_quiet_period() -> None:
    d = Debouncer(quiet=0.1, max_wait=10)
    for t in (0.0, 0.05, 0.09):
        d.change(t)
    assert d.release(0.18) is None
    assert d.deadline() == 0.09 + 0.1
    assert d.release(0.19) == Burst(3, 0.0, 0.19)
    assert d.release(0.5) is None


def test_max_wait_caps_a_continuous_stream_of_changes() -> None:
    d = Debouncer(quiet=0.1, max_wait=1.0)
    t = 0.0
    while t < 0.99:
        d.change(t)
        assert d.release(t) is None
        t += 0.05
    d.change(t)
    assert d.deadline() == 1.0
    burst = d.release(1.0)
    assert burst is not None and burst.changes == 21 and burst.first == 0.0
