"""Read the policies of one ``http[]`` route: retries, fault injection, mirroring and CORS.

Used by ``http_routes`` (which reads the route's matches and actions). Invariants,
following Istio's ``validateHTTPRoute`` and the functions it calls:

1. ``retries``: ``perTryTimeout``, ``retryOn`` and ``retryRemoteLocalities`` need
   ``attempts`` > 0 (absent is 0: retries disabled). ``retryOn`` is split on ``,`` without
   trimming; each part is an Envoy retry condition or an HTTP status code that Go's
   ``http.StatusText`` names (``validateHTTPRetry``).
2. Durations (``perTryTimeout``, ``backoff``, ``fixedDelay``, ``maxAge``) are at least 1ms,
   ``maxAge`` whole seconds; fault percentages are 0 or 0.0001-100.
3. CORS origins are not empty, methods are HTTP methods or ``*``, header names are tokens
   or ``*``.

4. A fault ``abort`` sets one of ``httpStatus`` (200-599) and ``grpcStatus`` (a gRPC code
   name, ``UNAVAILABLE``; Istio's ``SupportedGRPCStatus``); ``http2Error`` is refused, as
   Istio refuses it.

Deliberate differences from Istio: ``mirrors``, ``retries.backoff`` and
``retryIgnorePreviousHosts: false`` are validated, then ignored with a warning; so is a
fault ``abort`` or ``delay`` without a type (as Istio).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import GO_INTEGER
from translators.mesh.documents.networking import shared_fields as f
from translators.mesh.model.routing import Cors, Fault, MatchKind, Mirror, Retries, StringMatch

RETRY_ON_POLICIES = frozenset((
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
    "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
    "retriable-headers", "http3-post-connect-failure", "cancelled", "deadline-exceeded",
    "internal", "resource-exhausted", "unavailable",
))  # fmt: skip
"""Envoy's HTTP and gRPC ``retry_on`` conditions, which Istio's ``retryOn`` passes through."""

_GRPC_CODE_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)  # fmt: skip
GRPC_STATUS_CODES: Mapping[str, int] = {name: code for code, name in enumerate(_GRPC_CODE_NAMES)}
"""gRPC status codes by name (Istio's ``SupportedGRPCStatus``): what ``abort.grpcStatus`` names."""

HTTP_STATUS_CODES = frozenset(
    {*range(100, 104), *range(200, 209), 226, *range(300, 306), 307, 308, *range(400, 419)}
    | {*range(421, 427), 428, 429, 431, 451, *range(500, 509), 510, 511}
)
"""The codes Go's ``http.StatusText`` names: the numbers Istio takes in ``retryOn``."""

CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
"""The methods Istio's ``validateCORSHTTPMethod`` allows (Go's ``net/http`` ones, and ``*``)."""


def retries(p: v.Problems, raw: object, field: str, warnings: list[str]) -> Retries | None:
    """``retries`` (invariant 1, Istio's ``validateHTTPRetry``)."""
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


def fault(p: v.Problems, raw: object, field: str, warnings: list[str]) -> Fault | None:
    """``fault``: a delay and/or an abort, each with the share of requests it applies to."""
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
        status, grpc_status = _abort(p, abort, f"{field}.abort", warnings)
        abort_percent = _fraction(p, abort.get("percentage"), f"{field}.abort.percentage")
        fault = Fault(fault.delay, fault.delay_percent, status, abort_percent, grpc_status)
    return fault if fault.delay is not None or fault.aborts else None


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
) -> tuple[int | None, int | None]:
    """(HTTP status, gRPC code) of an ``abort``: at most one is set (invariant 4)."""
    kinds = [k for k in ("httpStatus", "grpcStatus", "http2Error") if abort.get(k) is not None]
    if len(kinds) > 1:
        p.add(field, f"set one of httpStatus, grpcStatus and http2Error, not {' and '.join(kinds)}")
        return None, None
    if abort.get("http2Error") is not None:
        p.add(f"{field}.http2Error", "HTTP/2 abort fault injection is not supported (by Istio)")
    if not kinds:
        warnings.append(f"{field}: abort configured, but error type not set; it is ignored")
    grpc_status = None
    if abort.get("grpcStatus") is not None:
        name = v.string(p, abort["grpcStatus"], f"{field}.grpcStatus")
        grpc_status = GRPC_STATUS_CODES.get(name or "")
        if name is not None and grpc_status is None:
            p.add(
                f"{field}.grpcStatus",
                f"gRPC status {name!r} is not supported: use a code name of "
                "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md, e.g. 'NOT_FOUND'",
            )
    return f.integer(p, abort.get("httpStatus"), f"{field}.httpStatus", 200, 599), grpc_status


def _fraction(p: v.Problems, raw: object, field: str) -> float | None:
    """A fault ``percentage``: 0, or 0.0001-100 (Istio's ``validatePercentage``)."""
    value = f.percent(p, raw, field)
    if value is not None and 0 < value < 0.0001:
        p.add(f"{field}.value", f"must be 0 or 0.0001-100, got {value}")
        return None
    return value


def mirror(
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


def mirrors(p: v.Problems, raw: object, field: str) -> None:
    """Validates ``mirrors`` (Istio's ``validateHTTPMirrors``); pyistiod ignores them."""
    for i, item in enumerate(v.sequence(p, raw, field)):
        m = v.mapping(p, item, f"{field}[{i}]") or {}
        if m.get("destination") is None:
            p.add(f"{field}[{i}].destination", "destination is required for mirrors")
        else:
            f.destination(p, m["destination"], f"{field}[{i}].destination")
        f.percent(p, m.get("percentage"), f"{field}[{i}].percentage")


def cors(p: v.Problems, raw: object, field: str, warnings: list[str]) -> Cors | None:
    """``corsPolicy`` (invariant 3)."""
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
