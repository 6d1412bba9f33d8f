"""DestinationRule TLS origination (``tls.mode`` SIMPLE and MUTUAL) as an Envoy upstream context.

Invariants, as Istio's ``buildUpstreamTLSSettings`` with its defaults since 1.20
(``VERIFY_CERTIFICATE_AT_CLIENT`` and ``ENABLE_AUTO_SNI`` on):

1. The server is always verified unless ``insecureSkipVerify``: against
   ``caCertificates``, else (or with ``caCertificates: system``) against the operating
   system's trust store (``SYSTEM_CA_BUNDLE``, where Debian, Ubuntu and Alpine keep it).
2. SNI is ``sni`` when set, else the service's host (a wildcard host sends none).
3. The server's certificate must name ``subjectAltNames`` when given; else, when the SNI
   was taken from the host, it must name that host (Istio's automatic SAN validation); an
   explicit ``sni`` without ``subjectAltNames`` checks no name, as in Istio.
4. MUTUAL also presents ``clientCertificate`` with ``privateKey``. Files are read by
   Envoy, so a path must exist where the proxy runs. HTTP/2 ports offer ALPN ``h2``.
5. ``credentialName`` replaces the files by the Secret of that name, fetched over SDS on the
   ADS stream by Istio's names (``ApplyCustomSDSToClientCommonTLSContext``): the server is
   verified (unless ``insecureSkipVerify``) against ``kubernetes://NAME-cacert`` in a combined
   validation context whose default context carries the SAN rules of 3; MUTUAL presents
   ``kubernetes://NAME``; SIMPLE presents nothing. Which Secret answers those names (the
   proxy's own namespace only) and what a missing one does: ``origination_secrets``.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from translators.envoy.config_source import sds_secret
from translators.envoy.tls.san import names_required
from translators.mesh.model.gateways import credential_ca_sds_name, credential_sds_name
from translators.mesh.model.policies import ClientTls, ClientTlsMode

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
"""The operating system's trust store as one PEM file (Debian, Ubuntu, Alpine)."""


def originating_tls_context(tls: ClientTls, h2: bool, host: str) -> tls_pb2.UpstreamTlsContext:
    """The upstream TLS context of a SIMPLE or MUTUAL DestinationRule for the service ``host``
    (see the invariants)."""
    common = tls_pb2.CommonTlsContext(alpn_protocols=["h2"] if h2 else [])
    sni = tls.sni or ("" if host.startswith("*") else host)
    if not tls.insecure_skip_verify:
        _verify_server(common, tls, sni)
    if tls.mode is ClientTlsMode.MUTUAL and tls.credential_name:
        name = credential_sds_name(tls.credential_name)
        common.tls_certificate_sds_secret_configs.append(sds_secret(name))
    elif tls.mode is ClientTlsMode.MUTUAL and tls.client_certificate and tls.private_key:
        common.tls_certificates.add(
            certificate_chain=base_pb2.DataSource(filename=tls.client_certificate),
            private_key=base_pb2.DataSource(filename=tls.private_key),
        )
    return tls_pb2.UpstreamTlsContext(common_tls_context=common, sni=sni)


def _verify_server(common: tls_pb2.CommonTlsContext, tls: ClientTls, sni: str) -> None:
    """Invariants 1, 3 and 5: the trusted CA (a file or the Secret's) and the names."""
    names = tls.subject_alt_names or ((sni,) if sni and not tls.sni else ())
    validation = names_required(names)
    if tls.credential_name:
        combined = common.combined_validation_context
        combined.default_validation_context.CopyFrom(validation)
        combined.validation_context_sds_secret_config.CopyFrom(
            sds_secret(credential_ca_sds_name(tls.credential_name))
        )
        return
    ca = tls.ca_certificates if tls.ca_certificates not in ("", "system") else SYSTEM_CA_BUNDLE
    validation.trusted_ca.CopyFrom(base_pb2.DataSource(filename=ca))
    common.validation_context.CopyFrom(validation)
