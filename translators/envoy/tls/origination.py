"""DestinationRule TLS origination (``tls.mode`` SIMPLE and MUTUAL) as an Envoy upstream context.

Invariants, as Istio's ``buildUpstreamTLSSettings`` for file-based settings:

1. SIMPLE: the server is verified against ``caCertificates`` (and
   ``subjectAltNames``) when given, else not verified; MUTUAL also presents
   ``clientCertificate`` with ``privateKey``. Files are read by Envoy, so a
   path must exist where the proxy runs.
2. ``sni`` is sent when set; HTTP/2 ports offer ALPN ``h2``.
3. ``credentialName`` (a Secret instead of files) is not applied yet: such a
   context presents no client certificate and verifies nothing, rather than
   naming empty files, which Envoy would refuse (NACKing every cluster of
   the proxy). The reader warns about it.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2

from translators.mesh.model.policies import ClientTls, ClientTlsMode


def originating_tls_context(tls: ClientTls, h2: bool) -> tls_pb2.UpstreamTlsContext:
    """The upstream TLS context of a SIMPLE or MUTUAL DestinationRule (see the invariants)."""
    common = tls_pb2.CommonTlsContext(alpn_protocols=["h2"] if h2 else [])
    if tls.ca_certificates:
        validation = common.validation_context
        validation.trusted_ca.CopyFrom(base_pb2.DataSource(filename=tls.ca_certificates))
        validation.match_typed_subject_alt_names.extend(
            common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.DNS,
                matcher=string_pb2.StringMatcher(exact=san),
            )
            for san in tls.subject_alt_names
        )
    if tls.mode is ClientTlsMode.MUTUAL and tls.client_certificate and tls.private_key:
        common.tls_certificates.add(
            certificate_chain=base_pb2.DataSource(filename=tls.client_certificate),
            private_key=base_pb2.DataSource(filename=tls.private_key),
        )
    return tls_pb2.UpstreamTlsContext(common_tls_context=common, sni=tls.sni)
