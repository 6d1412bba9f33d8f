"""Read one ``http[]`` route of a VirtualService: matches, actions and policies.

Used by ``translators.mesh.documents.virtual_services`` (which states the validation rules);
every reader records errors in ``Problems`` and returns a value anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

from translators.mesh.documents import fields as v
from translators.mesh.documents import networking_fields as f
from translators.mesh.model.routing import (
    Cors,
    DirectResponse,
    Fault,
    HttpMatch,
    HttpRoute,
    Mirror,
    NamedMatch,
    Redirect,
    Retries,
    Rewrite,
)

REDIRECT_CODES = (301, 302, 303, 307, 308)
"""The redirect codes Envoy's ``RedirectAction`` can send (Istio drops a route with another)."""

RETRY_ON_POLICIES = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
"""Envoy's HTTP and gRPC ``retry_on`` conditions, which Istio's ``retryOn`` passes through."""

_IGNORED_ROUTE_FIELDS = ("delegate", "mirrors", "mirror_percent", "mirrorPercent")


def http_route(p: v.Problems, raw: object, field: str, warnings: list[str]) -> HttpRoute:
    """One ``http[]`` entry (see ``virtual_services`` invariants 2 and 3)."""
    m = v.mapping(p, raw, field) or {}
    warnings.extend(
        f"{field}.{key} is not supported yet and is ignored"
        for key in _IGNORED_ROUTE_FIELDS
        if key in m
    )
    actions = [k for k in ("route", "redirect", "directResponse") if m.get(k) is not None]
    if len(actions) != 1:
        p.add(
            field,
            f"must set exactly one of route, redirect, directResponse, got "
            f"{', '.join(actions) or 'none'}",
        )
    if "redirect" in m and "rewrite" in m:
        p.add(f"{field}.rewrite", "cannot be set together with redirect")
    mirror = None
    if m.get("mirror") is not None:
        mirror = Mirror(
            f.destination(p, m.get("mirror"), f"{field}.mirror"),
            f.percent(p, m.get("mirrorPercentage"), f"{field}.mirrorPercentage"),
        )
    return HttpRoute(
        name=v.string(p, m.get("name"), f"{field}.name") or "",
        matches=tuple(
            _match(p, item, f"{field}.match[{j}]")
            for j, item in enumerate(v.sequence(p, m.get("match"), f"{field}.match"))
        ),
        route=f.destinations(p, m["route"], field) if m.get("route") is not None else (),
        redirect=_redirect(p, m.get("redirect"), f"{field}.redirect"),
        direct_response=_direct_response(p, m.get("directResponse"), f"{field}.directResponse"),
        rewrite=_rewrite(p, m.get("rewrite"), f"{field}.rewrite"),
        timeout=f.duration(p, m.get("timeout"), f"{field}.timeout"),
        retries=_retries(p, m.get("retries"), f"{field}.retries"),
        fault=_fault(p, m.get("fault"), f"{field}.fault"),
        mirror=mirror,
        headers=f.header_operations(p, m.get("headers"), f"{field}.headers"),
        cors=_cors(p, m.get("corsPolicy"), f"{field}.corsPolicy"),
    )


def _match(p: v.Problems, raw: object, field: str) -> HttpMatch:
    m = v.mapping(p, raw, field) or {}
    return HttpMatch(
        name=v.string(p, m.get("name"), f"{field}.name") or "",
        uri=f.string_match(p, m.get("uri"), f"{field}.uri"),
        scheme=f.string_match(p, m.get("scheme"), f"{field}.scheme"),
        method=f.string_match(p, m.get("method"), f"{field}.method"),
        authority=f.string_match(p, m.get("authority"), f"{field}.authority"),
        headers=_headers(p, m.get("headers"), f"{field}.headers"),
        without_headers=_headers(p, m.get("withoutHeaders"), f"{field}.withoutHeaders"),
        query_params=f.named_matches(p, m.get("queryParams"), f"{field}.queryParams"),
        port=v.port(p, m.get("port"), f"{field}.port", required=False),
        source_labels=v.labels(p, m.get("sourceLabels"), f"{field}.sourceLabels"),
        source_namespace=v.string(p, m.get("sourceNamespace"), f"{field}.sourceNamespace") or "",
        gateways=f.strings(p, m.get("gateways"), f"{field}.gateways"),
        ignore_uri_case=v.boolean(p, m.get("ignoreUriCase"), f"{field}.ignoreUriCase", False),
    )


def _headers(p: v.Problems, raw: object, field: str) -> tuple[NamedMatch, ...]:
    matches = f.named_matches(p, raw, field)
    for name, _ in matches:
        if name != name.lower():
            p.add(f"{field}.{name}", "header names must be lowercase, as Istio requires")
    return matches


def _redirect(p: v.Problems, raw: object, field: str) -> Redirect | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    code = f.integer(p, m.get("redirectCode"), f"{field}.redirectCode") or 301
    if code not in REDIRECT_CODES:
        p.add(f"{field}.redirectCode", f"must be one of {REDIRECT_CODES}, got {code}")
    scheme = v.string(p, m.get("scheme"), f"{field}.scheme") or ""
    derive = v.string(p, m.get("derivePort"), f"{field}.derivePort") or ""
    if derive not in ("", "FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"):
        p.add(
            f"{field}.derivePort",
            f"must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT, got {derive!r}",
        )
    if "port" in m and derive:
        p.add(f"{field}.port", "cannot be set together with derivePort")
    return Redirect(
        uri=v.string(p, m.get("uri"), f"{field}.uri") or "",
        authority=v.string(p, m.get("authority"), f"{field}.authority") or "",
        redirect_code=code,
        scheme=scheme,
        port=v.port(p, m.get("port"), f"{field}.port", required=False),
        derive_port_from_request=derive == "FROM_REQUEST_PORT",
    )


def _direct_response(p: v.Problems, raw: object, field: str) -> DirectResponse | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    status = f.integer(p, m.get("status"), f"{field}.status", 200, 599)
    body = v.mapping(p, m.get("body"), f"{field}.body") or {}
    text = v.string(p, body.get("string"), f"{field}.body.string") or ""
    if status is None and "status" not in m:
        p.add(f"{field}.status", "is required")
    return DirectResponse(status or 200, text)


def _rewrite(p: v.Problems, raw: object, field: str) -> Rewrite | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    regex = v.mapping(p, m.get("uriRegexRewrite"), f"{field}.uriRegexRewrite") or {}
    match = v.string(p, regex.get("match"), f"{field}.uriRegexRewrite.match") or ""
    if match:
        f.regex(p, match, f"{field}.uriRegexRewrite.match")
    if m.get("uri") and regex:
        p.add(f"{field}.uriRegexRewrite", "cannot be set together with uri")
    return Rewrite(
        uri=v.string(p, m.get("uri"), f"{field}.uri") or "",
        authority=v.string(p, m.get("authority"), f"{field}.authority") or "",
        regex_match=match,
        regex_rewrite=v.string(p, regex.get("rewrite"), f"{field}.uriRegexRewrite.rewrite") or "",
    )


def _retries(p: v.Problems, raw: object, field: str) -> Retries | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    retry_on = v.string(p, m.get("retryOn"), f"{field}.retryOn") or ""
    for part in (x.strip() for x in retry_on.split(",")):
        if part and not part.isdigit() and part not in RETRY_ON_POLICIES:
            p.add(
                f"{field}.retryOn",
                f"{part!r} is not a retry condition Envoy knows "
                f"({', '.join(sorted(RETRY_ON_POLICIES))}, or an HTTP status code)",
            )
    remote = m.get("retryRemoteLocalities")
    return Retries(
        attempts=f.integer(p, m.get("attempts"), f"{field}.attempts", 0, 2**31 - 1) or 0,
        per_try_timeout=f.duration(
            p, m.get("perTryTimeout"), f"{field}.perTryTimeout", allow_zero=False
        ),
        retry_on=retry_on,
        retry_remote_localities=None
        if remote is None
        else v.boolean(p, remote, f"{field}.retryRemoteLocalities", False),
    )


def _fault(p: v.Problems, raw: object, field: str) -> Fault | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    delay = v.mapping(p, m.get("delay"), f"{field}.delay")
    abort = v.mapping(p, m.get("abort"), f"{field}.abort")
    if delay is None and abort is None:
        p.add(field, "must set delay or abort")
    fault = Fault()
    if delay is not None:
        fixed = f.duration(
            p, delay.get("fixedDelay"), f"{field}.delay.fixedDelay", allow_zero=False
        )
        if fixed is None and "fixedDelay" not in delay:
            p.add(f"{field}.delay.fixedDelay", "is required (exponentialDelay is not supported)")
        fault = Fault(fixed, _percentage(p, delay, f"{field}.delay"))
    if abort is not None:
        status = f.integer(p, abort.get("httpStatus"), f"{field}.abort.httpStatus", 200, 599)
        if status is None and "httpStatus" not in abort:
            p.add(f"{field}.abort.httpStatus", "is required (grpcStatus is not supported)")
        fault = Fault(
            fault.delay, fault.delay_percent, status, _percentage(p, abort, f"{field}.abort")
        )
    return fault


def _percentage(p: v.Problems, m: Mapping[str, object], field: str) -> float | None:
    return f.percent(p, m.get("percentage"), f"{field}.percentage")


def _cors(p: v.Problems, raw: object, field: str) -> Cors | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    origins = tuple(
        sm
        for i, item in enumerate(v.sequence(p, m.get("allowOrigins"), f"{field}.allowOrigins"))
        if (sm := f.string_match(p, item, f"{field}.allowOrigins[{i}]")) is not None
    )
    credentials = m.get("allowCredentials")
    return Cors(
        allow_origins=origins,
        allow_methods=f.strings(p, m.get("allowMethods"), f"{field}.allowMethods"),
        allow_headers=f.strings(p, m.get("allowHeaders"), f"{field}.allowHeaders"),
        expose_headers=f.strings(p, m.get("exposeHeaders"), f"{field}.exposeHeaders"),
        max_age=f.duration(p, m.get("maxAge"), f"{field}.maxAge"),
        allow_credentials=None
        if credentials is None
        else v.boolean(p, credentials, f"{field}.allowCredentials", False),
    )
