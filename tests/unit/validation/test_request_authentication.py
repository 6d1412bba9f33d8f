"""What a RequestAuthentication may hold, as Istio's ``ValidateRequestAuthentication`` and
``validateJwtRule`` decide it.

Each row is a ``spec`` in YAML, read as a whole document by ``parse_object`` (so
unknown fields are refused too), and the verdict: ``Accept`` (with a fragment of a
warning, if Istio warns) or ``Refuse`` at a field path with a fragment of the
reason. A comment names Istio's message; rows marked (gap) are where pyistiod
refuses what Istio accepts.
"""

from __future__ import annotations

import json

import pytest
import yaml
from verdicts import Accept, Refuse, check, document

from translators.mesh.documents.kinds import ParseResult
from translators.mesh.documents.security.request_authentication import (
    RequestAuthenticationObject,
)
from translators.mesh.model.policies import JwksUri, JwtHeader

SELECTOR = "selector: {matchLabels: {app: backend}}"
URI = "jwksUri: https://idp.example.com/jwks.json"
EC_X, EC_Y = (
    "nLtxDW0ZtLFjdLZfWuhAE9I9pUgp6EbTvsm9IIoztpE",
    "hNt4d8AZ3sMIF8PE-jnHKGgOd0amlVsL35FeXYX11_E",
)
JWKS = json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y}]})
SHORT = json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": EC_Y}]})
R0 = "spec.jwtRules[0]"


def rule(body: str) -> str:
    """A spec with one jwtRules entry whose fields are ``body``."""
    return f"{{{SELECTOR}, jwtRules: [{{{body}}}]}}"


CASES = [
    ("jwks_uri", rule(f"issuer: idp, {URI}"), Accept()),
    ("jwks_inline", rule(f"issuer: idp, jwks: '{JWKS}'"), Accept()),
    ("no_rules", f"{{{SELECTOR}}}", Accept()),
    ("namespace_wide", f"{{jwtRules: [{{issuer: idp, {URI}}}]}}", Accept()),
    ("every_field",
     rule(f"issuer: idp, {URI}, audiences: [a, b], fromHeaders: [{{name: x-token, prefix: "
          "'Bearer '}], fromParams: [token], fromCookies: [session], outputPayloadToHeader: "
          "x-payload, outputClaimToHeaders: [{header: x-sub, claim: sub}], "
          "forwardOriginalToken: true, timeout: 3s, spaceDelimitedClaims: [roles, scope, '']"),
     Accept()),
    ("uri_with_port", rule("issuer: idp, jwksUri: 'http://127.0.0.1:8000/keys'"), Accept()),
    # validateJwtRule: "issuer or jwksUri must be non-empty string" (Istio 1.27 and later;
    # older releases required the issuer)
    ("issuer_missing_with_uri", rule(URI), Accept()),
    ("issuer_empty_with_uri", rule(f"issuer: '', {URI}"), Accept()),
    ("issuer_missing_inline_jwks", rule(f"jwks: '{JWKS}'"),
     Refuse(f"{R0}.issuer", "issuer or jwksUri must be non-empty string")),
    # "audience must be non-empty string"
    ("audience_empty", rule(f"issuer: idp, {URI}, audiences: ['']"),
     Refuse(f"{R0}.audiences[0]", "audience must be non-empty string")),
    # ParseJwksURI: scheme http or https, a host
    ("uri_scheme", rule("issuer: idp, jwksUri: 'ftp://idp.example.com/keys'"),
     Refuse(f"{R0}.jwksUri", "scheme 'ftp' is not supported")),
    ("uri_no_host", rule("issuer: idp, jwksUri: 'https:///keys'"),
     Refuse(f"{R0}.jwksUri", "must name a host")),
    ("uri_bad_port", rule("issuer: idp, jwksUri: 'https://idp:99999/keys'"),
     Refuse(f"{R0}.jwksUri", "must be a URL")),
    ("uri_not_a_url", rule("issuer: idp, jwksUri: 'keys.json'"),
     Refuse(f"{R0}.jwksUri", "scheme '' is not supported")),
    ("uri_empty", rule("issuer: idp, jwksUri: ''"), Refuse(f"{R0}.jwksUri", "must not be empty")),
    # the CRD: jwks and jwksUri are exclusive
    ("jwks_and_uri", rule(f"issuer: idp, {URI}, jwks: '{JWKS}'"),
     Refuse(R0, "only one of jwks and jwksUri")),
    # "jwks parse error"
    ("jwks_not_json", rule("issuer: idp, jwks: 'not json'"),
     Refuse(f"{R0}.jwks", "jwks parse error")),
    ("jwks_no_kty", rule("""issuer: idp, jwks: '{"keys": [{"n": "x"}]}'"""),
     Refuse(f"{R0}.jwks", "kty must be one of")),
    ("jwks_short_ec_coordinate", rule(f"issuer: idp, jwks: '{SHORT}'"),
     Refuse(f"{R0}.jwks", "x must be base64url of 32 bytes")),
    ("jwks_empty_set", rule("""issuer: idp, jwks: '{"keys": []}'"""), Accept()),
    # (gap) istiod would discover the keys from the issuer's OpenID configuration
    ("no_keys", rule("issuer: idp"), Refuse(R0, "set jwks or jwksUri")),
    # "location header name must be non-empty string"
    ("from_header_no_name", rule(f"issuer: idp, {URI}, fromHeaders: [{{prefix: 'Bearer '}}]"),
     Refuse(f"{R0}.fromHeaders[0].name", "location header name must be non-empty")),
    # "location query must be non-empty string", "cookie name must be non-empty string"
    ("from_param_empty", rule(f"issuer: idp, {URI}, fromParams: ['']"),
     Refuse(f"{R0}.fromParams[0]", "location query must be non-empty")),
    ("from_cookie_empty", rule(f"issuer: idp, {URI}, fromCookies: ['']"),
     Refuse(f"{R0}.fromCookies[0]", "cookie name must be non-empty")),
    # "outputClaimToHeaders header and claim value must be non-empty string"
    ("claim_header_no_claim", rule(f"issuer: idp, {URI}, outputClaimToHeaders: [{{header: x}}]"),
     Refuse(f"{R0}.outputClaimToHeaders[0]", "header and claim value must be non-empty")),
    # ValidateStrictHTTPHeaderName
    ("claim_header_bad_name",
     rule(f"issuer: idp, {URI}, outputClaimToHeaders: [{{header: 'x y', claim: sub}}]"),
     Refuse(f"{R0}.outputClaimToHeaders[0].header", "is not valid")),
    ("payload_header_bad_name", rule(f"issuer: idp, {URI}, outputPayloadToHeader: 'a:b'"),
     Refuse(f"{R0}.outputPayloadToHeader", "is not valid")),
    # agent.ValidateDuration
    ("timeout_bad", rule(f"issuer: idp, {URI}, timeout: soon"),
     Refuse(f"{R0}.timeout", "must be a duration")),
    ("timeout_zero", rule(f"issuer: idp, {URI}, timeout: 0s"),
     Refuse(f"{R0}.timeout", "at least 1ms")),
    ("forward_not_bool", rule(f"issuer: idp, {URI}, forwardOriginalToken: yes please"),
     Refuse(f"{R0}.forwardOriginalToken", "true or false")),
    # -- selector and targets (validateWorkloadSelector, as AuthorizationPolicy) -------------
    ("selector_empty_labels",
     f"{{selector: {{matchLabels: {{}}}}, jwtRules: [{{issuer: i, {URI}}}]}}",
     Accept("has no matchLabels")),
    ("selector_wildcard", "{selector: {matchLabels: {app: '*'}}}",
     Refuse("spec.selector.matchLabels.app", "wildcard is not supported in selector")),
    # (gap) targetRef(s): Istio attaches to gateways and waypoints by reference
    ("target_ref", "{targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: gw}}",
     Refuse("spec.targetRef", "is not supported")),
    ("target_refs", "{targetRefs: [{kind: Service, group: '', name: httpbin}]}",
     Refuse("spec.targetRefs", "is not supported")),
    # -- unknown fields (the CRD schema) -----------------------------------------------------
    ("unknown_rule_field", rule(f"issuer: idp, {URI}, jwks_uri: x"),
     Refuse(f"{R0}.jwks_uri", "unknown field")),
    ("unknown_header_field", rule(f"issuer: idp, {URI}, fromHeaders: [{{name: a, prefx: b}}]"),
     Refuse(f"{R0}.fromHeaders[0].prefx", 'did you mean "prefix"')),
]  # fmt: skip


def parse(spec: str, api: str = "security.istio.io/v1") -> ParseResult:
    """``spec`` (YAML) as a whole RequestAuthentication document."""
    return document(api, "RequestAuthentication", yaml.safe_load(spec))


@pytest.mark.parametrize(("spec", "verdict"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_request_authentication_verdict(spec: str, verdict: Accept | Refuse) -> None:
    check(parse(spec), verdict, RequestAuthenticationObject, quiet=True)


def test_every_field_reaches_the_model_at_v1beta1_too() -> None:
    spec = dict((name, spec) for name, spec, _ in CASES)["every_field"]
    result = parse(spec, "security.istio.io/v1beta1")
    assert isinstance(result.obj, RequestAuthenticationObject)
    (jwt,) = result.obj.policy.rules
    assert jwt.jwks_uri == JwksUri(
        "https://idp.example.com/jwks.json", "https", "idp.example.com", 443
    )
    assert (jwt.issuer, jwt.audiences, jwt.timeout_ms) == ("idp", ("a", "b"), 3000)
    assert jwt.from_headers == (JwtHeader("x-token", "Bearer "),)
    assert (jwt.from_params, jwt.from_cookies) == (("token",), ("session",))
    assert jwt.output_payload_to_header == "x-payload" and jwt.forward_original_token
    assert jwt.space_delimited_claims == ("roles", "scope")  # Istio 1.28's field
    assert result.obj.policy.selector == frozenset({("app", "backend")})


def test_a_uri_without_port_takes_the_schemes() -> None:
    result = parse(rule("issuer: idp, jwksUri: 'http://keys.example.com/k'"))
    assert isinstance(result.obj, RequestAuthenticationObject)
    assert result.obj.policy.rules[0].jwks_uri == JwksUri(
        "http://keys.example.com/k", "http", "keys.example.com", 80
    )
