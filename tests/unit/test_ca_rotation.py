"""Istio's renewal rule (ca/rotation.py): grace ratio, jitter, clamping."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_ca_authority import WEB, make_root

from ca.authority import generate_workload_key, make_csr, sign
from ca.rotation import (
    DEFAULT_GRACE_PERIOD_RATIO,
    DEFAULT_GRACE_PERIOD_RATIO_JITTER,
    draw_jitter,
    renew_at,
    renew_delay,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def test_istio_defaults() -> None:
    assert DEFAULT_GRACE_PERIOD_RATIO == 0.5
    assert DEFAULT_GRACE_PERIOD_RATIO_JITTER == 0.01


def test_default_renews_at_half_life() -> None:
    assert renew_at(T0, T0 + DAY) == T0 + timedelta(hours=12)


def test_ratio_is_the_fraction_left_at_renewal() -> None:
    assert renew_at(T0, T0 + DAY, ratio=0.25) == T0 + timedelta(hours=18)
    assert renew_at(T0, T0 + DAY, ratio=1.0) == T0
    assert renew_at(T0, T0 + DAY, ratio=0.0) == T0 + DAY


def test_jitter_moves_renewal_by_a_fraction_of_the_lifetime() -> None:
    lifetime_1pct = DAY * 0.01  # 14.4 minutes on a 24 h certificate
    assert renew_at(T0, T0 + DAY, jitter_fraction=0.01) == T0 + timedelta(hours=12) - lifetime_1pct
    assert renew_at(T0, T0 + DAY, jitter_fraction=-0.01) == T0 + timedelta(hours=12) + lifetime_1pct


def test_effective_ratio_is_clamped() -> None:
    assert renew_at(T0, T0 + DAY, ratio=1.0, jitter_fraction=0.01) == T0
    assert renew_at(T0, T0 + DAY, ratio=0.0, jitter_fraction=-0.01) == T0 + DAY


@pytest.mark.parametrize(
    ("not_after", "ratio", "jitter"),
    [
        (T0 + DAY, 1.5, 0.0),
        (T0 + DAY, -0.1, 0.0),
        (T0 + DAY, 0.5, 2.0),
        (T0, 0.5, 0.0),
        (T0 - DAY, 0.5, 0.0),
    ],
)
def test_invalid_arguments(not_after: datetime, ratio: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        renew_at(T0, not_after, ratio, jitter)


def test_draw_jitter_uses_only_the_callers_rng() -> None:
    draws = [draw_jitter(random.Random(7)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]  # same seed, same draw: no hidden randomness
    rng = random.Random(1)
    many = [draw_jitter(rng) for _ in range(1000)]
    assert all(-0.01 <= j <= 0.01 for j in many)
    assert min(many) < -0.009 and max(many) > 0.009
    with pytest.raises(ValueError):
        draw_jitter(rng, max_jitter=1.5)


def test_renew_delay_is_never_negative() -> None:
    assert renew_delay(T0, T0 + timedelta(hours=1)) == timedelta(hours=1)
    assert renew_delay(T0 + DAY, T0) == timedelta(0)


def test_rule_on_an_issued_certificate() -> None:
    now = T0 + DAY
    issued = sign(make_root(T0), make_csr(generate_workload_key(), WEB), WEB, DAY, now)
    lifetime = DAY + timedelta(minutes=2)  # the CA backdates notBefore by 2 minutes
    assert issued.not_after - issued.not_before == lifetime
    assert renew_at(issued.not_before, issued.not_after) == issued.not_after - lifetime / 2


@given(
    st.integers(min_value=1, max_value=10**9),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=-1.0, max_value=1.0),
)
def test_renewal_is_always_within_validity(seconds: int, ratio: float, jitter: float) -> None:
    not_after = T0 + timedelta(seconds=seconds)
    at = renew_at(T0, not_after, ratio, jitter)
    assert T0 <= at <= not_after


def test_a_short_lived_workload_certificate_is_not_due_when_it_is_issued(tmp_path: Path) -> None:
    """Its notBefore is backdated (clock skew grace, 2 min); renewal counts from the issue
    time, else a 6 s certificate would be renewed again and again from the moment it is made."""
    from ca.spiffe import SpiffeId
    from ca.storage import load_or_create_root
    from pyistiod.workload_certs import CertificateIssuer

    bundle = load_or_create_root(tmp_path, "cluster.local", T0)
    issuer = CertificateIssuer(bundle, timedelta(seconds=6), clock=lambda: T0)
    cert = issuer.issue(SpiffeId("cluster.local", "default", "frontend"))
    assert T0 + timedelta(seconds=2.9) < cert.renew_at < T0 + timedelta(seconds=3.1)
