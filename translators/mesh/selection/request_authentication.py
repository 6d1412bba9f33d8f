"""Which JWT rules a workload's proxy enforces (RequestAuthentication).

Istio's ``GetJwtPoliciesForWorkload`` and ``NewPolicyApplier``:

1. A RequestAuthentication applies to a workload when it is in the
   workload's namespace or in ``ROOT_NAMESPACE``, and has no selector or one
   matching the workload's labels (a root-namespace policy with a selector
   selects in every namespace, as Istio's ``getConfigsForWorkload`` does).
2. Unlike PeerAuthentication, nothing overrides: the rules of every applicable
   policy are enforced together, sorted by issuer (stable, so rules of one
   issuer keep their order) so the generated filter is deterministic.
"""

from __future__ import annotations

from translators.mesh.model.policies import ROOT_NAMESPACE, JwtRule, Policies
from translators.mesh.model.services import Labels


def jwt_rules_for(policies: Policies, namespace: str, labels: Labels) -> tuple[JwtRule, ...]:
    """The JWT rules a workload (namespace and labels given) enforces, by issuer."""
    rules = [
        rule
        for ra in policies.request_authentications
        if ra.namespace in (namespace, ROOT_NAMESPACE)
        and (not ra.selector or ra.selector <= labels)
        for rule in ra.rules
    ]
    return tuple(sorted(rules, key=lambda rule: rule.issuer))
