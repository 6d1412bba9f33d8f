"""Which DestinationRule applies to a service, and what it says for one port.

Invariants:

1. Hosts match as Istio matches them: an exact hostname beats any wildcard,
   and a longer wildcard suffix (``*.ns.svc.cluster.local``) beats a shorter
   one (``*.svc.cluster.local``, ``*``).
2. Among rules for the same host, one in the service's namespace wins, then
   one in ``ROOT_NAMESPACE``, then the first by (namespace, name). Istio
   would first prefer a rule in the *client's* namespace; outbound clusters
   are shared by every proxy here, so that level is left out.
3. Pure: reads ``Policies`` and the service, nothing else.
"""

from __future__ import annotations

from translators.mesh.model.policies import ROOT_NAMESPACE, ClientTls, DestinationRule, Policies
from translators.mesh.model.services import Service
from translators.mesh.selection.traffic_policy import effective_policy


def host_matches(pattern: str, hostname: str) -> bool:
    """Whether a DestinationRule ``host`` (FQDN, ``*.suffix`` or ``*``) covers ``hostname``."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return hostname.endswith(pattern[1:])
    return pattern == hostname


def destination_rule_for(policies: Policies, service: Service) -> DestinationRule | None:
    """The DestinationRule that applies to ``service``, if any (see the module rules)."""
    candidates = [
        dr for dr in policies.destination_rules if host_matches(dr.host, service.hostname)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda dr: _rank(dr, service))


def _rank(dr: DestinationRule, service: Service) -> tuple[int, int, int, str, str]:
    exact = 0 if dr.host == service.hostname else 1
    # A longer wildcard is more specific; an exact host has no wildcard to compare.
    specificity = -len(dr.host) if exact else 0
    scope = 0 if dr.namespace == service.namespace else 1 if dr.namespace == ROOT_NAMESPACE else 2
    return (exact, specificity, scope, dr.namespace, dr.name)


def client_tls_for(
    policies: Policies, service: Service, port: int, subset: str = ""
) -> ClientTls | None:
    """The TLS settings a DestinationRule gives a service port's (subset) cluster.

    ``None``: no rule says (auto mTLS). Merged as Istio merges policies
    (``translators.mesh.selection.traffic_policy``): a port-level entry without ``tls``
    means the default, not the rule-level ``tls``.
    """
    dr = destination_rule_for(policies, service)
    return effective_policy(dr, subset, port).tls
