"""Read one ``http[]`` route of a VirtualService: its matches and actions.

Its retries, fault, mirror and CORS are read by ``http_policies``.

Used by ``virtual_services`` (which states the VirtualService-wide rules); every
reader records errors in ``Problems`` and returns a value anyway. Invariants, following
Istio's ``validateHTTPRoute`` and the functions it calls:

1. A route sets exactly one of ``route``, ``redirect``, ``directResponse``; ``rewrite`` and
   ``fault`` go with ``route`` only; ``mirror`` and ``mirrors`` not both
   (``validateHTTPRouteConflict``).
2. The authority is set in one place at most: ``rewrite.authority`` or one ``:authority`` or
   ``host`` entry of ``headers.request.set``/``add`` (``validateAuthorityRewrite``).
3. Retries, fault injection, mirroring and CORS follow ``http_policies``.
4. ``redirect`` sets a ``uri``, ``authority``, ``scheme`` (``http`` or ``https``) or port;
   ``rewrite`` a ``uri``, ``authority`` or ``uriRegexRewrite`` (with ``match`` and
   ``rewrite``), not both URI forms.
5. ``timeout`` is at least 1ms.
6. Header match names are RFC 7230 tokens in any case, kept lower-cased (Envoy compares
   them so); ``sourceNamespace`` is a DNS-1123 label; ``gateways`` resolve as the
   VirtualService's (``shared_fields.gateway_refs``).

Deliberate differences from Istio, where pyistiod cannot (yet) do what Istio accepts:

- ``redirectCode`` must be one Envoy's ``RedirectAction`` can send (301, 302, 303, 307, 308).
  Istio accepts any 300-399 and then drops the route it cannot translate.
- ``fault.abort.httpStatus`` and ``directResponse.status`` are 200-599, Envoy's range
  (Istio's check lets 600 through).
- ``delegate`` is refused as not supported yet: the model carries none.

JWT claim matches (``@request.auth.claims.*`` headers and ``withoutHeaders``) are accepted
in a VirtualService bound to gateways only, as Istio accepts them, and kept as written.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from translators.mesh.documents import fields as v
from translators.mesh.documents.networking import http_policies as hp
from translators.mesh.documents.networking import shared_fields as f
from translators.mesh.model.routing import (
    DirectResponse,
    HeaderOperations,
    HttpMatch,
    HttpRoute,
    NamedMatch,
    Redirect,
    Rewrite,
    jwt_claim_path,
)

REDIRECT_CODES = (301, 302, 303, 307, 308)
"""The redirect codes Envoy's ``RedirectAction`` can send (Istio drops a route with another)."""

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
    gateway_only: bool = False,
) -> HttpRoute:
    """One ``http[]`` entry (invariants 1-6); ``delegate``: of a VirtualService without hosts;
    ``gateway_only``: of one bound to gateways only (JWT claim matches allowed)."""
    m = v.mapping(p, raw, field) or {}
    _check_actions(p, m, field, delegate)
    if m.get("mirrors") is not None:
        hp.mirrors(p, m["mirrors"], f"{field}.mirrors")
        warnings.append(f"{field}.mirrors is not supported yet and is ignored")
    headers = f.header_operations(p, m.get("headers"), f"{field}.headers")
    rewrite = _rewrite(p, m.get("rewrite"), f"{field}.rewrite")
    _check_authority(p, rewrite, headers, f"{field}.headers.request")
    return HttpRoute(
        name=v.string(p, m.get("name"), f"{field}.name") or "",
        matches=tuple(
            _match(p, item, f"{field}.match[{j}]", namespace, warnings, gateway_only)
            for j, item in enumerate(v.sequence(p, m.get("match"), f"{field}.match"))
        ),
        route=f.destinations(p, m["route"], field) if m.get("route") is not None else (),
        redirect=_redirect(p, m.get("redirect"), f"{field}.redirect"),
        direct_response=_direct_response(
            p, m.get("directResponse"), f"{field}.directResponse", warnings
        ),
        rewrite=rewrite,
        timeout=f.duration(p, m.get("timeout"), f"{field}.timeout", allow_zero=False),
        retries=hp.retries(p, m.get("retries"), f"{field}.retries", warnings),
        fault=hp.fault(p, m.get("fault"), f"{field}.fault", warnings),
        mirror=hp.mirror(p, m, field, warnings),
        headers=headers,
        cors=hp.cors(p, m.get("corsPolicy"), f"{field}.corsPolicy", warnings),
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
    p: v.Problems,
    raw: object,
    field: str,
    namespace: str,
    warnings: list[str],
    gateway_only: bool = False,
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
        headers=_headers(
            p, m.get("headers"), f"{field}.headers", without=False, gateway_only=gateway_only
        ),
        without_headers=_headers(
            p, m.get("withoutHeaders"), f"{field}.withoutHeaders", gateway_only=gateway_only
        ),
        query_params=f.named_matches(p, m.get("queryParams"), f"{field}.queryParams"),
        port=f.match_port(p, m.get("port"), f"{field}.port"),
        source_labels=v.labels(p, m.get("sourceLabels"), f"{field}.sourceLabels"),
        source_namespace=source_namespace,
        gateways=f.gateway_refs(p, m.get("gateways"), f"{field}.gateways", namespace, warnings),
        ignore_uri_case=v.boolean(p, m.get("ignoreUriCase"), f"{field}.ignoreUriCase", False),
    )


def _headers(
    p: v.Problems, raw: object, field: str, without: bool = True, gateway_only: bool = False
) -> tuple[NamedMatch, ...]:
    """Header matches with valid names, lower-cased (invariant 6; a JWT claim keeps its
    case), sorted by name."""
    matches = f.named_matches(p, raw, field, headers=not without, star_present=without)
    out: list[NamedMatch] = []
    for name, match in matches:
        problem = f.match_header_problem(name, gateway_only=gateway_only)
        if problem is None:
            claim = bool(jwt_claim_path(name))
            out.append((name if claim else name.lower(), match))
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
