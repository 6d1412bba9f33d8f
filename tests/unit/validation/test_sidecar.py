"""Istio's Sidecar rules, one table (``ValidateSidecar``,
``ValidateNamespaceSlashWildcardHostname``, ``validateSidecarOutboundTrafficPolicy``,
``validateSidecarEgressPortBindAndCaptureMode``, ``ValidateAlphaWorkloadSelector``).

Each row is a short ``spec``, then either the field pyistiod refuses and a fragment of
its reason, or nothing (accepted) and, where Istio warns (or pyistiod says what it does
not apply yet), a fragment of the warning. Rows named ``sc_*`` are the probes of the
validation research, whose verdicts came from Istio; ``istio`` says what Istio does.
Whole documents go through ``parse_object``, so unknown-field checks apply too.
"""

from __future__ import annotations

import pytest
import yaml
from verdicts import Case, check, document

from translators.mesh.documents.kinds import ParseResult
from translators.mesh.documents.networking.sidecars import SidecarObject
from translators.mesh.model.services import Protocol
from translators.mesh.model.sidecars import (
    EgressHost,
    EgressProxy,
    OutboundMode,
    OutboundTrafficPolicy,
    SidecarPort,
)

ALL = "egress: [{hosts: ['./*']}]"
NOT_APPLIED = "outboundTrafficPolicy is not applied yet"
PROXY = "egressProxy: {host: proxy.example.com, port: {number: 3128}}"
HTTPS_IN = "port: {number: 8443, protocol: HTTPS, name: https}, defaultEndpoint: 127.0.0.1:8443"
FILES = "serverCertificate: /c.pem, privateKey: /k.pem"

SIDECAR = [
    # -- probes ---------------------------------------------------------------------------
    Case(
        "sc_duplicate_egress_host",
        "{egress: [{hosts: ['./*', './*']}]}",
        reason="duplicated egress host: ./*",
        istio="warns: duplicated egress host: ./*",
    ),
    Case("sc_egress_ns_star", "{egress: [{hosts: ['istio-system/*']}]}"),
    Case(
        "sc_egress_port_name_bad",
        "{egress: [{port: {number: 9080, protocol: HTTP, name: HTTP_X}, hosts: ['./*']}]}",
        "spec.egress[0].port.name",
        "DNS-1123 label",
        "invalid port name: HTTP_X",
    ),
    Case(
        "sc_egress_port_without_protocol",
        "{egress: [{port: {number: 9080, name: http}, hosts: ['./*']}]}",
        istio="accepted: an empty protocol means sniffing",
    ),
    Case(
        "sc_egress_proxy_registry_only",
        f"{{{ALL}, outboundTrafficPolicy: {{mode: REGISTRY_ONLY, {PROXY}}}}}",
        "spec.outboundTrafficPolicy.egressProxy",
        "must be set only with mode ALLOW_ANY",
        "egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
    ),
    Case(
        "sc_egress_short_name",
        "{egress: [{hosts: [./reviews]}]}",
        "spec.egress[0].hosts[0]",
        "short names (non FQDN) are not allowed",
        "short names (non FQDN) are not allowed",
    ),
    Case(
        "sc_egress_tilde_host",
        "{egress: [{hosts: [~/foo.example.com]}]}",
        istio="accepted: '~' goes with any dnsName",
    ),
    Case("sc_egress_tilde_star", "{egress: [{hosts: ['~/*']}]}"),
    Case(
        "sc_egress_tildens_star",
        "{egress: [{hosts: ['~ns/*']}]}",
        "spec.egress[0].hosts[0]",
        "'~ns'",
        'invalid namespace value "~ns" in sidecar',
    ),
    Case(
        "sc_empty_workload_selector",
        f"{{workloadSelector: {{}}, {ALL}}}",
        reason="without labels",
        istio="warns: workload selector specified without labels, applied to all in namespace",
    ),
    Case(
        "sc_empty_workload_selector_labels",
        f"{{workloadSelector: {{labels: {{}}}}, {ALL}}}",
        reason="without labels",
        istio="warns: workload selector specified without labels, applied to all in namespace",
    ),
    Case(
        "sc_ingress_tls_on_http_port",
        "{ingress: [{port: {number: 9080, protocol: HTTP, name: http},"
        f" defaultEndpoint: '127.0.0.1:8080', tls: {{mode: SIMPLE, {FILES}}}}}]}}",
        "spec.ingress[0].tls",
        "server cannot have TLS settings for non HTTPS/TLS ports",
        "server cannot have TLS settings for non HTTPS/TLS ports",
    ),
    Case(
        "sc_only_inbound_connection_pool",
        "{inboundConnectionPool: {tcp: {maxConnections: 100}}}",
        reason="inboundConnectionPool is not supported yet and is ignored",
        istio="accepted: not every one of the four top-level fields is absent",
    ),
    Case(
        "sc_only_outbound_traffic_policy",
        "{outboundTrafficPolicy: {mode: REGISTRY_ONLY}}",
        reason=NOT_APPLIED,
        istio="accepted: not every one of the four top-level fields is absent",
    ),
    Case(
        "sc_selector_wildcard",
        f"{{workloadSelector: {{labels: {{app: '*'}}}}, {ALL}}}",
        "spec.workloadSelector.labels.app",
        "wildcard is not supported in selector",
        'wildcard is not supported in selector: "app=*"',
    ),
    # -- the whole Sidecar ----------------------------------------------------------------
    Case(
        "empty",
        "{workloadSelector: {labels: {app: a}}}",
        "spec",
        "set egress, ingress, outboundTrafficPolicy or inboundConnectionPool",
        "sidecar: empty configuration provided",
    ),
    # -- egress hosts ---------------------------------------------------------------------
    Case("wildcard_dns_name", "{egress: [{hosts: ['./*.example.com', 'Prod/a.example.com']}]}"),
    Case(
        "partial_wildcard",
        "{egress: [{hosts: ['./*x.example.com']}]}",
        "spec.egress[0].hosts[0]",
        "partial wildcard",
        'partial wildcard "*x.example.com" not allowed',
    ),
    Case(
        "no_namespace",
        "{egress: [{hosts: [reviews.example.com]}]}",
        "spec.egress[0].hosts[0]",
        "namespace/dnsName",
        "host must be of form namespace/dnsName",
    ),
    Case(
        "empty_dns_name",
        "{egress: [{hosts: [./]}]}",
        "spec.egress[0].hosts[0]",
        "may be empty",
        "config namespace and dnsName in host entry cannot be empty",
    ),
    Case(
        "star_star_and_more",
        "{egress: [{hosts: ['*/*', 'istio-system/*']}]}",
        reason="`*/*` host select all resources",
        istio="warns: `*/*` host select all resources, no other hosts can be added",
    ),
    # -- ports ----------------------------------------------------------------------------
    Case(
        "egress_target_port",
        "{egress: [{port: {number: 80, protocol: HTTP, name: http, targetPort: 8080},"
        " hosts: ['./*']}]}",
        "spec.egress[0].port.targetPort",
        "targetPort has no impact on Sidecars",
        "targetPort has no impact on Sidecars",
    ),
    Case(
        "unknown_protocol",
        "{egress: [{port: {number: 80, protocol: FOO}, hosts: ['./*']}]}",
        "spec.egress[0].port.protocol",
        "must be one of",
    ),
    # -- outboundTrafficPolicy ------------------------------------------------------------
    Case(
        "egress_proxy_allow_any",
        f"{{outboundTrafficPolicy: {{mode: ALLOW_ANY, {PROXY}}}}}",
        reason=NOT_APPLIED,
    ),
    Case(
        "egress_proxy_default_mode",
        f"{{outboundTrafficPolicy: {{{PROXY}}}}}",
        "spec.outboundTrafficPolicy.egressProxy",
        "REGISTRY_ONLY (the default)",
        "refused: REGISTRY_ONLY is the protobuf zero value",
    ),
    Case(
        "egress_proxy_without_port",
        "{outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com}}}",
        "spec.outboundTrafficPolicy.egressProxy.port",
        "is required",
        "sidecar: egress_proxy port must be non-nil",
    ),
    Case(
        "egress_proxy_bad_host",
        "{outboundTrafficPolicy: {mode: ALLOW_ANY,"
        " egressProxy: {host: 'b@d', port: {number: 3128}}}}",
        "spec.outboundTrafficPolicy.egressProxy.host",
        "must be a DNS name",
    ),
    Case(
        "unknown_mode",
        "{outboundTrafficPolicy: {mode: SOMETIMES}}",
        "spec.outboundTrafficPolicy.mode",
        "must be one of REGISTRY_ONLY, ALLOW_ANY",
    ),
    # -- ingress tls ----------------------------------------------------------------------
    Case(
        "ingress_tls_valid",
        f"{{ingress: [{{{HTTPS_IN}, tls: {{mode: SIMPLE, {FILES}}}}}]}}",
        "spec.ingress[0].tls",
        "not supported by pyistiod yet",
        "accepted (newer Istio); a documented gap in pyistiod",
    ),
    Case(
        "ingress_tls_istio_mutual",
        f"{{ingress: [{{{HTTPS_IN}, tls: {{mode: ISTIO_MUTUAL}}}}]}}",
        "spec.ingress[0].tls.mode",
        "cannot be ISTIO_MUTUAL",
        "cannot set mode to ISTIO_MUTUAL in sidecar ingress tls",
    ),
    Case(
        "ingress_tls_credential_name",
        f"{{ingress: [{{{HTTPS_IN}, tls: {{mode: SIMPLE, credentialName: c}}}}]}}",
        "spec.ingress[0].tls.credentialName",
        "is not supported in Sidecar ingress tls",
        "sidecar: credentialName is not currently supported",
    ),
    Case(
        "ingress_tls_https_redirect",
        f"{{ingress: [{{{HTTPS_IN}, tls: {{mode: SIMPLE, {FILES}, httpsRedirect: true}}}}]}}",
        "spec.ingress[0].tls.httpsRedirect",
        "is not supported in Sidecar ingress tls",
        "sidecar: httpsRedirect is not supported",
    ),
    Case(
        "ingress_tls_mutual_without_ca",
        f"{{ingress: [{{{HTTPS_IN}, tls: {{mode: MUTUAL, {FILES}}}}}]}}",
        "spec.ingress[0].tls.caCertificates",
        "is required for MUTUAL",
        "MUTUAL TLS requires a client CA bundle",
    ),
]


def _parse(spec: str) -> ParseResult:
    return document("networking.istio.io/v1", "Sidecar", yaml.safe_load(spec), name="probe")


@pytest.mark.parametrize("case", SIDECAR, ids=lambda c: c.name)
def test_sidecar(case: Case) -> None:
    check(_parse(case.spec), case.verdict, SidecarObject, quiet=True)


def test_outbound_traffic_policy_reaches_the_model() -> None:
    obj = _parse(f"{{outboundTrafficPolicy: {{mode: ALLOW_ANY, {PROXY}}}}}").obj
    assert isinstance(obj, SidecarObject)
    assert obj.sidecar.outbound_traffic_policy == OutboundTrafficPolicy(
        OutboundMode.ALLOW_ANY, EgressProxy("proxy.example.com", 3128)
    )
    empty = _parse("{outboundTrafficPolicy: {}}").obj
    assert isinstance(empty, SidecarObject)
    assert empty.sidecar.outbound_traffic_policy == OutboundTrafficPolicy(
        OutboundMode.REGISTRY_ONLY
    )
    absent = _parse(ALL).obj
    assert isinstance(absent, SidecarObject) and absent.sidecar.outbound_traffic_policy is None


def test_port_without_protocol_takes_it_from_the_name() -> None:
    spec = "{egress: [{port: {number: 9080, name: http-api}, hosts: ['~/foo.example.com']}]}"
    obj = _parse(spec).obj
    assert isinstance(obj, SidecarObject)
    (listener,) = obj.sidecar.egress
    assert listener.port == SidecarPort(9080, Protocol.HTTP, "http-api")
    assert listener.hosts == (EgressHost("~", "foo.example.com"),)
