"""The connection-rate token bucket, with times passed in."""

from __future__ import annotations

import pytest

from xds_server.transport.admission import TokenBucket


def test_burst_is_admitted_at_once_then_spaced_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.0) == pytest.approx(0.2)


def test_bucket_refills_but_never_above_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    bucket.take(0.0)
    bucket.take(0.0)
    assert bucket.take(100.0) == 0.0  # refilled (to 2, not 1,000)
    assert bucket.take(100.0) == 0.0
    assert bucket.take(100.0) == pytest.approx(0.1)
