"""Read a RequestAuthentication (``security.istio.io`` v1, v1beta1) into the security model.

Invariants, following Istio's ``ValidateRequestAuthentication`` and ``validateJwtRule``:

1. ``selector.matchLabels`` is the only workload selection (``selector``);
   ``targetRef``/``targetRefs`` are refused as in AuthorizationPolicy (they
   attach policies to gateways and waypoints by reference).
2. Every ``jwtRules[]`` entry has an ``issuer`` or a ``jwksUri`` ("issuer or
   jwksUri must be non-empty string"; without an issuer Envoy checks no ``iss``),
   non-empty ``audiences``, ``fromHeaders`` names, ``fromParams`` and
   ``fromCookies``; ``outputClaimToHeaders`` entries have a claim and a
   header that is a valid HTTP header name, as is ``outputPayloadToHeader``;
   ``timeout`` is a duration.
3. A ``jwksUri`` is an ``http``/``https`` URL with a host (Istio's
   ``ParseJwksURI``; the port defaults to 80 or 443); inline ``jwks`` is a
   JSON Web Key Set (Istio's ``jwk.Parse``): an object whose ``keys`` lists
   keys of a known ``kty`` with their base64url parameters (RSA ``n``, ``e``;
   EC ``crv``, ``x``, ``y``; OKP ``crv``, ``x``; oct ``k``), so Envoy never
   refuses the listener for it. The two are exclusive.
4. Deliberate difference: a rule with neither ``jwks`` nor ``jwksUri`` is
   refused. Istio's istiod would discover the key set from the issuer's
   OpenID configuration and inline it; pyistiod fetches nothing, Envoy
   fetches ``jwksUri`` itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.networking import shared_fields as f
from translators.mesh.documents.security.selector import refuse_target_refs, workload_selector
from translators.mesh.model.policies import (
    ClaimToHeader,
    JwksUri,
    JwtHeader,
    JwtRule,
    RequestAuthentication,
)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_KEY_PARAMETERS = {"RSA": ("n", "e"), "EC": ("x", "y"), "OKP": ("x",), "oct": ("k",)}
_EC_SIZES = {"P-256": 32, "P-384": 48, "P-521": 66}


@dataclass(frozen=True, slots=True)
class RequestAuthenticationObject:
    """A parsed RequestAuthentication with its metadata."""

    meta: Meta
    policy: RequestAuthentication


def parse_request_authentication(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> RequestAuthenticationObject:
    """Read and validate a RequestAuthentication's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    refuse_target_refs(p, spec)
    selector = workload_selector(p, spec, warnings)
    rules = tuple(
        _rule(p, raw, f"spec.jwtRules[{i}]")
        for i, raw in enumerate(v.sequence(p, spec.get("jwtRules"), "spec.jwtRules"))
    )
    policy = RequestAuthentication(meta.namespace, meta.name, selector, rules)
    return RequestAuthenticationObject(meta, policy)


def _rule(p: v.Problems, raw: object, field: str) -> JwtRule:
    m = v.mapping(p, raw, field) or {}
    issuer = v.string(p, m.get("issuer"), f"{field}.issuer") or ""
    if not issuer and not m.get("jwksUri"):
        p.add(
            f"{field}.issuer",
            "issuer or jwksUri must be non-empty string: a rule names the iss claim its "
            "tokens carry, or where its keys are (then any issuer those keys sign is taken)",
        )
    uri = _jwks_uri(p, m.get("jwksUri"), f"{field}.jwksUri")
    jwks = _jwks(p, m.get("jwks"), f"{field}.jwks")
    if uri is not None and jwks:
        p.add(field, "set only one of jwks and jwksUri: both name the keys that verify tokens")
    elif uri is None and not jwks and "jwksUri" not in m and "jwks" not in m:
        p.add(
            field,
            "set jwks or jwksUri: pyistiod does not discover the key set from the issuer's "
            "OpenID configuration as istiod does",
        )
    timeout = f.duration(p, m.get("timeout"), f"{field}.timeout", allow_zero=False)
    return JwtRule(
        issuer=issuer,
        audiences=_non_empty(p, m.get("audiences"), f"{field}.audiences", "audience"),
        jwks_uri=uri,
        jwks=jwks,
        from_headers=_headers(p, m.get("fromHeaders"), f"{field}.fromHeaders"),
        from_params=_non_empty(p, m.get("fromParams"), f"{field}.fromParams", "location query"),
        from_cookies=_non_empty(p, m.get("fromCookies"), f"{field}.fromCookies", "cookie name"),
        output_payload_to_header=_header_name(
            p, m.get("outputPayloadToHeader"), f"{field}.outputPayloadToHeader"
        ),
        output_claim_to_headers=_claim_headers(
            p, m.get("outputClaimToHeaders"), f"{field}.outputClaimToHeaders"
        ),
        forward_original_token=v.boolean(
            p, m.get("forwardOriginalToken"), f"{field}.forwardOriginalToken", False
        ),
        timeout_ms=timeout or 0,
        space_delimited_claims=_claims(
            p, m.get("spaceDelimitedClaims"), f"{field}.spaceDelimitedClaims"
        ),
    )


def parse_jwks_uri(text: str) -> JwksUri | str:
    """``text`` taken apart (invariant 3), or why it is no JWKS URL."""
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError as e:
        return f"must be a URL, got {text!r}: {e}"
    if url.scheme not in _DEFAULT_PORTS:
        return f"URI scheme {url.scheme!r} is not supported: use http or https, got {text!r}"
    if not url.hostname:
        return f"must name a host, got {text!r}"
    return JwksUri(text, url.scheme, url.hostname, port or _DEFAULT_PORTS[url.scheme])


def _jwks_uri(p: v.Problems, raw: object, field: str) -> JwksUri | None:
    text = v.string(p, raw, field)
    if raw == "":
        p.add(field, "must not be empty when set: a URL such as https://example.com/jwks.json")
    if not text:
        return None
    parsed = parse_jwks_uri(text)
    if isinstance(parsed, str):
        p.add(field, parsed)
        return None
    return parsed


def _jwks(p: v.Problems, raw: object, field: str) -> str:
    text = v.string(p, raw, field)
    if text is None:
        return ""
    try:
        keys = json.loads(text).get("keys")
    except (ValueError, AttributeError):
        keys = None
    if not isinstance(keys, list):
        p.add(field, 'jwks parse error: must be a JSON Web Key Set, an object with a "keys" list')
        return ""
    problems = [f"keys[{i}]: {why}" for i, key in enumerate(keys) if (why := _key_problem(key))]
    if problems:
        p.add(field, "jwks parse error: " + "; ".join(problems))
        return ""
    return text


def _key_problem(key: object) -> str:
    """Why ``key`` is no JSON Web Key Envoy reads ('' if it is one)."""
    if not isinstance(key, dict):
        return "must be an object"
    names = _KEY_PARAMETERS.get(key.get("kty", ""))
    if names is None:
        return f"kty must be one of {', '.join(_KEY_PARAMETERS)}, got {key.get('kty')!r}"
    if key["kty"] in ("EC", "OKP") and not isinstance(key.get("crv"), str):
        return f"a {key['kty']} key needs crv"
    size = _EC_SIZES.get(key.get("crv", "")) if key["kty"] == "EC" else None
    if key["kty"] == "EC" and size is None:
        return f"crv must be one of {', '.join(_EC_SIZES)}, got {key.get('crv')!r}"
    for name in names:
        value = key.get(name)
        decoded = _base64url(value) if isinstance(value, str) else b""
        if not decoded or (size is not None and len(decoded) != size):
            return f"{name} must be base64url" + (f" of {size} bytes" if size else "")
    return ""


def _base64url(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return b""


def _claims(p: v.Problems, raw: object, field: str) -> tuple[str, ...]:
    """``spaceDelimitedClaims``: claim names (Istio checks none; an empty one names nothing)."""
    items = enumerate(v.sequence(p, raw, field))
    return tuple(claim for i, item in items if (claim := v.string(p, item, f"{field}[{i}]")))


def _non_empty(p: v.Problems, raw: object, field: str, what: str) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(v.sequence(p, raw, field)):
        text = v.string(p, item, f"{field}[{i}]")
        if item is None or item == "":
            p.add(f"{field}[{i}]", f"{what} must be non-empty string")
        if text:
            out.append(text)
    return tuple(out)


def _headers(p: v.Problems, raw: object, field: str) -> tuple[JwtHeader, ...]:
    out: list[JwtHeader] = []
    for i, item in enumerate(v.sequence(p, raw, field)):
        m = v.mapping(p, item, f"{field}[{i}]") or {}
        name = v.string(p, m.get("name"), f"{field}[{i}].name") or ""
        if not name:
            p.add(f"{field}[{i}].name", "location header name must be non-empty string")
        prefix = v.string(p, m.get("prefix"), f"{field}[{i}].prefix") or ""
        out.append(JwtHeader(name, prefix))
    return tuple(out)


def _header_name(p: v.Problems, raw: object, field: str) -> str:
    name = v.string(p, raw, field) or ""
    if name and not f.is_token(name):
        p.add(field, f"header name {name!r} is not valid: RFC 7230 token characters only")
        return ""
    return name


def _claim_headers(p: v.Problems, raw: object, field: str) -> tuple[ClaimToHeader, ...]:
    out: list[ClaimToHeader] = []
    for i, item in enumerate(v.sequence(p, raw, field)):
        m = v.mapping(p, item, f"{field}[{i}]") or {}
        header = v.string(p, m.get("header"), f"{field}[{i}].header") or ""
        claim = v.string(p, m.get("claim"), f"{field}[{i}].claim") or ""
        if not header or not claim:
            p.add(
                f"{field}[{i}]",
                "outputClaimToHeaders header and claim value must be non-empty string",
            )
            continue
        header = _header_name(p, header, f"{field}[{i}].header")
        if header:
            out.append(ClaimToHeader(header, claim))
    return tuple(out)
