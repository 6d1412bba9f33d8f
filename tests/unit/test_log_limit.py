"""``LogLimiter`` and ``clip``: a proxy's noise reaches the log bounded, and counted."""

from __future__ import annotations

from xds_server.transport.log_limit import LogLimiter, clip


def test_one_line_per_key_per_interval_and_the_rest_counted() -> None:
    now = [0.0]
    limit = LogLimiter(interval=10, clock=lambda: now[0])
    assert limit.allow("nack") == (True, 0)
    assert [limit.allow("nack") for _ in range(3)] == [(False, 0)] * 3
    assert limit.allow("other") == (True, 0)  # keys apart
    now[0] = 10.0
    assert limit.allow("nack") == (True, 3)  # the three not logged, handed over
    assert limit.allow("nack") == (False, 0)


def test_clip_says_how_much_it_cut() -> None:
    assert clip("short") == "short"
    assert clip("x" * 30, 10) == "x" * 10 + "... (20 more characters)"
