"""Istio's Gateway rules, one table (``ValidateGateway``, ``validateServer``,
``validateServerPort``, ``validateTLSOptions``, ``validateSidecarOrGatewayHostnamePart``).

Each row is a short list of ``servers`` (and a name, where the name is the rule), then
either the field pyistiod refuses and a fragment of its reason, or nothing (accepted)
and, where Istio warns, a fragment of the warning. Rows named ``gw_*`` are the probes
of the validation research, whose verdicts came from Istio; ``istio`` says what Istio
does. Whole documents go through ``parse_object``, so unknown-field checks apply too.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml
from verdicts import check, verdict

from translators.mesh.documents.kinds import ParseResult, parse_object
from translators.mesh.documents.networking.gateways import GatewayObject
from translators.mesh.model.gateways import GatewayHost


@dataclass(frozen=True)
class Case:
    """One rule: a Gateway's servers, and pyistiod's verdict next to Istio's."""

    name: str
    servers: str
    refused: str = ""
    """The field refused; empty when the object is accepted."""
    reason: str = ""
    """A fragment of the refusal reason, or (accepted) of a warning; empty: no warning."""
    istio: str = ""
    gateway: str = "gw"
    """``metadata.name``."""


HTTP = "port: {number: 80, name: http, protocol: HTTP}"
HTTPS = "port: {number: 443, name: https, protocol: HTTPS}"
TLS = "port: {number: 15443, name: tls, protocol: TLS}"
TCP = "port: {number: 9000, name: tcp, protocol: TCP}"
HOST = "hosts: [a.example.com]"
CERT = "credentialName: a-cert"
FILES = "serverCertificate: /c.pem, privateKey: /k.pem"

GATEWAY = [
    # -- probes ---------------------------------------------------------------------------
    Case(
        "gw_auto_passthrough",
        f"[{{{TLS}, hosts: ['*.local'], tls: {{mode: AUTO_PASSTHROUGH}}}}]",
        "spec.servers[0].tls.mode",
        "AUTO_PASSTHROUGH is not supported by pyistiod yet",
        "accepted (validateTLSOptions); a documented gap in pyistiod",
    ),
    Case(
        "gw_http_tls_mode_only",
        f"[{{{HTTP}, {HOST}, tls: {{httpsRedirect: true, mode: SIMPLE}}}}]",
        "spec.servers[0].tls",
        "may only set tls.httpsRedirect",
        "server cannot have TLS settings for plain text HTTP ports",
    ),
    Case(
        "gw_https_redirect_on_https",
        f"[{{{HTTPS}, {HOST}, tls: {{mode: SIMPLE, {CERT}, httpsRedirect: true}}}}]",
        reason="httpsRedirect should only be used with http servers",
        istio="warns: tls.httpsRedirect should only be used with http servers",
    ),
    Case(
        "gw_name_with_dot",
        f"[{{{HTTP}, {HOST}}}]",
        "metadata.name",
        "no dots",
        'invalid gateway name: "my.gw"',
        gateway="my.gw",
    ),
    Case(
        "gw_short_host",
        f"[{{{HTTP}, hosts: [foo]}}]",
        "spec.servers[0].hosts[0]",
        "short names (non FQDN) are not allowed",
        "short names (non FQDN) are not allowed",
    ),
    Case(
        "gw_target_port",
        f"[{{port: {{number: 80, name: http, protocol: HTTP, targetPort: 8080}}, {HOST}}}]",
        "spec.servers[0].port.targetPort",
        "targetPort has no impact on Gateways",
        "targetPort has no impact on Gateways",
    ),
    Case(
        "gw_tls_on_tcp",
        f"[{{{TCP}, {HOST}, tls: {{mode: SIMPLE, {CERT}}}}}]",
        "spec.servers[0].tls",
        "server cannot have TLS settings for non HTTPS/TLS ports",
        "server cannot have TLS settings for non HTTPS/TLS ports",
    ),
    # -- hosts ----------------------------------------------------------------------------
    Case(
        "namespaced_hosts",
        f"[{{{HTTP}, hosts: ['*', '*/a.example.com', ./b.example.com, Prod/c.example.com]}}]",
        istio="accepted: namespace '*', '.' or labels.IsDNS1123Label (upper case allowed)",
    ),
    Case("wildcard_host", f"[{{{HTTP}, hosts: ['*.example.com']}}]"),
    Case("ip_host", f"[{{{HTTP}, hosts: [10.1.2.3]}}]", istio="accepted: a Gateway may name an IP"),
    Case(
        "partial_wildcard_host",
        f"[{{{HTTP}, hosts: ['*a.example.com']}}]",
        "spec.servers[0].hosts[0]",
        "partial wildcard",
        'partial wildcard "*a.example.com" not allowed',
    ),
    Case(
        "tilde_namespace",
        f"[{{{HTTP}, hosts: [~/a.example.com]}}]",
        "spec.servers[0].hosts[0]",
        "namespace '~'",
        'invalid namespace value "~" in gateway',
    ),
    Case(
        "empty_namespace",
        f"[{{{HTTP}, hosts: [/a.example.com]}}]",
        "spec.servers[0].hosts[0]",
        "may be empty",
        "config namespace and dnsName in host entry cannot be empty",
    ),
    Case(
        "two_slashes",
        f"[{{{HTTP}, hosts: [a/b/c.example.com]}}]",
        "spec.servers[0].hosts[0]",
        "'b/c'",
    ),
    # -- tls ------------------------------------------------------------------------------
    Case(
        "http_redirect_only",
        f"[{{{HTTP}, {HOST}, tls: {{httpsRedirect: true}}}}]",
    ),
    Case(
        "http_tls_passthrough_mode",
        f"[{{{HTTP}, {HOST}, tls: {{mode: PASSTHROUGH, httpsRedirect: true}}}}]",
        istio="accepted: IsPassThroughServer (PASSTHROUGH is the zero value)",
    ),
    Case(
        "http_credential_name",
        f"[{{{HTTP}, {HOST}, tls: {{httpsRedirect: true, {CERT}}}}}]",
        reason="credentialName is ignored",
        istio="warns: PASSTHROUGH mode does not use certificates, they will be ignored",
    ),
    Case(
        "http_certificate_files",
        f"[{{{HTTP}, {HOST}, tls: {{{FILES}}}}}]",
        "spec.servers[0].tls",
        "may only set tls.httpsRedirect",
    ),
    Case(
        "https_without_tls",
        f"[{{{HTTPS}, {HOST}}}]",
        "spec.servers[0].tls",
        "is required",
        "server must have TLS settings for HTTPS/TLS protocols",
    ),
    Case(
        "simple_without_certificate",
        f"[{{{HTTPS}, {HOST}, tls: {{mode: SIMPLE}}}}]",
        "spec.servers[0].tls",
        "needs credentialName or serverCertificate and privateKey",
        "SIMPLE TLS requires a server certificate",
    ),
    Case(
        "optional_mutual_files_without_ca",
        f"[{{{HTTPS}, {HOST}, tls: {{mode: OPTIONAL_MUTUAL, {FILES}}}}}]",
        "spec.servers[0].tls.caCertificates",
        "OPTIONAL_MUTUAL",
        "MUTUAL TLS requires a client CA bundle",
    ),
    Case(
        "istio_mutual_with_credential",
        f"[{{{HTTPS}, {HOST}, tls: {{mode: ISTIO_MUTUAL, {CERT}}}}}]",
        "spec.servers[0].tls",
        "ISTIO_MUTUAL",
        "ISTIO_MUTUAL TLS cannot have associated credentialName",
    ),
    Case(
        "passthrough_with_credential",
        f"[{{{TLS}, {HOST}, tls: {{mode: PASSTHROUGH, {CERT}}}}}]",
        reason="PASSTHROUGH mode does not use certificates",
        istio="warns: PASSTHROUGH mode does not use certificates, they will be ignored",
    ),
    Case("mutual_credential", f"[{{{HTTPS}, {HOST}, tls: {{mode: MUTUAL, {CERT}}}}}]"),
    Case(
        "https_credential_without_mode",
        f"[{{{HTTPS}, {HOST}, tls: {{{CERT}}}}}]",
        reason="mode is not set, so it is PASSTHROUGH",
        istio="warns: PASSTHROUGH mode does not use certificates, they will be ignored "
        "(PASSTHROUGH is the zero value)",
    ),
]


def _parse(case: Case) -> ParseResult:
    document = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": case.gateway, "namespace": "istio-system"},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": yaml.safe_load(case.servers)},
    }
    return parse_object(document, path="probe.yaml", document=0)  # in istio-system


@pytest.mark.parametrize("case", GATEWAY, ids=lambda c: c.name)
def test_gateway(case: Case) -> None:
    check(_parse(case), verdict(case.refused, case.reason), GatewayObject, quiet=True)


def test_hosts_resolve_their_namespace() -> None:
    servers = f"[{{{HTTP}, hosts: [./a.example.com, b.example.com, 'prod/*.example.com']}}]"
    obj = _parse(Case("hosts", servers)).obj
    assert isinstance(obj, GatewayObject)
    assert obj.gateway.servers[0].hosts == (
        GatewayHost("istio-system", "a.example.com"),
        GatewayHost("*", "b.example.com"),
        GatewayHost("prod", "*.example.com"),
    )


def test_plain_http_server_keeps_only_the_redirect() -> None:
    obj = _parse(Case("http", f"[{{{HTTP}, {HOST}, tls: {{httpsRedirect: true, {CERT}}}}}]")).obj
    assert isinstance(obj, GatewayObject)
    tls = obj.gateway.servers[0].tls
    assert tls is not None and tls.https_redirect and not tls.credential_name
