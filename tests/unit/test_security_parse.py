"""Parsing PeerAuthentication, AuthorizationPolicy and DestinationRule (file source)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from translators.mesh.documents.kinds import parse_object
from translators.mesh.documents.networking.destination_rules import DestinationRuleObject
from translators.mesh.documents.security.authorization import AuthorizationPolicyObject
from translators.mesh.documents.security.peer_authentication import PeerAuthenticationObject
from translators.mesh.model.policies import (
    AuthzAction,
    AuthzRule,
    ClientTls,
    ClientTlsMode,
    Condition,
    MtlsMode,
    Operation,
    PortTrafficPolicy,
    Source,
)
from translators.mesh.model.services import labels_of
from translators.sources.files import load_dir
from xds_server.errors import ConfigError


def doc(kind: str, spec: dict[str, Any], api: str = "", name: str = "p") -> dict[str, Any]:
    group = "networking" if kind == "DestinationRule" else "security"
    return {
        "apiVersion": api or f"{group}.istio.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


def parsed(raw: dict[str, Any]) -> Any:
    result = parse_object(raw, path="f.yaml", document=0)
    assert result.errors == (), result.errors
    return result.obj


def errors(raw: dict[str, Any]) -> dict[str, str]:
    result = parse_object(raw, path="f.yaml", document=3)
    assert result.obj is None and result.errors
    for e in result.errors:
        assert (e.path, e.document) == ("f.yaml", 3)
    return {e.field: e.reason for e in result.errors}


# --- PeerAuthentication -----------------------------------------------------------------


@pytest.mark.parametrize("api", ["security.istio.io/v1", "security.istio.io/v1beta1"])
def test_peer_authentication_parsed(api: str) -> None:
    obj = parsed(
        doc(
            "PeerAuthentication",
            {
                "selector": {"matchLabels": {"app": "web"}},
                "mtls": {"mode": "STRICT"},
                "portLevelMtls": {8080: {"mode": "DISABLE"}, "9090": {"mode": "PERMISSIVE"}},
            },
            api,
        )
    )
    assert isinstance(obj, PeerAuthenticationObject)
    pa = obj.policy
    assert (pa.namespace, pa.name, pa.selector) == ("shop", "p", labels_of({"app": "web"}))
    assert pa.mode is MtlsMode.STRICT
    assert pa.port_modes == ((8080, MtlsMode.DISABLE), (9090, MtlsMode.PERMISSIVE))


def test_peer_authentication_defaults_to_unset_and_no_selector() -> None:
    pa = parsed(doc("PeerAuthentication", {})).policy
    assert (pa.mode, pa.selector, pa.port_modes) == (MtlsMode.UNSET, frozenset(), ())


def test_peer_authentication_errors() -> None:
    found = errors(
        doc(
            "PeerAuthentication",
            {"mtls": {"mode": "strict"}, "portLevelMtls": {"http": {"mode": "STRICT"}, 80: {}}},
        )
    )
    assert "must be one of UNSET, DISABLE, PERMISSIVE, STRICT" in found["spec.mtls.mode"]
    assert "port number" in found["spec.portLevelMtls.http"]
    assert "requires spec.selector" in found["spec.portLevelMtls"]


# --- AuthorizationPolicy ----------------------------------------------------------------


def test_authorization_policy_parsed() -> None:
    spec = {
        "selector": {"matchLabels": {"app": "web"}},
        "action": "DENY",
        "rules": [
            {
                "from": [
                    {
                        "source": {
                            "principals": ["cluster.local/ns/a/sa/b"],
                            "notNamespaces": ["x"],
                            "ipBlocks": ["10.0.0.0/8"],
                        }
                    }
                ],
                "to": [{"operation": {"methods": ["GET"], "paths": ["/api/*"], "ports": [8080]}}],
                "when": [{"key": "request.headers[x-id]", "values": ["1"]}],
            },
            {},
        ],
    }
    obj = parsed(doc("AuthorizationPolicy", spec))
    assert isinstance(obj, AuthorizationPolicyObject)
    ap = obj.policy
    assert (ap.action, ap.selector) == (AuthzAction.DENY, labels_of({"app": "web"}))
    assert ap.rules == (
        AuthzRule(
            sources=(
                Source(
                    principals=("cluster.local/ns/a/sa/b",),
                    not_namespaces=("x",),
                    ip_blocks=("10.0.0.0/8",),
                ),
            ),
            operations=(Operation(methods=("GET",), paths=("/api/*",), ports=("8080",)),),
            conditions=(Condition("request.headers[x-id]", ("1",)),),
        ),
        AuthzRule(),
    )


def test_authorization_policy_defaults_allow_without_rules() -> None:
    ap = parsed(doc("AuthorizationPolicy", {}, api="security.istio.io/v1beta1")).policy
    assert (ap.action, ap.rules) == (AuthzAction.ALLOW, ())


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"action": "CUSTOM"}, "spec.action", "CUSTOM (external authorization"),
        ({"action": "LOG"}, "spec.action", "must be one of ALLOW, DENY, AUDIT"),
        ({"targetRefs": [{"kind": "Gateway"}]}, "spec.targetRefs", "(gateway pods too)"),
        ({"targetRef": {"kind": "Service"}}, "spec.targetRef", "is not supported"),
        ({"rules": [{"from": []}]}, "spec.rules[0].from", "must not be empty"),
        ({"rules": [{"from": [{}]}]}, "spec.rules[0].from[0].source", "must not be empty"),
        ({"rules": [{"to": [{"operation": {}}]}]}, "spec.rules[0].to[0].operation", "not be empty"),
        (
            {"rules": [{"from": [{"source": {"ipBlocks": ["nope"]}}]}]},
            "spec.rules[0].from[0].source.ipBlocks[0]",
            "IP address or CIDR",
        ),
        (
            {"rules": [{"to": [{"operation": {"ports": ["http"]}}]}]},
            "spec.rules[0].to[0].operation.ports[0]",
            "port number",
        ),
        (
            {"rules": [{"to": [{"operation": {"paths": ["/a/{*}"]}}]}]},
            "spec.rules[0].to[0].operation.paths[0]",
            "path templates",
        ),
        (
            {"rules": [{"when": [{"key": "request.auth.claims[]", "values": ["x"]}]}]},
            "spec.rules[0].when[0].key",
            "is not a claim",
        ),
        (
            {"rules": [{"when": [{"key": "source.user", "values": ["x"]}]}]},
            "spec.rules[0].when[0].key",
            "use one of source.ip",
        ),
        (
            {"rules": [{"when": [{"key": "source.ip"}]}]},
            "spec.rules[0].when[0]",
            "at least one of values or notValues",
        ),
        (
            {"rules": [{"when": [{"key": "destination.port", "notValues": ["x"]}]}]},
            "spec.rules[0].when[0].notValues[0]",
            "port number",
        ),
    ],
)
def test_authorization_policy_refusals(spec: dict[str, Any], field: str, words: str) -> None:
    found = errors(doc("AuthorizationPolicy", spec))
    assert field in found, found
    assert words in found[field]


def test_errors_name_the_object() -> None:
    result = parse_object(
        doc("AuthorizationPolicy", {"action": "CUSTOM"}), path="a.yaml", document=1
    )
    assert result.errors[0].object == "AuthorizationPolicy shop/p"


# --- DestinationRule --------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v1beta1", "v1alpha3"])
def test_destination_rule_tls_parsed(api: str) -> None:
    raw = doc(
        "DestinationRule",
        {
            "host": "web",
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL", "subjectAltNames": ["spiffe://x/ns/a/sa/b"]},
                "portLevelSettings": [{"port": {"number": 9090}, "tls": {"mode": "DISABLE"}}],
            },
        },
        api=f"networking.istio.io/{api}",
    )
    obj = parsed(raw)
    assert isinstance(obj, DestinationRuleObject)
    policy = obj.rule.traffic_policy
    assert obj.rule.host == "web"
    assert policy.tls == ClientTls(ClientTlsMode.ISTIO_MUTUAL, ("spiffe://x/ns/a/sa/b",))
    assert policy.port_level == (PortTrafficPolicy(9090, ClientTls(ClientTlsMode.DISABLE)),)
    assert policy.tls_for(9090) == ClientTls(ClientTlsMode.DISABLE)
    assert policy.tls_for(80) is policy.tls


def test_destination_rule_unsupported_parts_warn() -> None:
    raw = doc(
        "DestinationRule",
        {
            "host": "web",
            "exportTo": ["."],
            "trafficPolicy": {"tls": {"mode": "SIMPLE", "credentialName": "c"}},
        },
    )
    result = parse_object(raw, path="f.yaml", document=0)
    assert result.errors == ()
    assert any("spec.exportTo is not supported yet" in w for w in result.warnings)
    assert not any("credentialName" in w for w in result.warnings)  # applied: no warning


def test_destination_rule_errors() -> None:
    found = errors(
        doc(
            "DestinationRule",
            {
                "trafficPolicy": {
                    "tls": {"mode": "TLS"},
                    "portLevelSettings": [{"port": {"number": 80}}, {"port": {"number": 80}}],
                }
            },
        )
    )
    assert "required" in found["spec.host"]
    assert "must be one of DISABLE" in found["spec.trafficPolicy.tls.mode"]
    assert "duplicates port 80" in found["spec.trafficPolicy.portLevelSettings[1].port.number"]


# --- through the file source ------------------------------------------------------------

MESH = """\
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
status: {podIP: 10.1.0.1}
---
apiVersion: v1
kind: Pod
metadata:
  name: job-0
  namespace: shop
  labels: {app: job}
  annotations: {sidecar.istio.io/inject: "false"}
status: {podIP: 10.1.0.2}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: shop}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec: {host: web, trafficPolicy: {tls: {mode: DISABLE}}}
"""


def test_file_source_fills_policies_and_injection_labels(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text(MESH)
    model = load_dir(tmp_path).model
    assert dict(model.workload("shop", "web-0").labels)["security.istio.io/tlsMode"] == "istio"  # type: ignore[union-attr]
    assert "security.istio.io/tlsMode" not in dict(model.workload("shop", "job-0").labels)  # type: ignore[union-attr]
    policies = model.policies
    assert [(p.namespace, p.name) for p in policies.peer_authentications] == [
        ("istio-system", "default")
    ]
    assert [p.name for p in policies.authorization_policies] == ["deny-all"]
    (dr,) = policies.destination_rules
    assert dr.host == "web.shop.svc.cluster.local"  # the short host resolved in its namespace


def test_file_source_reports_file_document_and_field(tmp_path: Path) -> None:
    bad = MESH + textwrap.dedent(
        """\
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: ext, namespace: shop}
        spec: {action: CUSTOM}
        """
    )
    (tmp_path / "mesh.yaml").write_text(bad)
    (error,) = load_dir(tmp_path).errors
    assert isinstance(error, ConfigError)
    assert (error.path, error.document, error.field) == ("mesh.yaml", 5, "spec.action")
    assert error.object == "AuthorizationPolicy shop/ext"
