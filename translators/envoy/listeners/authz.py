"""AuthorizationPolicy as Envoy RBAC filters in a workload's inbound chains.

Invariants (Istio's ``authz/builder``):

1. A policy applies to a workload when it is in the workload's namespace or
   in ``ROOT_NAMESPACE``, and has no selector or one matching the workload's
   labels (a root-namespace selector matches in every namespace).
2. Per action present among those policies, one RBAC filter, in the order
   AUDIT (Envoy action LOG, never blocks), DENY, ALLOW. A filter exists as
   soon as one policy of its action applies, even if no rule survives: an
   ALLOW filter without policies denies everything, so a workload with any
   ALLOW policy denies what none allows, and a policy without rules allows
   nothing.
3. RBAC policies are named ``ns[NS]-policy[NAME]-rule[I]`` as Istio names
   them; rules dropped on TCP chains (``rbac`` invariant 3) leave a gap
   in the numbering.
4. HTTP chains get ``envoy.filters.http.rbac`` filters (before the router),
   TCP chains ``envoy.filters.network.rbac`` (before ``tcp_proxy``, stat
   prefix ``tcp.`` as Istio's).
5. A dry-run policy (``istio.io/dry-run``) goes into its action's filter as
   ``shadow_rules``, which Envoy evaluates and reports (stats under
   ``istio_dry_run_allow_``/``istio_dry_run_deny_``, dynamic metadata) but
   never enforces. ``rules`` holds the enforced policies and is left unset
   when every policy of the action is a dry run: an unset ``rules`` enforces
   nothing, where an empty one would deny everything (ALLOW). Istio's
   ``Builder.build``; the shadow stat prefix is set only with shadow rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2

from translators.envoy.listeners.rbac import rule_policy
from translators.mesh.model.policies import (
    ROOT_NAMESPACE,
    AuthorizationPolicy,
    AuthzAction,
    Policies,
)
from translators.mesh.model.services import Labels

HTTP_RBAC_FILTER = "envoy.filters.http.rbac"
NETWORK_RBAC_FILTER = "envoy.filters.network.rbac"
TCP_STAT_PREFIX = "tcp."
SHADOW_STAT_PREFIXES = {
    AuthzAction.ALLOW: "istio_dry_run_allow_",
    AuthzAction.DENY: "istio_dry_run_deny_",
}
"""Istio's ``shadow_rules_stat_prefix`` per action of a dry-run policy (invariant 5)."""

_ORDER = (
    (AuthzAction.AUDIT, rbac_pb2.RBAC.LOG),
    (AuthzAction.DENY, rbac_pb2.RBAC.DENY),
    (AuthzAction.ALLOW, rbac_pb2.RBAC.ALLOW),
)


def applicable_policies(
    policies: Policies, namespace: str, labels: Labels
) -> tuple[AuthorizationPolicy, ...]:
    """The authorization policies that apply to a workload (invariant 1), by (namespace, name)."""
    return tuple(
        ap
        for ap in policies.authorization_policies
        if ap.namespace in (namespace, ROOT_NAMESPACE)
        and (not ap.selector or ap.selector <= labels)
    )


def policy_name(policy: AuthorizationPolicy, index: int) -> str:
    """Istio's RBAC policy name for a rule: ``ns[NS]-policy[NAME]-rule[I]``."""
    return f"ns[{policy.namespace}]-policy[{policy.name}]-rule[{index}]"


@dataclass(frozen=True, slots=True)
class RbacRules:
    """One action's RBAC filter content: enforced ``rules`` and dry-run ``shadow`` (invariant 5).

    At least one of the two is set.
    """

    rules: rbac_pb2.RBAC | None
    shadow: rbac_pb2.RBAC | None
    shadow_stat_prefix: str = ""

    def fields(self) -> dict[str, object]:
        """The RBAC filter fields (HTTP and network alike) these rules fill."""
        out: dict[str, object] = {}
        if self.rules is not None:
            out["rules"] = self.rules
        if self.shadow is not None:
            out["shadow_rules"] = self.shadow
            out["shadow_rules_stat_prefix"] = self.shadow_stat_prefix
        return out


def rbac_rules(applicable: tuple[AuthorizationPolicy, ...], for_tcp: bool) -> list[RbacRules]:
    """One RBAC filter's rules per action present, in filter order (invariants 2, 5)."""
    out: list[RbacRules] = []
    for action, envoy_action in _ORDER:
        enforced = [ap for ap in applicable if ap.action is action and not ap.dry_run]
        dry_run = [ap for ap in applicable if ap.action is action and ap.dry_run]
        if not enforced and not dry_run:
            continue
        out.append(
            RbacRules(
                _rbac(enforced, action, envoy_action, for_tcp) if enforced else None,
                _rbac(dry_run, action, envoy_action, for_tcp) if dry_run else None,
                SHADOW_STAT_PREFIXES.get(action, ""),
            )
        )
    return out


def _rbac(
    chosen: list[AuthorizationPolicy],
    action: AuthzAction,
    envoy_action: rbac_pb2.RBAC.Action.ValueType,
    for_tcp: bool,
) -> rbac_pb2.RBAC:
    rbac = rbac_pb2.RBAC(action=envoy_action)
    for ap in chosen:
        for index, rule in enumerate(ap.rules):
            generated = rule_policy(rule, action, for_tcp)
            if generated is not None:
                rbac.policies[policy_name(ap, index)].CopyFrom(generated)
    return rbac


def http_rbac_filters(applicable: tuple[AuthorizationPolicy, ...]) -> list[hcm_pb2.HttpFilter]:
    """The HTTP RBAC filters for an HTTP inbound chain, to go before the router."""
    filters = []
    for rules in rbac_rules(applicable, for_tcp=False):
        http_filter = hcm_pb2.HttpFilter(name=HTTP_RBAC_FILTER)
        http_filter.typed_config.Pack(http_rbac_pb2.RBAC(**rules.fields()))
        filters.append(http_filter)
    return filters


def network_rbac_filters(
    applicable: tuple[AuthorizationPolicy, ...],
) -> list[listener_components_pb2.Filter]:
    """The network RBAC filters for a TCP inbound chain, to go before ``tcp_proxy``."""
    filters = []
    for rules in rbac_rules(applicable, for_tcp=True):
        network_filter = listener_components_pb2.Filter(name=NETWORK_RBAC_FILTER)
        network_filter.typed_config.Pack(
            network_rbac_pb2.RBAC(**rules.fields(), stat_prefix=TCP_STAT_PREFIX)
        )
        filters.append(network_filter)
    return filters
