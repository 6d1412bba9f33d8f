"""When a workload certificate is renewed: Istio's grace-period rule, as pure functions.

Istio's agent (security/pkg/nodeagent/cache/secretcache.go, ``rotateTime``)
renews when ``(ratio + jitter) * lifetime`` remains before ``notAfter``, with
``ratio`` = ``SECRET_GRACE_PERIOD_RATIO`` (default 0.5) and ``jitter`` drawn
uniformly from ``[-SECRET_GRACE_PERIOD_RATIO_JITTER, +...]`` (default 0.01,
istio/istio#52102: proxies started together must not renew together; about
+/- 15 minutes on a 24 h certificate).

Rule 1: nothing here reads a clock or a random generator. The jitter is a
parameter; ``draw_jitter`` turns a caller-owned ``random.Random`` into one.

Rule 2: the effective ratio ``ratio + jitter`` is clamped to [0, 1], as Istio
does, so renewal is never scheduled before ``notBefore`` or after ``notAfter``.

Rule 3: the lifetime is the certificate's own ``notAfter - notBefore``. Istio
uses the agent's receive time instead of ``notBefore``; the difference is the
CA's 2-minute backdate, which moves renewal ``ratio * 2 min`` earlier here.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

DEFAULT_GRACE_PERIOD_RATIO = 0.5
"""Istio's ``SECRET_GRACE_PERIOD_RATIO`` default."""
DEFAULT_GRACE_PERIOD_RATIO_JITTER = 0.01
"""Istio's ``SECRET_GRACE_PERIOD_RATIO_JITTER`` default."""


def renew_at(
    not_before: datetime,
    not_after: datetime,
    ratio: float = DEFAULT_GRACE_PERIOD_RATIO,
    jitter_fraction: float = 0.0,
) -> datetime:
    """When to renew a certificate valid from ``not_before`` to ``not_after``.

    ``ratio`` is the fraction of the lifetime that should remain at renewal;
    ``jitter_fraction`` is a signed offset added to it (see ``draw_jitter``).
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"grace period ratio {ratio} is outside [0, 1]")
    if not -1.0 <= jitter_fraction <= 1.0:
        raise ValueError(f"jitter fraction {jitter_fraction} is outside [-1, 1]")
    lifetime = not_after - not_before
    if lifetime <= timedelta(0):
        raise ValueError(f"notAfter {not_after} is not after notBefore {not_before}")
    effective = min(1.0, max(0.0, ratio + jitter_fraction))
    return not_after - lifetime * effective


def renew_delay(now: datetime, renewal: datetime) -> timedelta:
    """How long to wait from ``now`` until ``renewal``; zero if it is already due."""
    return max(timedelta(0), renewal - now)


def draw_jitter(rng: random.Random, max_jitter: float = DEFAULT_GRACE_PERIOD_RATIO_JITTER) -> float:
    """A jitter fraction uniform in ``[-max_jitter, max_jitter]``, from the caller's ``rng``."""
    if not 0.0 <= max_jitter <= 1.0:
        raise ValueError(f"max jitter {max_jitter} is outside [0, 1]")
    return rng.uniform(-max_jitter, max_jitter)
