"""VirtualService pieces in Envoy route terms: matches, headers, faults, CORS, retries, hashing.

Each function mirrors the Istio translator named in its docstring
(``pilot/pkg/networking/core/route``); ``virtual_service`` assembles them. Pure.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import (
    previous_priorities_config_pb2 as previous_priorities_pb2,
)
from envoy.type.matcher.v3 import metadata_pb2, regex_pb2, string_pb2, value_pb2
from envoy.type.v3 import percent_pb2

from translators.envoy.cluster_policy import duration
from translators.envoy.jwt import claim_matcher, claim_value
from translators.envoy.routes.retry import default_retry_policy
from translators.mesh.model.routing import (
    Cors,
    Fault,
    HeaderOperations,
    HttpMatch,
    MatchKind,
    Redirect,
    Retries,
    StringMatch,
    jwt_claim_path,
)
from translators.mesh.model.traffic import ConsistentHash, HashKey

PREVIOUS_PRIORITIES = "envoy.retry_priorities.previous_priorities"
_REDIRECT_CODES = {
    301: rc.RedirectAction.MOVED_PERMANENTLY,
    302: rc.RedirectAction.FOUND,
    303: rc.RedirectAction.SEE_OTHER,
    307: rc.RedirectAction.TEMPORARY_REDIRECT,
    308: rc.RedirectAction.PERMANENT_REDIRECT,
}


def string_matcher(match: StringMatch, ignore_case: bool = False) -> string_pb2.StringMatcher:
    """Istio's ``ConvertToEnvoyMatch``: exact, prefix or RE2 ``safe_regex``."""
    if match.kind is MatchKind.EXACT:
        return string_pb2.StringMatcher(exact=match.value, ignore_case=ignore_case)
    if match.kind is MatchKind.PREFIX:
        return string_pb2.StringMatcher(prefix=match.value, ignore_case=ignore_case)
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=match.value))


def _header(name: str, match: StringMatch, invert: bool = False) -> rc.HeaderMatcher:
    """Istio's ``translateHeaderMatch``: an empty match (or regex ``*``) is ``present_match``."""
    out = rc.HeaderMatcher(name=name, invert_match=invert)
    if match.kind is MatchKind.PRESENT:
        out.present_match = True
    else:
        out.string_match.CopyFrom(string_matcher(match))
        # withoutHeaders: a request without the header does not carry the excluded value
        out.treat_missing_header_as_empty = invert
    return out


def _claim(name: str, match: StringMatch, invert: bool = False) -> metadata_pb2.MetadataMatcher:
    """Istio's ``@request.auth.claims`` header match: a matcher on the verified token's claim
    (``translators.envoy.jwt``; gateways only, where ``jwt_authn`` clears the route cache)."""
    if match.kind is MatchKind.PRESENT:
        value = value_pb2.ValueMatcher(present_match=True)
    else:
        value = claim_value(string_matcher(match))
    out = claim_matcher(jwt_claim_path(name), value)
    out.invert = invert
    return out


def route_match(match: HttpMatch | None) -> rc.RouteMatch:
    """Istio's ``TranslateRouteMatch``: path, headers (sorted by name), method, query."""
    out = rc.RouteMatch(prefix="/")
    if match is None:
        return out
    headers = [_header(n, m) for n, m in match.headers if not jwt_claim_path(n)]
    headers += [
        _header(n, m, invert=True) for n, m in match.without_headers if not jwt_claim_path(n)
    ]
    out.headers.extend(sorted(headers, key=lambda h: str(h.name)))
    out.dynamic_metadata.extend(
        [_claim(n, m) for n, m in match.headers if jwt_claim_path(n)]
        + [_claim(n, m, invert=True) for n, m in match.without_headers if jwt_claim_path(n)]
    )
    uri = match.uri
    if uri is not None and uri.kind is MatchKind.EXACT:
        out.path = uri.value
    elif uri is not None and uri.kind is MatchKind.PREFIX:
        out.prefix = uri.value
    elif uri is not None and uri.kind is MatchKind.REGEX:
        out.safe_regex.regex = uri.value
    out.case_sensitive.value = not match.ignore_uri_case
    for name, m in ((":method", match.method), (":authority", match.authority)):
        if m is not None:
            out.headers.append(_header(name, m))
    if match.scheme is not None:
        out.headers.append(_header(":scheme", match.scheme))
    for name, m in match.query_params:
        qp = out.query_parameters.add(name=name)
        if m.kind is MatchKind.PRESENT:
            qp.present_match = True
        else:
            qp.string_match.CopyFrom(string_matcher(m))
    return out


def is_catch_all(route: rc.Route) -> bool:
    """Istio's ``IsCatchAllRoute``: prefix ``/`` (or regex ``.*``) with no other condition
    (headers, query parameters, JWT claims)."""
    m = route.match
    path = m.WhichOneof("path_specifier")
    catch_all = (path == "prefix" and m.prefix == "/") or (
        path == "safe_regex" and m.safe_regex.regex == ".*"
    )
    return catch_all and not m.headers and not m.query_parameters and not m.dynamic_metadata


def _value_options(
    pairs: tuple[tuple[str, str], ...], append: bool
) -> list[base_pb2.HeaderValueOption]:
    action = (
        base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
        if append
        else base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    )
    return [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=k, value=v), append_action=action
        )
        for k, v in pairs
        if not _internal(k)
    ]


def _internal(name: str) -> bool:
    return name.startswith(":") or name.lower() == "host"


def authority_of(ops: HeaderOperations | None) -> str:
    """The ``:authority``/``host`` a header ``set`` (else ``add``) asks for: a host rewrite."""
    if ops is None:
        return ""
    for pairs in (ops.request_set, ops.request_add):
        for k, value in pairs:
            if k.lower() in (":authority", "host"):
                return value
    return ""


def header_mutations(
    ops: HeaderOperations,
) -> tuple[
    list[base_pb2.HeaderValueOption], list[str], list[base_pb2.HeaderValueOption], list[str]
]:
    """Istio's ``TranslateHeadersOperations``: (request add, remove, response add, remove).

    ``set`` overwrites, ``add`` appends; pseudo-headers and ``host`` are not
    header operations (``host`` becomes a host rewrite, see ``authority_of``).
    """
    request = _value_options(ops.request_set, False) + _value_options(ops.request_add, True)
    response = _value_options(ops.response_set, False) + _value_options(ops.response_add, True)
    return (
        request,
        [h for h in ops.request_remove if not _internal(h)],
        response,
        [h for h in ops.response_remove if not _internal(h)],
    )


def fractional_percent(value: float | None) -> percent_pb2.FractionalPercent:
    """Istio's ``translatePercentToFractionalPercent``: per million; unset is 100 %."""
    numerator = 1_000_000 if value is None else round(value * 10_000)
    return percent_pb2.FractionalPercent(
        numerator=numerator, denominator=percent_pb2.FractionalPercent.MILLION
    )


def http_fault(fault: Fault) -> fault_pb2.HTTPFault:
    """Istio's ``TranslateFault``: a fixed delay and/or an abort (HTTP or gRPC status), each
    with a percentage."""
    out = fault_pb2.HTTPFault()
    if fault.delay is not None:
        out.delay.CopyFrom(
            common_fault_pb2.FaultDelay(
                fixed_delay=duration(fault.delay),
                percentage=fractional_percent(fault.delay_percent),
            )
        )
    if fault.abort_grpc_status is not None:
        out.abort.grpc_status = fault.abort_grpc_status
    elif fault.abort_status is not None:
        out.abort.http_status = fault.abort_status
    if fault.aborts:
        out.abort.percentage.CopyFrom(fractional_percent(fault.abort_percent))
    return out


def cors_policy(cors: Cors) -> cors_pb2.CorsPolicy:
    """Istio's ``TranslateCORSPolicy`` (filter enabled at 100 %, preflights forwarded)."""
    out = cors_pb2.CorsPolicy(
        allow_origin_string_match=[string_matcher(o) for o in cors.allow_origins],
        allow_methods=",".join(cors.allow_methods),
        allow_headers=",".join(cors.allow_headers),
        expose_headers=",".join(cors.expose_headers),
    )
    out.filter_enabled.default_value.numerator = 100
    out.filter_enabled.default_value.denominator = percent_pb2.FractionalPercent.HUNDRED
    out.forward_not_matching_preflights.value = True
    if cors.max_age is not None:
        out.max_age = str(cors.max_age // 1000)
    if cors.allow_credentials is not None:
        out.allow_credentials.value = cors.allow_credentials
    return out


def redirect_action(redirect: Redirect, listen_port: int) -> rc.RedirectAction:
    """Istio's ``ApplyRedirect`` for sidecars (never TLS); 80 is not spelled out for http."""
    out = rc.RedirectAction(
        host_redirect=redirect.authority,
        path_redirect=redirect.uri,
        response_code=_REDIRECT_CODES[redirect.redirect_code],
    )
    if redirect.scheme:
        out.scheme_redirect = redirect.scheme
    port = listen_port if redirect.derive_port_from_request else redirect.port
    if port is not None:
        scheme = redirect.scheme or "http"
        if not ((port == 80 and scheme == "http") or (port == 443 and scheme == "https")):
            out.port_redirect = port
    return out


def retry_policy(retries: Retries | None, consistent_hash: bool) -> rc.RetryPolicy | None:
    """Istio's ``retry.ConvertPolicy``: default when unset, none for 0 attempts.

    ``retryOn`` numbers are retriable status codes (``retriable-status-codes``
    is added for them); with a consistent hash, retries may reuse the host.
    """
    out = default_retry_policy()
    if consistent_hash:
        del out.retry_host_predicate[:]
    if retries is None:
        return out
    if retries.attempts <= 0:
        return None
    out.num_retries.value = retries.attempts
    if retries.retry_on:
        parts = [p.strip() for p in retries.retry_on.split(",") if p.strip()]
        codes = [int(p) for p in parts if p.isdigit()]
        conditions = [p for p in parts if not p.isdigit()]
        if codes and "retriable-status-codes" not in conditions:
            conditions.append("retriable-status-codes")
        out.retry_on = ",".join(conditions)
        del out.retriable_status_codes[:]
        out.retriable_status_codes.extend(codes)
    if retries.per_try_timeout is not None:
        out.per_try_timeout.CopyFrom(duration(retries.per_try_timeout))
    if retries.retry_remote_localities:
        out.retry_priority.name = PREVIOUS_PRIORITIES
        out.retry_priority.typed_config.Pack(
            previous_priorities_pb2.PreviousPrioritiesConfig(update_frequency=2)
        )
    return out


def hash_policy(ch: ConsistentHash) -> rc.RouteAction.HashPolicy:
    """Istio's ``consistentHashToHashPolicy``: header, cookie, source IP or query parameter."""
    policy = rc.RouteAction.HashPolicy
    if ch.key is HashKey.HEADER:
        return policy(header=policy.Header(header_name=ch.name))
    if ch.key is HashKey.COOKIE:
        cookie = policy.Cookie(name=ch.name, path=ch.cookie_path)
        if ch.cookie_ttl is not None:
            cookie.ttl.CopyFrom(duration(ch.cookie_ttl))
        return policy(cookie=cookie)
    if ch.key is HashKey.SOURCE_IP:
        return policy(connection_properties=policy.ConnectionProperties(source_ip=True))
    return policy(query_parameter=policy.QueryParameter(name=ch.name))
