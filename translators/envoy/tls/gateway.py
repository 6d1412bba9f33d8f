"""A Gateway server's TLS settings as Envoy's ``DownstreamTlsContext`` and SDS secrets.

Invariants:

1. Where the server certificate comes from: ``credentialName`` -> the SDS
   resource ``kubernetes://NAME`` (over ADS, served by ``gateway_secrets``);
   file paths -> inline ``DataSource.filename`` read by Envoy on the
   gateway's disk; ISTIO_MUTUAL -> the gateway's own workload certificate
   (SDS ``default``) and the mesh root (``ROOTCA``).
2. MUTUAL requires a client certificate verified by the credential's CA
   (``kubernetes://NAME-cacert``, Istio's name) or ``caCertificates``;
   OPTIONAL_MUTUAL verifies one if presented; SIMPLE asks for none.
3. HTTPS servers offer ALPN ``h2`` and ``http/1.1``, as Istio's gateways do.
4. ``gateway_secret`` never puts a key in a name or message; key bytes only
   travel inline in the ``Secret`` itself.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2

from translators.envoy.config_source import sds_secret
from translators.envoy.tls.mtls import SDS_CERT, SDS_ROOT
from translators.envoy.tls.san import names_required
from translators.mesh.model.gateways import (
    GatewayServer,
    ServerProtocol,
    ServerTls,
    TlsCredential,
    TlsMode,
    credential_ca_sds_name,
    credential_sds_name,
)

HTTPS_ALPN = ("h2", "http/1.1")
_VERSIONS = {
    "TLSV1_0": common_pb2.TlsParameters.TLSv1_0,
    "TLSV1_1": common_pb2.TlsParameters.TLSv1_1,
    "TLSV1_2": common_pb2.TlsParameters.TLSv1_2,
    "TLSV1_3": common_pb2.TlsParameters.TLSv1_3,
}
_VERIFIES = (TlsMode.MUTUAL, TlsMode.OPTIONAL_MUTUAL, TlsMode.ISTIO_MUTUAL)


def downstream_context(server: GatewayServer) -> tls_pb2.DownstreamTlsContext:
    """The TLS context terminating ``server``'s connections (invariants 1-3)."""
    tls = server.tls or ServerTls()
    common = tls_pb2.CommonTlsContext(tls_params=_params(tls))
    if server.protocol is ServerProtocol.HTTPS:
        common.alpn_protocols.extend(HTTPS_ALPN)
    if tls.mode is TlsMode.ISTIO_MUTUAL:
        common.tls_certificate_sds_secret_configs.append(sds_secret(SDS_CERT))
    elif tls.credential_name:
        name = credential_sds_name(tls.credential_name)
        common.tls_certificate_sds_secret_configs.append(sds_secret(name))
    else:
        common.tls_certificates.append(
            common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(filename=tls.server_certificate),
                private_key=base_pb2.DataSource(filename=tls.private_key),
            )
        )
    if tls.mode in _VERIFIES:
        _set_validation(common, tls)
    context = tls_pb2.DownstreamTlsContext(common_tls_context=common)
    context.require_client_certificate.value = tls.mode in (TlsMode.MUTUAL, TlsMode.ISTIO_MUTUAL)
    return context


def _params(tls: ServerTls) -> common_pb2.TlsParameters:
    params = common_pb2.TlsParameters()
    if tls.min_protocol_version:
        params.tls_minimum_protocol_version = _VERSIONS[tls.min_protocol_version]
    if tls.max_protocol_version:
        params.tls_maximum_protocol_version = _VERSIONS[tls.max_protocol_version]
    return params


def _set_validation(common: tls_pb2.CommonTlsContext, tls: ServerTls) -> None:
    sans = names_required(tls.subject_alt_names)
    if tls.mode is TlsMode.ISTIO_MUTUAL:
        sds_name = SDS_ROOT
    elif tls.credential_name:
        sds_name = credential_ca_sds_name(tls.credential_name)
    else:
        sans.trusted_ca.filename = tls.ca_certificates
        common.validation_context.CopyFrom(sans)
        return
    combined = tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
        default_validation_context=sans,
        validation_context_sds_secret_config=sds_secret(sds_name),
    )
    common.combined_validation_context.CopyFrom(combined)


def certificate_secret(credential_name: str, credential: TlsCredential) -> secret_pb2.Secret:
    """The ``kubernetes://NAME`` secret: the credential's certificate chain and key."""
    return secret_pb2.Secret(
        name=credential_sds_name(credential_name),
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=credential.cert_pem),
            private_key=base_pb2.DataSource(inline_bytes=credential.key_pem),
        ),
    )


def ca_secret(credential_name: str, ca_pem: bytes) -> secret_pb2.Secret:
    """The ``kubernetes://NAME-cacert`` secret: the CA bundle verifying clients."""
    return secret_pb2.Secret(
        name=credential_ca_sds_name(credential_name),
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=ca_pem)
        ),
    )
