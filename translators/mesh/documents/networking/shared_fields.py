"""Field readers for Istio networking documents: durations, matches, hosts, headers, destinations.

They follow ``fields``' rules (never raise; record a ``ConfigError`` in
``Problems`` and return ``None``). Invariants, each Istio's rule
(``pkg/config/validation``) unless it says otherwise:

1. A duration is Go's ``time.Duration`` text, as Istio's YAML takes it
   (``1.5s``, ``100ms``, ``1h30m``), and must be a whole number of
   milliseconds, as Istio's ``ValidateDuration`` requires; it is returned in
   milliseconds.
2. Regexes are checked with RE2 (``google-re2``), the engine Envoy's
   ``safe_regex`` uses, so a regex Envoy would refuse (lookaround,
   backreference) is refused here, naming the field, before any proxy sees
   it; like Istio, at most 1024 characters.
3. A ``StringMatch`` is exactly one of ``exact``, ``prefix``, ``regex``; an
   empty one (``{}``) means "present". Neither a ``prefix`` nor a ``regex``
   may be empty, except that a ``uri`` may have an empty prefix (Envoy's path
   prefix ``""``); only ``withoutHeaders`` reads regex ``*`` as "present"
   (``validateHTTPRouteMatchRequest``), elsewhere ``*`` is an invalid regex.
4. Hosts follow ``ValidateWildcardDomain``: at most 255 characters of
   DNS-1123 labels in any case, a wildcard (``*``, ``*x``, ``*-x``) only as the
   first label, a top-level label not all digits, one trailing dot allowed.
   Gateway references are ``mesh``, ``namespace/name`` (two DNS-1123 labels)
   or a DNS name (``ValidateFQDN``): a short name is in the VirtualService's
   namespace, and the legacy ``name.namespace[...]`` resolves to
   ``namespace/name`` with Istio's warning, as Istio's ``resolveGatewayName``.
5. Header names in matches are RFC 7230 tokens (any case) or the pseudo-headers
   ``:method :scheme :authority :path :status``. Header operations never name a
   pseudo-header, except that request ``set``/``add`` may name ``:authority``;
   ``host`` may only be set or added on requests (an authority rewrite). The values
   they set or add hold no control character but tab and an even number of ``%``
   (Istio's ``ValidateHTTPHeaderValue``: Envoy reads them as format strings).
6. A route's weights are integers >= 0; several destinations need a positive
   total, and need not sum to 100: Envoy splits by weight / total. A
   destination host is not ``*``; a subset is a DNS-1123 label in any case.
"""

from __future__ import annotations

import re
from typing import Any

import re2  # type: ignore[import-untyped]

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import domain_problem
from translators.mesh.model.routing import (
    JWT_CLAIM_PREFIX,
    MESH_GATEWAY,
    Destination,
    HeaderOperations,
    MatchKind,
    NamedMatch,
    RouteDestination,
    StringMatch,
    jwt_claim_path,
)
from translators.mesh.model.traffic import Millis

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNIT_NS["h"] = 3600 * 10**9
_MAX_REGEX = 1024
"""What Go's ``strconv.Atoi`` parses (Istio's test for a number in a name or ``retryOn``)."""
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$")  # RFC 7230 tchar
PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
"""The HTTP/2 pseudo-headers a header match may name (RFC 7540 section 8.1.2.3)."""
"""How a header match names a JWT claim (Istio routes on claims at gateways only)."""
_MAX_WEIGHT = 2**31 - 1  # Istio's weight is an int32
_MAX_TOTAL_WEIGHT = 2**32 - 1  # Envoy refuses weighted clusters summing to more


def parse_duration_text(text: str) -> int | None:
    """Go duration text in nanoseconds (``None`` if malformed); e.g. ``1m30s``, ``0.5s``."""
    if text in ("0", ""):
        return 0 if text == "0" else None
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return round(total)


def duration(p: v.Problems, value: object, field: str, *, allow_zero: bool = True) -> Millis | None:
    """An Istio duration (invariant 1), in milliseconds; ``None`` when absent or invalid."""
    if value is None:
        return None
    if not isinstance(value, str):
        p.add(
            field,
            f"must be a duration string such as '1.5s', '100ms' or '1h', got {v.describe(value)}",
        )
        return None
    nanos = parse_duration_text(value)
    if nanos is None:
        p.add(field, f"must be a duration such as '1.5s', '100ms' or '1h', got {value!r}")
        return None
    if nanos % 1_000_000:
        p.add(field, f"must be a whole number of milliseconds, got {value!r}")
        return None
    if nanos == 0 and not allow_zero:
        p.add(field, f"must be at least 1ms, got {value!r}")
        return None
    return nanos // 1_000_000


def percent(p: v.Problems, value: object, field: str) -> float | None:
    """Istio's ``Percent``: ``{value: 0-100}``; ``None`` when absent."""
    m = v.mapping(p, value, field)
    if m is None:
        return None
    raw = m.get("value", 0.0)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 100:
        p.add(f"{field}.value", f"must be a number 0-100, got {v.describe(raw)}")
        return None
    return float(raw)


def integer(
    p: v.Problems, value: object, field: str, low: int = 0, high: int = 2**32 - 1
) -> int | None:
    """An integer within [low, high]; ``None`` when absent or invalid."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        p.add(field, f"must be an integer {low}-{high}, got {v.describe(value)}")
        return None
    return value


def _quiet_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the reason goes into the ConfigError, not onto stderr
    return options


_RE2_OPTIONS = _quiet_options()


def regex(p: v.Problems, value: str, field: str) -> str | None:
    """``value`` if RE2 (Envoy's regex engine) accepts it, else an error naming RE2's reason."""
    if len(value) > _MAX_REGEX:
        p.add(field, f"is too large: at most {_MAX_REGEX} characters, got {len(value)}")
        return None
    try:
        re2.compile(value, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        p.add(field, f"is not a valid RE2 regex (Envoy's engine): {reason}; got {value!r}")
        return None
    return value


def string_match(
    p: v.Problems,
    value: object,
    field: str,
    *,
    empty_prefix: bool = False,
    star_present: bool = False,
) -> StringMatch | None:
    """A ``StringMatch`` (invariant 3); ``None`` when absent or invalid."""
    m = v.mapping(p, value, field)
    if m is None:
        return None
    set_kinds = [k for k in ("exact", "prefix", "regex") if k in m]
    unknown = sorted(set(m) - {"exact", "prefix", "regex"})
    if unknown:
        p.add(f"{field}.{unknown[0]}", "is not a string match kind (exact, prefix, regex)")
        return None
    if not set_kinds:
        return StringMatch(MatchKind.PRESENT)
    if len(set_kinds) > 1:
        p.add(field, f"must set exactly one of exact, prefix, regex, got {', '.join(set_kinds)}")
        return None
    kind = set_kinds[0]
    text = m[kind]
    if not isinstance(text, str):
        p.add(f"{field}.{kind}", f"must be a string, got {v.describe(text)}")
        return None
    if kind == "regex" and text == "*" and star_present:
        return StringMatch(MatchKind.PRESENT)
    if not text and (kind == "regex" or (kind == "prefix" and not empty_prefix)):
        p.add(f"{field}.{kind}", f"{kind} string match should not be empty (use {{}} for any)")
        return None
    if kind == "regex" and regex(p, text, f"{field}.regex") is None:
        return None
    return StringMatch(MatchKind(kind), text)


def named_matches(
    p: v.Problems, value: object, field: str, *, headers: bool = False, star_present: bool = False
) -> tuple[NamedMatch, ...]:
    """A ``{name: StringMatch}`` map (headers, query parameters), sorted by name.

    A null match is "present", except in ``headers`` (Istio: "cannot be null").
    """
    m = v.mapping(p, value, field) or {}
    out: list[NamedMatch] = []
    for name, raw in m.items():
        if raw is None and headers:
            p.add(f"{field}.{name}", f"header match {name} cannot be null (use {{}} for any)")
            continue
        sm = string_match(
            p, {} if raw is None else raw, f"{field}.{name}", star_present=star_present
        )
        if sm is not None:
            out.append((name, sm))
    return tuple(sorted(out, key=lambda pair: pair[0]))


def match_header_problem(name: str, *, gateway_only: bool = False) -> str | None:
    """Why ``name`` cannot be a header match's name (Istio's ``ValidateHTTPHeaderNameOrJwtClaim
    Route``), or ``None``. A JWT claim (``@request.auth.claims.NAME``, nested
    ``.A.B`` or ``[A][B]``) is one only in a VirtualService bound to gateways alone."""
    if name.startswith(JWT_CLAIM_PREFIX):
        if not jwt_claim_path(name):
            return (
                f"{name!r} names no claim: write @request.auth.claims.NAME, nested claims as "
                "@request.auth.claims.A.B or @request.auth.claims[A][B]"
            )
        if not gateway_only:
            return (
                f"JWT claim based routing (key: {name}) is only supported for gateway: bind "
                "the VirtualService to gateways only (not mesh)"
            )
        return None
    if name in PSEUDO_HEADERS or is_token(name):
        return None
    return (
        f"header name {name!r} is not valid: RFC 7230 token characters (letters, digits and "
        "!#$%&'*+-.^_`|~) or one of :method :scheme :authority :path :status"
    )


def is_token(name: str) -> bool:
    """Whether ``name`` is an RFC 7230 token: a valid HTTP header name, in any case."""
    return bool(_TOKEN.match(name))


def strings(p: v.Problems, value: object, field: str) -> tuple[str, ...]:
    """A list of non-empty strings."""
    return tuple(
        s
        for i, item in enumerate(v.sequence(p, value, field))
        if (s := v.string(p, item, f"{field}[{i}]", required=True)) is not None
    )


def match_port(p: v.Problems, value: object, field: str) -> int | None:
    """A match's ``port``: 1-65535, or unset (absent or 0, as Istio reads a proto zero)."""
    unset = value is None or (type(value) is int and value == 0)
    return None if unset else v.port(p, value, field, required=False)


def gateway_refs(
    p: v.Problems, value: object, field: str, namespace: str, warnings: list[str]
) -> tuple[str, ...]:
    """``gateways``: each validated and resolved to ``namespace/name`` or ``mesh`` (invariant 4)."""
    out: list[str] = []
    for i, name in enumerate(strings(p, value, field)):
        ref = _gateway_ref(p, name, f"{field}[{i}]", namespace, warnings)
        if ref is not None:
            out.append(ref)
    return tuple(out)


def _gateway_ref(
    p: v.Problems, name: str, field: str, namespace: str, warnings: list[str]
) -> str | None:
    if name == MESH_GATEWAY:
        return name
    if "/" in name:
        ns, _, gw = name.partition("/")
        parts = (("namespace", ns), ("gateway name", gw))
        bad = [f"{what} {part!r}" for what, part in parts if not v.is_istio_label(part)]
        if bad:
            p.add(
                field,
                f"invalid value for {' and '.join(bad)}: a gateway reference is "
                "'namespace/name' (two DNS-1123 labels), a name, or 'mesh'",
            )
            return None
        return name
    problem = domain_problem(name)
    if problem is not None:
        p.add(field, f"{problem}: a gateway reference is 'namespace/name', a name, or 'mesh'")
        return None
    if "." not in name:
        return f"{namespace}/{name}"
    gw, ns = name.split(".")[:2]
    warnings.append(
        f"{field}: using legacy gatewayName format {name!r}; prefer the <namespace>/<name> "
        f"format: '{ns}/{gw}' (read as that)"
    )
    return f"{ns}/{gw}"


def header_operations(p: v.Problems, value: object, field: str) -> HeaderOperations | None:
    """``headers``: ``request``/``response`` each with ``set``, ``add`` maps and ``remove``.

    Names follow invariant 5 (Istio's ``ValidateHTTPHeader[WithAuthority]OperationName``).
    """
    m = v.mapping(p, value, field)
    if m is None:
        return None
    req = v.mapping(p, m.get("request"), f"{field}.request") or {}
    resp = v.mapping(p, m.get("response"), f"{field}.response") or {}
    return HeaderOperations(
        _pairs(p, req.get("set"), f"{field}.request.set", request=True),
        _pairs(p, req.get("add"), f"{field}.request.add", request=True),
        _removals(p, req.get("remove"), f"{field}.request.remove"),
        _pairs(p, resp.get("set"), f"{field}.response.set"),
        _pairs(p, resp.get("add"), f"{field}.response.add"),
        _removals(p, resp.get("remove"), f"{field}.response.remove"),
    )


def _operation_problem(name: str, *, request: bool) -> str | None:
    if not name:
        return "header name cannot be empty"
    lower = name.lower()
    if request and lower in (":authority", "host"):
        return None  # an authority rewrite, checked once per route (http_routes)
    if lower == "host":
        return f"invalid header {name!r}: cannot set Host header (only request set/add may)"
    if name.startswith(":"):
        return f"invalid header {name!r}: header cannot have ':' prefix"
    return None


def _pairs(
    p: v.Problems, value: object, field: str, *, request: bool = False
) -> tuple[tuple[str, str], ...]:
    m = v.mapping(p, value, field) or {}
    out: list[tuple[str, str]] = []
    for name, raw in m.items():
        problem = _operation_problem(name, request=request)
        if problem is not None:
            p.add(f"{field}.{name}", problem)
        elif not isinstance(raw, str):
            p.add(f"{field}.{name}", f"must be a string, got {v.describe(raw)}")
        elif (problem := header_value_problem(raw)) is not None:
            p.add(f"{field}.{name}", problem)
        else:
            out.append((name, raw))
    return tuple(sorted(out))


def header_value_problem(value: str) -> str | None:
    """Istio's ``ValidateHTTPHeaderValue`` for a header a route sets or adds.

    Envoy reads the value as a format string (``%HOSTNAME%``, ``%REQ(x-a)%``; ``%%`` is a
    literal ``%``) and refuses the whole route configuration over a lone ``%``, so Istio
    refuses it here, as it does control characters other than tab.
    """
    if any((c < " " and c != "\t") or c == "\x7f" for c in value):
        return f"header value {value!r} holds a control character (only tab is allowed)"
    if value.count("%") % 2:
        return (
            f"header value {value!r} has a single %: escape it by doubling (%%) or enclose "
            "an Envoy variable in a pair of % (%HOSTNAME%)"
        )
    return None


def _removals(p: v.Problems, value: object, field: str) -> tuple[str, ...]:
    out: list[str] = []
    for i, name in enumerate(strings(p, value, field)):
        problem = _operation_problem(name, request=False)
        if problem is None:
            out.append(name)
        else:
            p.add(f"{field}[{i}]", problem)
    return tuple(out)


def destinations(p: v.Problems, raw: object, field: str) -> tuple[RouteDestination, ...]:
    """``route``: at least one destination; several need a positive total weight (invariant 6)."""
    items = v.sequence(p, raw, f"{field}.route")
    if not items:
        p.add(f"{field}.route", "must list at least one destination")
    before = len(p.errors)
    out = tuple(_route_destination(p, item, f"{field}.route[{i}]") for i, item in enumerate(items))
    weights = [d.weight or 0 for d in out]
    if len(p.errors) > before:
        return out  # a bad weight was reported; a total would only repeat it
    if len(out) > 1 and sum(weights) == 0:
        p.add(
            f"{field}.route",
            "total destination weight = 0: with several destinations at least one needs a "
            f"positive weight (traffic is split by weight / total), got {weights}",
        )
    elif sum(weights) > _MAX_TOTAL_WEIGHT:
        p.add(f"{field}.route", f"weights total {sum(weights)}, more than Envoy accepts (2^32-1)")
    return out


def _route_destination(p: v.Problems, raw: object, field: str) -> RouteDestination:
    m = v.mapping(p, raw, field) or {}
    weight = integer(p, m.get("weight"), f"{field}.weight", 0, _MAX_WEIGHT)
    headers = header_operations(p, m.get("headers"), f"{field}.headers")
    return RouteDestination(
        destination(p, m.get("destination"), f"{field}.destination"), weight, headers
    )


def destination(p: v.Problems, raw: object, field: str) -> Destination:
    """A ``destination``: ``host`` (required, not ``*``), ``subset``, ``port.number``."""
    m = v.mapping(p, raw, field)
    if m is None:
        p.add(field, "is required: a route needs a destination host")
        return Destination("")
    host = v.string(p, m.get("host"), f"{field}.host", required=True) or ""
    if host == "*":
        p.add(f"{field}.host", "invalid destination host *: name one service (or a '*.' domain)")
    elif host and (problem := domain_problem(host, wildcard=True)) is not None:
        p.add(f"{field}.host", problem)
    subset = v.string(p, m.get("subset"), f"{field}.subset") or ""
    if subset and not v.is_istio_label(subset):
        p.add(
            f"{field}.subset",
            f"subset name is invalid: {subset!r} (a DNS-1123 label: letters, digits, '-')",
        )
    port_sel = v.mapping(p, m.get("port"), f"{field}.port")
    number = None
    if port_sel is not None:  # a port selector needs its number (Istio's validatePortSelector)
        number = v.port(p, port_sel.get("number"), f"{field}.port.number")
    return Destination(host.lower(), subset, number, written=host)
