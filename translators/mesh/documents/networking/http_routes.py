"""Read one ``http[]`` route of a VirtualService: matches, actions and policies.

Used by ``virtual_services`` (which states the VirtualService-wide rules); every
reader records errors in ``Problems`` and returns a value anyway. Invariants, following
Istio's ``validateHTTPRoute`` and the functions it calls:

1. A route sets exactly one of ``route``, ``redirect``, ``directResponse``; ``rewrite`` and
   ``fault`` go with ``route`` only; ``mirror`` and ``mirrors`` not both
   (``validateHTTPRouteConflict``).
2. The authority is set in one place at most: ``rewrite.authority`` or one ``:authority`` or
   ``host`` entry of ``headers.request.set``/``add`` (``validateAuthorityRewrite``).
3. ``retries``: ``perTryTimeout``, ``retryOn`` and ``retryRemoteLocalities`` need
   ``attempts`` > 0 (absent is 0: retries disabled). ``retryOn`` is split on ``,`` without
   trimming; each part is an Envoy retry condition or an HTTP status code that Go's
   ``http.StatusText`` names (``validateHTTPRetry``).
4. ``redirect`` sets a ``uri``, ``authority``, ``scheme`` (``http`` or ``https``) or port;
   ``rewrite`` a ``uri``, ``authority`` or ``uriRegexRewrite`` (with ``match`` and
   ``rewrite``), not both URI forms.
5. Durations (``timeout``, ``perTryTimeout``, ``backoff``, ``fixedDelay``, ``maxAge``) are at
   least 1ms, ``maxAge`` whole seconds; fault percentages are 0 or 0.0001-100.
6. Header match names are RFC 7230 tokens in any case, kept lower-cased (Envoy compares
   them so); ``sourceNamespace`` is a DNS-1123 label; ``gateways`` resolve as the
   VirtualService's (``networking_fields.gateway_refs``). CORS origins are not empty, methods
   are HTTP methods or ``*``, header names are tokens or ``*``.

Deliberate differences from Istio, where pyistiod cannot (yet) do what Istio accepts:

- ``redirectCode`` must be one Envoy's ``RedirectAction`` can send (301, 302, 303, 307, 308).
  Istio accepts any 300-399 and then drops the route it cannot translate.
- ``fault.abort.httpStatus`` and ``directResponse.status`` are 200-599, Envoy's range
  (Istio's check lets 600 through).
- ``fault.abort.grpcStatus``, ``delegate`` and JWT claim matches (``@request.auth.claims.*``
  headers, which Istio allows on gateways only) are refused as not supported yet: the model
  carries none of them. Istio refuses ``http2Error`` and ``exponentialDelay`` itself.
- ``mirrors``, ``retries.backoff`` and ``retryIgnorePreviousHosts: false`` are validated,
  then ignored with a warning; so is a fault ``abort`` or ``delay`` without a type (as Istio).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import GO_INTEGER
from translators.mesh.documents.networking import shared_fields as f
from translators.mesh.model.routing import (
    Cors,
    DirectResponse,
    Fault,
    HeaderOperations,
    HttpMatch,
    HttpRoute,
    MatchKind,
    Mirror,
    NamedMatch,
    Redirect,
    Retries,
    Rewrite,
    StringMatch,
)

REDIRECT_CODES = (301, 302, 303, 307, 308)
"""The redirect codes Envoy's ``RedirectAction`` can send (Istio drops a route with another)."""

RETRY_ON_POLICIES = frozenset((
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
    "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
    "retriable-headers", "http3-post-connect-failure", "cancelled", "deadline-exceeded",
    "internal", "resource-exhausted", "unavailable",
))  # fmt: skip
"""Envoy's HTTP and gRPC ``retry_on`` conditions, which Istio's ``retryOn`` passes through."""

HTTP_STATUS_CODES = frozenset(
    {*range(100, 104), *range(200, 209), 226, *range(300, 306), 307, 308, *range(400, 419)}
    | {*range(421, 427), 428, 429, 431, 451, *range(500, 509), 510, 511}
)
"""The codes Go's ``http.StatusText`` names: the numbers Istio takes in ``retryOn``."""

CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
"""The methods Istio's ``validateCORSHTTPMethod`` allows (Go's ``net/http`` ones, and ``*``)."""

_AUTHORITY = (":authority", "host")
_BODY_LIMIT, _BODY_WARN = 1024 * 1024, 100 * 1024


def http_route(
    p: v.Problems,
    raw: object,
    field: str,
    warnings: list[str],
    *,
    namespace: str,
    delegate: bool = False,
) -> HttpRoute:
    """One ``http[]`` entry (invariants 1-6); ``delegate``: of a VirtualService without hosts."""
    m = v.mapping(p, raw, field) or {}
    _check_actions(p, m, field, delegate)
    if m.get("mirrors") is not None:
        _mirrors(p, m["mirrors"], f"{field}.mirrors")
        warnings.append(f"{field}.mirrors is not supported yet and is ignored")
    headers = f.header_operations(p, m.get("headers"), f"{field}.headers")
    rewrite = _rewrite(p, m.get("rewrite"), f"{field}.rewrite")
    _check_authority(p, rewrite, headers, f"{field}.headers.request")
    return HttpRoute(
        name=v.string(p, m.get("name"), f"{field}.name") or "",
        matches=tuple(
            _match(p, item, f"{field}.match[{j}]", namespace, warnings)
            for j, item in enumerate(v.sequence(p, m.get("match"), f"{field}.match"))
        ),
        route=f.destinations(p, m["route"], field) if m.get("route") is not None else (),
        redirect=_redirect(p, m.get("redirect"), f"{field}.redirect"),
        direct_response=_direct_response(
            p, m.get("directResponse"), f"{field}.directResponse", warnings
        ),
        rewrite=rewrite,
        timeout=f.duration(p, m.get("timeout"), f"{field}.timeout", allow_zero=False),
        retries=_retries(p, m.get("retries"), f"{field}.retries", warnings),
        fault=_fault(p, m.get("fault"), f"{field}.fault", warnings),
        mirror=_mirror(p, m, field, warnings),
        headers=headers,
        cors=_cors(p, m.get("corsPolicy"), f"{field}.corsPolicy", warnings),
    )


def _check_actions(p: v.Problems, m: Mapping[str, object], field: str, delegate: bool) -> None:
    """Invariant 1 (Istio's ``validateHTTPRouteConflict``)."""
    actions = [k for k in ("route", "redirect", "directResponse") if m.get(k) is not None]
    if m.get("delegate") is not None:
        p.add(
            f"{field}.delegate",
            "delegate HTTP route cannot contain delegate"
            if delegate
            else "delegating to another VirtualService is not supported yet "
            "(pyistiod does not apply delegate VirtualServices)",
        )
    elif len(actions) != 1:
        p.add(
            field,
            f"must set exactly one of route, redirect, directResponse, got "
            f"{', '.join(actions) or 'none'}",
        )
    for action in ("redirect", "directResponse"):
        for key in ("rewrite", "fault"):
            if m.get(action) is not None and m.get(key) is not None:
                p.add(f"{field}.{key}", f"cannot be set together with {action}")
    if m.get("mirror") is not None and m.get("mirrors"):
        p.add(f"{field}.mirrors", "HTTP route cannot contain both mirror and mirrors")


def _check_authority(
    p: v.Problems, rewrite: Rewrite | None, headers: HeaderOperations | None, field: str
) -> None:
    """Invariant 2: the authority comes from one place (Istio's ``validateAuthorityRewrite``)."""
    current = rewrite.authority if rewrite is not None else ""
    pairs = (*headers.request_set, *headers.request_add) if headers is not None else ()
    for name, value in pairs:
        if name.lower() not in _AUTHORITY:
            continue
        if current:
            p.add(
                field,
                f"authority header cannot be set multiple times: have {current!r}, attempting "
                f"to set {value!r} ({name}); rewrite.authority and the :authority or host "
                "entries of set and add all set the one authority",
            )
            return
        current = value


def _match(
    p: v.Problems, raw: object, field: str, namespace: str, warnings: list[str]
) -> HttpMatch:
    m = v.mapping(p, raw, field) or {}
    source_namespace = v.string(p, m.get("sourceNamespace"), f"{field}.sourceNamespace") or ""
    if source_namespace and not v.is_istio_label(source_namespace):
        p.add(
            f"{field}.sourceNamespace",
            f"sourceNamespace match {source_namespace} is invalid: a namespace is a DNS-1123 "
            "label (letters, digits, '-')",
        )
    return HttpMatch(
        name=v.string(p, m.get("name"), f"{field}.name") or "",
        uri=f.string_match(p, m.get("uri"), f"{field}.uri", empty_prefix=True),
        scheme=f.string_match(p, m.get("scheme"), f"{field}.scheme"),
        method=f.string_match(p, m.get("method"), f"{field}.method"),
        authority=f.string_match(p, m.get("authority"), f"{field}.authority"),
        headers=_headers(p, m.get("headers"), f"{field}.headers", without=False),
        without_headers=_headers(p, m.get("withoutHeaders"), f"{field}.withoutHeaders"),
        query_params=f.named_matches(p, m.get("queryParams"), f"{field}.queryParams"),
        port=f.match_port(p, m.get("port"), f"{field}.port"),
        source_labels=v.labels(p, m.get("sourceLabels"), f"{field}.sourceLabels"),
        source_namespace=source_namespace,
        gateways=f.gateway_refs(p, m.get("gateways"), f"{field}.gateways", namespace, warnings),
        ignore_uri_case=v.boolean(p, m.get("ignoreUriCase"), f"{field}.ignoreUriCase", False),
    )


def _headers(
    p: v.Problems, raw: object, field: str, without: bool = True
) -> tuple[NamedMatch, ...]:
    """Header matches with valid names, lower-cased (invariant 6), sorted by name."""
    matches = f.named_matches(p, raw, field, headers=not without, star_present=without)
    out: list[NamedMatch] = []
    for name, match in matches:
        problem = f.match_header_problem(name)
        if problem is None:
            out.append((name.lower(), match))
        else:
            p.add(f"{field}.{name}", problem)
    return tuple(sorted(out, key=lambda pair: pair[0]))


def _redirect(p: v.Problems, raw: object, field: str) -> Redirect | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    code = f.integer(p, m.get("redirectCode"), f"{field}.redirectCode") or 301
    if code not in REDIRECT_CODES:
        p.add(
            f"{field}.redirectCode",
            f"must be one of {REDIRECT_CODES}, the codes Envoy can send (Istio accepts any "
            f"3xx, then drops the route), got {code}",
        )
    scheme = v.string(p, m.get("scheme"), f"{field}.scheme") or ""
    if scheme not in ("", "http", "https"):
        p.add(
            f"{field}.scheme", f"invalid redirect scheme, must be 'http' or 'https', got {scheme!r}"
        )
    derive = v.string(p, m.get("derivePort"), f"{field}.derivePort") or ""
    if derive not in ("", "FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"):
        p.add(
            f"{field}.derivePort",
            f"must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT, got {derive!r}",
        )
    if "port" in m and derive:
        p.add(f"{field}.port", "cannot be set together with derivePort")
    out = Redirect(
        uri=v.string(p, m.get("uri"), f"{field}.uri") or "",
        authority=v.string(p, m.get("authority"), f"{field}.authority") or "",
        redirect_code=code,
        scheme=scheme,
        port=v.port(p, m.get("port"), f"{field}.port", required=False),
        derive_port_from_request=derive == "FROM_REQUEST_PORT",
    )
    if not (out.uri or out.authority or scheme or m.get("port") is not None or derive):
        p.add(field, "redirect must specify uri, authority, scheme, or port (or derivePort)")
    return out


def _direct_response(
    p: v.Problems, raw: object, field: str, warnings: list[str]
) -> DirectResponse | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    status = f.integer(p, m.get("status"), f"{field}.status", 200, 599)
    if status is None and "status" not in m:
        p.add(f"{field}.status", "is required")
    text = _body(p, v.mapping(p, m.get("body"), f"{field}.body") or {}, f"{field}.body")
    size = len(text.encode())
    if size > _BODY_LIMIT:
        p.add(f"{field}.body", f"must be less than 1MB (it is pushed to every proxy), got {size}")
    elif size > _BODY_WARN:
        warnings.append(
            f"{field}.body: large direct_responses ({size} bytes) may impact the "
            "control plane's performance"
        )
    return DirectResponse(status or 200, text)


def _body(p: v.Problems, body: Mapping[str, object], field: str) -> str:
    """``body.string``, or ``body.bytes`` (base64) when it holds UTF-8 text."""
    text = v.string(p, body.get("string"), f"{field}.string") or ""
    encoded = v.string(p, body.get("bytes"), f"{field}.bytes")
    if encoded is None:
        return text
    if "string" in body:
        p.add(field, "must set one of string, bytes")
        return text
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        p.add(f"{field}.bytes", "must be base64 of UTF-8 text (other bytes are not supported yet)")
        return ""


def _rewrite(p: v.Problems, raw: object, field: str) -> Rewrite | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    uri = v.string(p, m.get("uri"), f"{field}.uri") or ""
    authority = v.string(p, m.get("authority"), f"{field}.authority") or ""
    regex = v.mapping(p, m.get("uriRegexRewrite"), f"{field}.uriRegexRewrite")
    match = replace = ""
    if regex is not None:
        match = v.string(p, regex.get("match"), f"{field}.uriRegexRewrite.match") or ""
        replace = v.string(p, regex.get("rewrite"), f"{field}.uriRegexRewrite.rewrite") or ""
        if not match or not replace:
            p.add(f"{field}.uriRegexRewrite", "UriRegexRewrite requires both rewrite and match")
        elif f.regex(p, match, f"{field}.uriRegexRewrite.match") is None:
            match = ""
        if uri:
            p.add(f"{field}.uriRegexRewrite", "cannot be set together with uri")
    elif not uri and not authority:
        p.add(field, "rewrite must specify at least one of uri, uriRegexRewrite, or authority")
    return Rewrite(uri=uri, authority=authority, regex_match=match, regex_rewrite=replace)


def _retries(p: v.Problems, raw: object, field: str, warnings: list[str]) -> Retries | None:
    """Invariant 3 (Istio's ``validateHTTPRetry``)."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    attempts = f.integer(p, m.get("attempts"), f"{field}.attempts", 0, 2**31 - 1)
    policy = [k for k in ("perTryTimeout", "retryOn", "retryRemoteLocalities") if _set(m, k)]
    if m.get("attempts") in (None, 0) and policy:
        p.add(
            f"{field}.attempts",
            "http retry policy configured when attempts are set to 0 (disabled): set "
            f"attempts to at least 1 for {', '.join(policy)} to apply",
        )
    f.duration(p, m.get("backoff"), f"{field}.backoff", allow_zero=False)
    key = "retryIgnorePreviousHosts"
    ignored = ["backoff"] if _set(m, "backoff") else []
    ignored += [key] if not v.boolean(p, m.get(key), f"{field}.{key}", True) else []
    warnings.extend(f"{field}.{k} is not supported yet and is ignored" for k in ignored)
    remote = m.get("retryRemoteLocalities")
    return Retries(
        attempts=attempts or 0,
        per_try_timeout=f.duration(
            p, m.get("perTryTimeout"), f"{field}.perTryTimeout", allow_zero=False
        ),
        retry_on=_retry_on(p, m.get("retryOn"), f"{field}.retryOn"),
        retry_remote_localities=None
        if remote is None
        else v.boolean(p, remote, f"{field}.retryRemoteLocalities", False),
    )


def _set(m: Mapping[str, object], key: str) -> bool:
    return m.get(key) is not None and m.get(key) != ""


def _retry_on(p: v.Problems, value: object, field: str) -> str:
    """``retryOn`` parts, numbers written canonically (``+503`` is ``503``, as Go reads it)."""
    text = v.string(p, value, field) or ""
    parts: list[str] = []
    for part in text.split(",") if text else ():
        if GO_INTEGER.match(part) and int(part) in HTTP_STATUS_CODES:
            parts.append(str(int(part)))
        elif part in RETRY_ON_POLICIES:
            parts.append(part)
        else:
            p.add(
                field,
                f"{part!r} is not a valid retryOn policy: parts are separated by ',' without "
                "spaces, each an HTTP status code or one of "
                f"{', '.join(sorted(RETRY_ON_POLICIES))}",
            )
    return ",".join(parts)


def _fault(p: v.Problems, raw: object, field: str, warnings: list[str]) -> Fault | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    delay = v.mapping(p, m.get("delay"), f"{field}.delay")
    abort = v.mapping(p, m.get("abort"), f"{field}.abort")
    if delay is None and abort is None:
        p.add(field, "HTTP fault injection must have an abort and/or a delay")
    fault = Fault()
    if delay is not None:
        delay_percent = _fraction(p, delay.get("percentage"), f"{field}.delay.percentage")
        fault = Fault(_delay(p, delay, f"{field}.delay", warnings), delay_percent)
    if abort is not None:
        status = _abort(p, abort, f"{field}.abort", warnings)
        abort_percent = _fraction(p, abort.get("percentage"), f"{field}.abort.percentage")
        fault = Fault(fault.delay, fault.delay_percent, status, abort_percent)
    return fault if fault.delay is not None or fault.abort_status is not None else None


def _delay(
    p: v.Problems, delay: Mapping[str, object], field: str, warnings: list[str]
) -> int | None:
    if delay.get("exponentialDelay") is not None:
        p.add(f"{field}.exponentialDelay", "is not supported yet (Istio refuses it too)")
    elif delay.get("fixedDelay") is None:
        warnings.append(f"{field} sets no fixedDelay and is ignored")
    return f.duration(p, delay.get("fixedDelay"), f"{field}.fixedDelay", allow_zero=False)


def _abort(
    p: v.Problems, abort: Mapping[str, object], field: str, warnings: list[str]
) -> int | None:
    if abort.get("grpcStatus") is not None:
        p.add(f"{field}.grpcStatus", "is not supported yet: pyistiod injects HTTP aborts only")
    if abort.get("http2Error") is not None:
        p.add(f"{field}.http2Error", "HTTP/2 abort fault injection is not supported (by Istio)")
    if all(abort.get(k) is None for k in ("httpStatus", "grpcStatus", "http2Error")):
        warnings.append(f"{field}: abort configured, but error type not set; it is ignored")
    return f.integer(p, abort.get("httpStatus"), f"{field}.httpStatus", 200, 599)


def _fraction(p: v.Problems, raw: object, field: str) -> float | None:
    """A fault ``percentage``: 0, or 0.0001-100 (Istio's ``validatePercentage``)."""
    value = f.percent(p, raw, field)
    if value is not None and 0 < value < 0.0001:
        p.add(f"{field}.value", f"must be 0 or 0.0001-100, got {value}")
        return None
    return value


def _mirror(
    p: v.Problems, m: Mapping[str, object], field: str, warnings: list[str]
) -> Mirror | None:
    """``mirror`` with ``mirrorPercentage``, else the deprecated integer ``mirrorPercent``."""
    percent = f.percent(p, m.get("mirrorPercentage"), f"{field}.mirrorPercentage")
    for key in ("mirror_percent", "mirrorPercent"):
        if m.get(key) is None:
            continue
        warnings.append(f"{field}.{key}: deprecated, use mirrorPercentage instead")
        legacy = f.integer(p, m[key], f"{field}.{key}", 0, 100)
        if legacy is not None and m.get("mirrorPercentage") is None:
            percent = float(legacy)
    if m.get("mirror") is None:
        return None
    return Mirror(f.destination(p, m["mirror"], f"{field}.mirror"), percent)


def _mirrors(p: v.Problems, raw: object, field: str) -> None:
    """Validates ``mirrors`` (Istio's ``validateHTTPMirrors``); pyistiod ignores them."""
    for i, item in enumerate(v.sequence(p, raw, field)):
        m = v.mapping(p, item, f"{field}[{i}]") or {}
        if m.get("destination") is None:
            p.add(f"{field}[{i}].destination", "destination is required for mirrors")
        else:
            f.destination(p, m["destination"], f"{field}[{i}].destination")
        f.percent(p, m.get("percentage"), f"{field}[{i}].percentage")


def _cors(p: v.Problems, raw: object, field: str, warnings: list[str]) -> Cors | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    warnings.extend(
        f"{field}.{key} is not supported yet and is ignored"
        for key in ("allowOrigin", "unmatchedPreflights")
        if m.get(key) is not None
    )
    max_age = f.duration(p, m.get("maxAge"), f"{field}.maxAge", allow_zero=False)
    if max_age is not None and max_age % 1000:
        p.add(f"{field}.maxAge", "max_age duration is accurate only to seconds precision")
    credentials = m.get("allowCredentials")
    return Cors(
        allow_origins=_origins(p, m.get("allowOrigins"), f"{field}.allowOrigins"),
        allow_methods=_checked(p, m, "allowMethods", field, _cors_method),
        allow_headers=_checked(p, m, "allowHeaders", field, _cors_header),
        expose_headers=_checked(p, m, "exposeHeaders", field, _cors_header),
        max_age=max_age,
        allow_credentials=None
        if credentials is None
        else v.boolean(p, credentials, f"{field}.allowCredentials", False),
    )


def _origins(p: v.Problems, raw: object, field: str) -> tuple[StringMatch, ...]:
    out: list[StringMatch] = []
    for i, item in enumerate(v.sequence(p, raw, field)):
        match = f.string_match(p, item, f"{field}[{i}]")
        if match is not None and (match.kind is MatchKind.PRESENT or not match.value):
            p.add(f"{field}[{i}]", "'' is not a valid match type for CORS allow origins")
        elif match is not None:
            out.append(match)
    return tuple(out)


def _cors_method(name: str) -> str | None:
    return None if name in CORS_METHODS else f"{name!r} is not a supported HTTP method"


def _cors_header(name: str) -> str | None:
    ok = name == "*" or f.is_token(name)
    return None if ok else f"header name {name!r} is not valid: '*' or an RFC 7230 token"


def _checked(
    p: v.Problems,
    m: Mapping[str, object],
    key: str,
    field: str,
    problem_of: Callable[[str], str | None],
) -> tuple[str, ...]:
    values = f.strings(p, m.get(key), f"{field}.{key}")
    for i, value in enumerate(values):
        problem = problem_of(value)
        if problem is not None:
            p.add(f"{field}.{key}[{i}]", problem)
    return values
