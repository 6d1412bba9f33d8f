"""Parsing Gateway documents and TLS Secrets."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from gateway_example import self_signed, tls_secret

from translators.mesh.documents.kinds import parse_object
from translators.mesh.documents.networking.gateways import GatewayObject, SecretObject
from translators.mesh.model.gateways import GatewayHost, ServerProtocol, TlsMode
from translators.mesh.model.services import labels_of


def gateway(servers: list[dict[str, Any]], api: str = "networking.istio.io/v1") -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": "Gateway",
        "metadata": {"name": "ingress", "namespace": "istio-system"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": servers},
    }


def server(number: int, protocol: str, **extra: Any) -> dict[str, Any]:
    port = {"number": number, "name": f"p-{number}", "protocol": protocol}
    return {"port": port, "hosts": ["shop.example.com"], **extra}


def parsed(raw: dict[str, Any]) -> Any:
    result = parse_object(raw, path="f.yaml", document=0)
    assert result.errors == (), result.errors
    return result.obj


def errors(raw: dict[str, Any]) -> dict[str, str]:
    result = parse_object(raw, path="f.yaml", document=0)
    assert result.obj is None and result.errors
    return {e.field: e.reason for e in result.errors}


@pytest.mark.parametrize(
    "api", ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"]
)
def test_gateway_servers_hosts_and_tls(api: str) -> None:
    https = server(8443, "HTTPS", tls={"mode": "SIMPLE", "credentialName": "shop-credential"})
    https["hosts"] = ["./shop.example.com", "*/api.example.com", "prod/*.example.com"]
    obj = parsed(gateway([server(8080, "http", tls={"httpsRedirect": True}), https], api))
    assert isinstance(obj, GatewayObject)
    gw = obj.gateway
    assert (gw.namespace, gw.name, gw.ref) == ("istio-system", "ingress", "istio-system/ingress")
    assert gw.selector == labels_of({"istio": "ingressgateway"})
    plain, secure = gw.servers
    assert plain.protocol is ServerProtocol.HTTP and plain.tls is not None
    assert plain.tls.https_redirect
    assert plain.hosts == (GatewayHost("*", "shop.example.com"),)
    assert secure.tls is not None and secure.tls.mode is TlsMode.SIMPLE
    assert secure.tls.credential_name == "shop-credential"
    assert secure.hosts == (
        GatewayHost("istio-system", "shop.example.com"),
        GatewayHost("*", "api.example.com"),
        GatewayHost("prod", "*.example.com"),
    )


def test_tls_without_a_mode_is_passthrough_as_in_istio() -> None:
    """PASSTHROUGH is the zero value of Istio's TLS mode: a server that names a credential
    but no mode forwards TLS untouched (and gets no certificate), with a warning."""
    raw = gateway([server(443, "HTTPS", tls={"credentialName": "shop-credential"})])
    result = parse_object(raw, path="f.yaml", document=0)
    assert result.errors == () and isinstance(result.obj, GatewayObject)
    (https,) = result.obj.gateway.servers
    assert https.tls is not None and https.tls.mode is TlsMode.PASSTHROUGH and https.passthrough
    assert any("mode is not set, so it is PASSTHROUGH" in w for w in result.warnings)


def test_gateway_passthrough_mutual_and_files() -> None:
    passthrough = server(443, "TLS", tls={"mode": "PASSTHROUGH"})
    mutual = server(
        9443,
        "HTTPS",
        tls={
            "mode": "MUTUAL",
            "serverCertificate": "/etc/certs/cert.pem",
            "privateKey": "/etc/certs/key.pem",
            "caCertificates": "/etc/certs/ca.pem",
            "minProtocolVersion": "TLSV1_2",
        },
    )
    gw = parsed(gateway([passthrough, mutual, server(3306, "TCP")])).gateway
    assert gw.servers[0].passthrough
    assert gw.servers[1].tls.min_protocol_version == "TLSV1_2"
    assert gw.servers[2].protocol is ServerProtocol.TCP


@pytest.mark.parametrize(
    ("servers", "field", "reason"),
    [
        ([], "spec.servers", "at least one server"),
        ([server(0, "HTTP")], "spec.servers[0].port.number", "1-65535"),
        ([server(80, "UDP")], "spec.servers[0].port.protocol", "must be one of"),
        ([{**server(80, "HTTP"), "hosts": []}], "spec.servers[0].hosts", "at least one host"),
        ([{**server(80, "HTTP"), "hosts": ["a/b/c"]}], "spec.servers[0].hosts[0]", "namespace"),
        ([{**server(80, "HTTP"), "hosts": ["bad_host"]}], "spec.servers[0].hosts[0]", "dnsName"),
        ([server(443, "HTTPS")], "spec.servers[0].tls", "required for protocol HTTPS"),
        ([server(443, "HTTPS", tls={"mode": "SIMPLE"})], "spec.servers[0].tls", "credentialName"),
        (
            [server(443, "HTTPS", tls={"mode": "AUTO_PASSTHROUGH"})],
            "spec.servers[0].tls.mode",
            "",
        ),
        (
            [server(443, "HTTPS", tls={"mode": "ISTIO_MUTUAL", "credentialName": "x"})],
            "spec.servers[0].tls",
            "ISTIO_MUTUAL",
        ),
        (
            [
                server(
                    443,
                    "HTTPS",
                    tls={"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k"},
                )
            ],
            "spec.servers[0].tls.caCertificates",
            "MUTUAL",
        ),
        (
            [server(80, "HTTP", tls={"mode": "SIMPLE", "credentialName": "x"})],
            "spec.servers[0].tls",
            "httpsRedirect",
        ),
        (
            [server(443, "HTTPS", tls={"credentialName": "x", "minProtocolVersion": "SSLv3"})],
            "spec.servers[0].tls.minProtocolVersion",
            "TLSV1_2",
        ),
        ([server(80, "HTTP"), server(80, "HTTP")], "spec.servers[1].port.name", "duplicates"),
        ([server(80, "HTTP", bind="nowhere")], "spec.servers[0].bind", "IP"),
    ],
)
def test_gateway_errors(servers: list[dict[str, Any]], field: str, reason: str) -> None:
    found = errors(gateway(servers))
    assert field in found, found
    assert reason in found[field]


def test_tls_secret_becomes_credential_without_showing_the_key() -> None:
    cert, key = self_signed("shop.example.com")
    obj = parsed(tls_secret("shop", "istio-system", cert, key, ca_pem=cert))
    assert isinstance(obj, SecretObject) and obj.credential is not None
    assert (obj.credential.cert_pem, obj.credential.key_pem, obj.credential.ca_pem) == (
        cert,
        key,
        cert,
    )
    assert "PRIVATE" not in repr(obj) and key.decode() not in repr(obj)


def test_generic_and_ca_only_secrets() -> None:
    cert, _ = self_signed("shop.example.com")
    raw = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "shop-cacert", "namespace": "istio-system"},
        "data": {"cacert": base64.b64encode(cert).decode()},
    }
    ca_only = parsed(raw)
    assert ca_only.credential is not None and ca_only.credential.ca_pem == cert
    assert ca_only.credential.cert_pem == b""
    other = parsed({**raw, "data": {"token": base64.b64encode(b"x").decode()}})
    assert isinstance(other, SecretObject) and other.credential is None


def test_bad_tls_secret_names_fields_not_bytes() -> None:
    cert, key = self_signed("shop.example.com")
    raw = tls_secret("shop", "istio-system", cert, key)
    raw["data"]["tls.key"] = base64.b64encode(b"not a key").decode()
    found = errors(raw)
    assert "not an unencrypted PEM private key" in found["data.tls.key"]
    assert "not a key" not in str(found)
    missing = tls_secret("shop", "istio-system", cert, key)
    del missing["data"]["tls.key"]
    assert "data.tls.key" in errors(missing)
    bad64 = tls_secret("shop", "istio-system", cert, key)
    bad64["data"]["tls.crt"] = "!!!"
    result = parse_object(bad64, path="f.yaml", document=0)
    assert any(e.field == "data.tls.crt" and "base64" in e.reason for e in result.errors)


def test_model_holds_gateways_credentials_and_sidecars() -> None:
    from translators.mesh.builder import build_model

    cert, key = self_signed("shop.example.com")
    sc = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": "default", "namespace": "shop"},
        "spec": {"egress": [{"hosts": ["./*"]}]},
    }
    objs = [
        parsed(gateway([server(8080, "HTTP")])),
        parsed(tls_secret("shop-credential", "istio-system", cert, key)),
        parsed(sc),
    ]
    model = build_model(objs)
    assert [g.name for g in model.gateways] == ["ingress"]
    assert model.credential("istio-system", "shop-credential") is not None
    assert model.credential("default", "shop-credential") is None
    assert [(s.namespace, s.name) for s in model.sidecars] == [("shop", "default")]
