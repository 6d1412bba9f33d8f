"""The gateway part of the mesh model: Gateways and TLS credentials.

Typed, frozen and hashable like the rest of ``translators.mesh.model``. Sources fill them from
``networking.istio.io`` Gateway documents and ``v1`` Secrets
(``documents.gateways``); the gateway translators read them
(``envoy.listeners.gateway``, ``envoy.routes.gateway``, ``envoy.tls.gateway_secrets``), together
with the VirtualServices bound to the gateways (``selection.gateway_binding``).
Invariants:

1. Server hosts are resolved when parsed: ``./shop.example.com`` names the
   Gateway's own namespace, a bare host means any namespace (``*``).
   Translators never see ``.``.
2. A ``TlsCredential`` never shows its key material in ``repr``, so it can
   not leak into logs or error messages by accident.
3. Everything unsupported (``AUTO_PASSTHROUGH``, a protocol outside the
   enum) was refused when parsing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from translators.mesh.model.services import Labels

MESH_GATEWAY = "mesh"
"""The reserved VirtualService gateway name meaning "every sidecar"."""

CA_SUFFIX = "-cacert"
"""Istio's suffix for the SDS resource (or Secret) holding a credential's CA bundle."""

SDS_PREFIX = "kubernetes://"
"""Istio's SDS resource name prefix for a ``credentialName`` (``kubernetes://NAME``)."""


class ServerProtocol(enum.Enum):
    """A Gateway server's ``port.protocol``."""

    HTTP = "HTTP"
    HTTPS = "HTTPS"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def is_http(self) -> bool:
        """Plain-text HTTP family: routed by RDS ``http.PORT``."""
        return self in (ServerProtocol.HTTP, ServerProtocol.HTTP2, ServerProtocol.GRPC)


class TlsMode(enum.Enum):
    """A Gateway server's ``tls.mode`` (AUTO_PASSTHROUGH is refused when parsing)."""

    PASSTHROUGH = "PASSTHROUGH"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    OPTIONAL_MUTUAL = "OPTIONAL_MUTUAL"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"

    @property
    def terminates(self) -> bool:
        """Whether the gateway terminates TLS (everything but PASSTHROUGH)."""
        return self is not TlsMode.PASSTHROUGH


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A server's ``tls``: where its certificate comes from and what clients must show.

    Exactly one source of certificate is set for SIMPLE/MUTUAL: a
    ``credential_name`` (a Secret in the Gateway's namespace, served over SDS)
    or file paths on the gateway's disk.
    """

    mode: TlsMode = TlsMode.SIMPLE
    https_redirect: bool = False
    credential_name: str = ""
    server_certificate: str = ""
    private_key: str = ""
    ca_certificates: str = ""
    subject_alt_names: tuple[str, ...] = ()
    min_protocol_version: str = ""
    """``TLSV1_0``..``TLSV1_3``; empty (or ``TLS_AUTO``) keeps Envoy's default."""
    max_protocol_version: str = ""


@dataclass(frozen=True, slots=True)
class GatewayHost:
    """One ``hosts`` entry: which VirtualServices (by namespace) may bind which host.

    ``namespace`` is ``*`` for any namespace; ``host`` is a DNS name, a
    ``*.suffix`` wildcard or ``*``.
    """

    namespace: str
    host: str


@dataclass(frozen=True, slots=True)
class GatewayServer:
    """One entry of a Gateway's ``servers``."""

    port: int
    port_name: str
    protocol: ServerProtocol
    hosts: tuple[GatewayHost, ...]
    bind: str = ""
    tls: ServerTls | None = None
    name: str = ""

    @property
    def passthrough(self) -> bool:
        """A TLS server the gateway forwards without terminating."""
        return self.tls is not None and self.tls.mode is TlsMode.PASSTHROUGH


@dataclass(frozen=True, slots=True)
class Gateway:
    """A Gateway: servers for the gateway proxies whose labels ``selector`` matches."""

    namespace: str
    name: str
    selector: Labels
    servers: tuple[GatewayServer, ...]

    @property
    def ref(self) -> str:
        """How VirtualServices name it, resolved: ``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class TlsCredential:
    """A TLS key pair from a Kubernetes Secret, for gateways' ``credentialName``.

    ``ca_pem`` is the Secret's ``ca.crt`` (``cacert`` in Istio's generic
    form), used to verify clients of MUTUAL servers; empty when absent.
    """

    namespace: str
    name: str
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    ca_pem: bytes = field(default=b"", repr=False)


def credential_sds_name(credential_name: str) -> str:
    """The SDS resource name of a credential's key pair: ``kubernetes://NAME``."""
    return f"{SDS_PREFIX}{credential_name}"


def credential_ca_sds_name(credential_name: str) -> str:
    """The SDS resource name of a credential's CA bundle: ``kubernetes://NAME-cacert``."""
    return f"{SDS_PREFIX}{credential_name}{CA_SUFFIX}"
