"""Field readers for Istio networking documents: durations, percentages, RE2 regexes, matches.

They follow ``fields``' rules (never raise; record a ``ConfigError``
in ``Problems`` and return ``None``). Invariants:

1. A duration is Go's ``time.Duration`` text, as Istio's YAML takes it
   (``1.5s``, ``100ms``, ``1h30m``), and must be a whole number of
   milliseconds, as Istio's ``ValidateDuration`` requires; it is returned in
   milliseconds.
2. Regexes are checked with RE2 (``google-re2``), the engine Envoy's
   ``safe_regex`` uses, so a regex Envoy would refuse (lookaround,
   backreference) is refused here, naming the field, before any proxy sees it.
3. A ``StringMatch`` is exactly one of ``exact``, ``prefix``, ``regex``; an
   empty one (``{}``), or regex ``*``, means "present", as Istio reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import re2  # type: ignore[import-untyped]

from translators.mesh.documents import fields as v
from translators.mesh.model.routing import (
    Destination,
    HeaderOperations,
    MatchKind,
    NamedMatch,
    RouteDestination,
    StringMatch,
)
from translators.mesh.model.traffic import Millis

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_UNIT_NS["h"] = 3600 * 10**9


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
    try:
        re2.compile(value, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        p.add(field, f"is not a valid RE2 regex (Envoy's engine): {reason}; got {value!r}")
        return None
    return value


def string_match(p: v.Problems, value: object, field: str) -> StringMatch | None:
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
    if kind == "regex":
        if text == "*":
            return StringMatch(MatchKind.PRESENT)
        if regex(p, text, f"{field}.regex") is None:
            return None
    return StringMatch(MatchKind(kind), text)


def named_matches(p: v.Problems, value: object, field: str) -> tuple[NamedMatch, ...]:
    """A ``{name: StringMatch}`` map (headers, query parameters), sorted by name."""
    m = v.mapping(p, value, field) or {}
    out = [
        (name, sm)
        for name, raw in m.items()
        if (sm := string_match(p, raw, f"{field}.{name}")) is not None
    ]
    return tuple(sorted(out, key=lambda pair: pair[0]))


def strings(p: v.Problems, value: object, field: str) -> tuple[str, ...]:
    """A list of non-empty strings."""
    return tuple(
        s
        for i, item in enumerate(v.sequence(p, value, field))
        if (s := v.string(p, item, f"{field}[{i}]", required=True)) is not None
    )


def header_operations(p: v.Problems, value: object, field: str) -> HeaderOperations | None:
    """``headers``: ``request``/``response`` each with ``set``, ``add`` maps and ``remove``."""
    m = v.mapping(p, value, field)
    if m is None:
        return None
    req = v.mapping(p, m.get("request"), f"{field}.request") or {}
    resp = v.mapping(p, m.get("response"), f"{field}.response") or {}
    return HeaderOperations(
        _pairs(p, req.get("set"), f"{field}.request.set"),
        _pairs(p, req.get("add"), f"{field}.request.add"),
        strings(p, req.get("remove"), f"{field}.request.remove"),
        _pairs(p, resp.get("set"), f"{field}.response.set"),
        _pairs(p, resp.get("add"), f"{field}.response.add"),
        strings(p, resp.get("remove"), f"{field}.response.remove"),
    )


def _pairs(p: v.Problems, value: object, field: str) -> tuple[tuple[str, str], ...]:
    m = v.mapping(p, value, field) or {}
    out: list[tuple[str, str]] = []
    for name, raw in m.items():
        if isinstance(raw, str):
            out.append((name, raw))
        else:
            p.add(f"{field}.{name}", f"must be a string, got {v.describe(raw)}")
    return tuple(sorted(out))


def mapping_of(
    p: v.Problems, parent: Mapping[str, object], key: str, field: str
) -> Mapping[str, object]:
    """``parent[key]`` as a mapping, empty when absent (errors recorded)."""
    return v.mapping(p, parent.get(key), f"{field}.{key}") or {}


def destinations(p: v.Problems, raw: object, field: str) -> tuple[RouteDestination, ...]:
    """``route``: at least one destination; several need weights summing to 100 (invariant 2)."""
    items = v.sequence(p, raw, f"{field}.route")
    if not items:
        p.add(f"{field}.route", "must list at least one destination")
    out = tuple(_route_destination(p, item, f"{field}.route[{i}]") for i, item in enumerate(items))
    if len(out) > 1:
        total = sum(d.weight or 0 for d in out)
        if total != 100:
            p.add(
                f"{field}.route",
                f"weights of several destinations must sum to 100, got {total} "
                f"({', '.join(str(d.weight or 0) for d in out)})",
            )
    return out


def _route_destination(p: v.Problems, raw: object, field: str) -> RouteDestination:
    m = v.mapping(p, raw, field) or {}
    weight = integer(p, m.get("weight"), f"{field}.weight", 0, 100)
    headers = header_operations(p, m.get("headers"), f"{field}.headers")
    return RouteDestination(
        destination(p, m.get("destination"), f"{field}.destination"), weight, headers
    )


def destination(p: v.Problems, raw: object, field: str) -> Destination:
    """A ``destination``: ``host`` (required), ``subset``, ``port.number``."""
    m = v.mapping(p, raw, field)
    if m is None:
        p.add(field, "is required: a route needs a destination host")
        return Destination("")
    host = v.string(p, m.get("host"), f"{field}.host", required=True) or ""
    if host and host != "*" and not v.is_hostname(host, wildcard=True):
        p.add(f"{field}.host", f"must be a DNS name, got {host!r}")
    subset = v.string(p, m.get("subset"), f"{field}.subset") or ""
    port_sel = v.mapping(p, m.get("port"), f"{field}.port") or {}
    number = v.port(p, port_sel.get("number"), f"{field}.port.number", required=False)
    return Destination(host.lower(), subset, number, written=host)
