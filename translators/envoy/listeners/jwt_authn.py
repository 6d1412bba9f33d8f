"""RequestAuthentication as Envoy's ``jwt_authn`` HTTP filter (Istio's ``convertToEnvoyJwtConfig``).

Invariants:

1. One filter for the JWT rules a proxy enforces
   (``selection.request_authentication``), none without rules; it goes first
   among the HTTP filters: before RBAC (which reads what it verified) on a
   sidecar's inbound chains, before fault and CORS on a gateway's.
2. Rule ``i`` (rules sorted by issuer) is provider ``origins-i``. The
   requirement refuses (401) a request whose token does not verify and lets
   a request without token through, unauthenticated: with one provider
   ``any(origins-0, allow_missing)``; with several
   ``any(origins-0, ..., all(any(origins-0, allow_missing), ...))``, where
   the outer alternatives admit a token several providers read from one
   location (it fails the others). CORS preflights bypass it.
3. Each provider writes the verified payload into dynamic metadata
   (``jwt.PAYLOAD_KEY``) for RBAC and routes, with ``scope`` and
   ``permission`` split on spaces into lists, as Istio's
   ``space_delimited_claims`` default, and the rule's ``spaceDelimitedClaims``
   besides them (sorted, once each, as Istio's ``buildSpaceDelimitedClaims``).
4. Keys: inline ``jwks`` as ``local_jwks``; a ``jwksUri`` as ``remote_jwks``
   fetched through ``jwt.jwks_cluster_name`` with the rule's timeout (5 s by
   default) and cached 5 minutes, as Istio's Envoy fetch mode does. The
   fetch is asynchronous (``async_fetch``): Envoy fetches when the listener
   is created and refreshes before the cache expires, so no request waits
   for it. Istio's istiod fetches and inlines by default instead.
5. On gateways ``clear_route_cache`` is set, so a route matching a claim
   (``@request.auth.claims``) sees the verified token.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.core.v3 import http_uri_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import duration_pb2, empty_pb2

from translators.envoy.jwt import JWT_AUTHN_FILTER, PAYLOAD_KEY, jwks_cluster_name
from translators.mesh.model.policies import JwtRule

DEFAULT_TIMEOUT_MS = 5000
JWKS_CACHE_SECONDS = 5 * 60
SPACE_DELIMITED_CLAIMS = ("permission", "scope")

Requirement = jwt_pb2.JwtRequirement


def provider_name(index: int) -> str:
    """Istio's provider name for the ``index``-th rule (sorted by issuer)."""
    return f"origins-{index}"


def jwt_authn_filters(
    rules: Sequence[JwtRule], *, clear_route_cache: bool = False
) -> list[hcm_pb2.HttpFilter]:
    """The ``jwt_authn`` filter for ``rules`` (invariant 1): one, or none without rules."""
    if not rules:
        return []
    config = jwt_pb2.JwtAuthentication(bypass_cors_preflight=True)
    for index, rule in enumerate(rules):
        config.providers[provider_name(index)].CopyFrom(_provider(rule, clear_route_cache))
    config.rules.append(
        jwt_pb2.RequirementRule(
            match=route_components_pb2.RouteMatch(prefix="/"),
            requires=_requirement(len(rules)),
        )
    )
    http_filter = hcm_pb2.HttpFilter(name=JWT_AUTHN_FILTER)
    http_filter.typed_config.Pack(config)
    return [http_filter]


def _requirement(count: int) -> jwt_pb2.JwtRequirement:
    """Invariant 2: a bad token fails, a missing one passes."""
    names = [Requirement(provider_name=provider_name(i)) for i in range(count)]
    missing = Requirement(allow_missing=empty_pb2.Empty())
    each = [Requirement(requires_any=jwt_pb2.JwtRequirementOrList(requirements=[n, missing]))
            for n in names]  # fmt: skip
    if count == 1:
        return each[0]
    every = Requirement(requires_all=jwt_pb2.JwtRequirementAndList(requirements=each))
    return Requirement(requires_any=jwt_pb2.JwtRequirementOrList(requirements=[*names, every]))


def _provider(rule: JwtRule, clear_route_cache: bool) -> jwt_pb2.JwtProvider:
    provider = jwt_pb2.JwtProvider(
        issuer=rule.issuer,
        audiences=rule.audiences,
        forward=rule.forward_original_token,
        forward_payload_header=rule.output_payload_to_header,
        payload_in_metadata=PAYLOAD_KEY,
        from_headers=[
            jwt_pb2.JwtHeader(name=h.name, value_prefix=h.prefix) for h in rule.from_headers
        ],
        from_params=rule.from_params,
        from_cookies=rule.from_cookies,
        claim_to_headers=[
            jwt_pb2.JwtClaimToHeader(header_name=c.header, claim_name=c.claim)
            for c in rule.output_claim_to_headers
        ],
        clear_route_cache=clear_route_cache,
    )
    claims = sorted({*SPACE_DELIMITED_CLAIMS, *rule.space_delimited_claims})
    provider.normalize_payload_in_metadata.space_delimited_claims.extend(claims)
    if rule.jwks_uri is not None:
        remote = provider.remote_jwks
        remote.http_uri.CopyFrom(
            http_uri_pb2.HttpUri(
                uri=rule.jwks_uri.uri,
                cluster=jwks_cluster_name(rule.jwks_uri),
                timeout=_millis(rule.timeout_ms or DEFAULT_TIMEOUT_MS),
            )
        )
        remote.cache_duration.seconds = JWKS_CACHE_SECONDS
        remote.async_fetch.SetInParent()
    else:
        provider.local_jwks.inline_string = rule.jwks
    return provider


def _millis(ms: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)
