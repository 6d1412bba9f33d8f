"""The traffic policy that applies to one cluster: Istio's merge of rule, port, subset.

Invariants, as Istio's ``MergeTrafficPolicy`` and its documentation:

1. Precedence, highest first: the subset's port-level settings, the
   subset's policy, the rule's port-level settings, the rule's policy.
2. Port-level settings replace the four settings (TLS, load balancer,
   connection pool, outlier detection) *wholesale*: a setting a port entry
   leaves out takes its default, not the level below ("traffic settings
   specified at the destination-level will not be inherited when overridden
   by port-level settings").
3. A subset's policy overrides setting by setting: what it leaves out is
   inherited from the rule (after the rule's port level was applied).
4. The consistent hash of a route follows Istio's ``hashForHTTPDestination``
   instead: the first *set* hash among subset port level, subset, port level,
   rule, so a port entry without a hash keeps the rule's.
"""

from __future__ import annotations

from dataclasses import dataclass

from translators.mesh.model.policies import ClientTls, DestinationRule, TrafficPolicy
from translators.mesh.model.traffic import (
    ConnectionPool,
    ConsistentHash,
    LoadBalancer,
    OutlierDetection,
)


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The settings one cluster gets; ``None`` fields take Istio's defaults."""

    tls: ClientTls | None = None
    load_balancer: LoadBalancer | None = None
    connection_pool: ConnectionPool | None = None
    outlier_detection: OutlierDetection | None = None


NO_POLICY = EffectivePolicy()


def _at_port(policy: TrafficPolicy | None, port: int) -> EffectivePolicy | None:
    """A policy's settings for ``port`` (invariant 2); ``None`` if ``policy`` is."""
    if policy is None:
        return None
    for level in policy.port_level:
        if level.port == port:
            return EffectivePolicy(
                level.tls, level.load_balancer, level.connection_pool, level.outlier_detection
            )
    return EffectivePolicy(
        policy.tls, policy.load_balancer, policy.connection_pool, policy.outlier_detection
    )


def effective_policy(rule: DestinationRule | None, subset: str, port: int) -> EffectivePolicy:
    """The merged settings of ``rule`` for cluster (``port``, ``subset``) (invariants 1-3)."""
    if rule is None:
        return NO_POLICY
    base = _at_port(rule.traffic_policy, port) or NO_POLICY
    found = rule.subset(subset) if subset else None
    own = _at_port(found.traffic_policy, port) if found is not None else None
    if own is None:
        return base
    return EffectivePolicy(
        own.tls if own.tls is not None else base.tls,
        own.load_balancer if own.load_balancer is not None else base.load_balancer,
        own.connection_pool if own.connection_pool is not None else base.connection_pool,
        own.outlier_detection if own.outlier_detection is not None else base.outlier_detection,
    )


def _port_hash(policy: TrafficPolicy | None, port: int | None) -> ConsistentHash | None:
    if policy is None or port is None:
        return None
    for level in policy.port_level:
        if level.port == port:
            return level.load_balancer.consistent_hash if level.load_balancer else None
    return None


def _hash(policy: TrafficPolicy | None) -> ConsistentHash | None:
    lb = policy.load_balancer if policy is not None else None
    return lb.consistent_hash if lb is not None else None


def consistent_hash(
    rule: DestinationRule | None, subset: str, port: int | None
) -> ConsistentHash | None:
    """The consistent hash a route to (``subset``, ``port``) uses (invariant 4)."""
    if rule is None:
        return None
    found = rule.subset(subset) if subset else None
    subset_policy = found.traffic_policy if found is not None else None
    candidates = (
        _port_hash(subset_policy, port),
        _hash(subset_policy),
        _port_hash(rule.traffic_policy, port),
        _hash(rule.traffic_policy),
    )
    return next((h for h in candidates if h is not None), None)
