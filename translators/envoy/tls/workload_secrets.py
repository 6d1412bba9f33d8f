"""SDS: a workload's certificate and the trust bundle as Envoy ``Secret`` resources.

Names are Istio's: ``default`` holds the workload's certificate chain and
private key, ``ROOTCA`` the roots as a validation context. The chain holds the
leaf and intermediates only; roots travel in ``ROOTCA`` (no root mixed into
the chain, no trailing-newline tricks: STYLE.md, "Avoid" 8).
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

WORKLOAD_SECRET = "default"
ROOT_SECRET = "ROOTCA"


def build_secrets(chain_pem: bytes, key_pem: bytes, root_pem: bytes) -> list[secret_pb2.Secret]:
    """The ``default`` and ``ROOTCA`` secrets of one workload."""
    return [
        secret_pb2.Secret(
            name=WORKLOAD_SECRET,
            tls_certificate=common_pb2.TlsCertificate(
                certificate_chain=base_pb2.DataSource(inline_bytes=chain_pem),
                private_key=base_pb2.DataSource(inline_bytes=key_pem),
            ),
        ),
        secret_pb2.Secret(
            name=ROOT_SECRET,
            validation_context=common_pb2.CertificateValidationContext(
                trusted_ca=base_pb2.DataSource(inline_bytes=root_pem)
            ),
        ),
    ]
