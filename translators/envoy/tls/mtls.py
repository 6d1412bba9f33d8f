"""Istio mutual TLS in Envoy terms: client side (clusters, endpoints) and server side (inbound).

Certificates come over SDS on the ADS stream, by Istio's secret names:
``default`` (the workload's key and certificate chain) and ``ROOTCA`` (the
mesh root to verify peers with). Invariants:

1. Client side, per outbound cluster (``upstream_tls``): a DestinationRule
   TLS mode decides if one applies: ISTIO_MUTUAL gives every endpoint mTLS;
   DISABLE gives plaintext; SIMPLE and MUTUAL originate TLS with the
   rule's files or its ``credentialName`` Secret (``origination``).
   Without one, Istio's auto mTLS: a mesh-internal, non passthrough cluster
   gets ``transport_socket_matches`` choosing mTLS for endpoints whose
   metadata carries ``tlsMode: istio`` and plaintext for the rest;
   ``endpoint_uses_mtls`` decides that metadata per endpoint.
2. The client verifies the server's SPIFFE identity: the DestinationRule's
   ``subjectAltNames``, else the service accounts of the service's
   endpoints, as Istio does; with neither it trusts any ROOTCA-signed peer.
3. Server side (``inbound_chains``): STRICT accepts TLS only, DISABLE
   plaintext only, PERMISSIVE both, told apart by the TLS inspector
   (``transport_protocol`` "tls" / "raw_buffer"). TLS chains require a
   client certificate signed by ROOTCA.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from google.protobuf import message

from translators.envoy.config_source import sds_secret
from translators.envoy.tls.origination import originating_tls_context
from translators.envoy.tls.san import URI, names_required
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import (
    TLS_MODE_ISTIO,
    TLS_MODE_LABEL,
    TRUST_DOMAIN,
    ClientTlsMode,
    MtlsMode,
)
from translators.mesh.model.services import (
    Endpoint,
    Location,
    Protocol,
    Resolution,
    Service,
    ServicePort,
)
from translators.mesh.selection.destination_rules import client_tls_for
from translators.mesh.selection.peer_authentication import effective_mode

SDS_CERT = "default"
SDS_ROOT = "ROOTCA"
TLS_SOCKET = "envoy.transport_sockets.tls"
RAW_BUFFER_SOCKET = "envoy.transport_sockets.raw_buffer"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"
SOCKET_MATCH_KEY = "envoy.transport_socket_match"
"""Endpoint metadata namespace that ``transport_socket_matches`` read."""

ALPN_IN_MESH = ("istio-peer-exchange", "istio")
"""Istio's client ALPN for mesh mTLS (``ALPNInMeshWithMxc``); servers see it is a sidecar."""
ALPN_IN_MESH_H2 = (*ALPN_IN_MESH, "h2")
ALPN_INBOUND = ("istio-peer-exchange", "istio", "h2", "http/1.1")


class UpstreamTls(enum.Enum):
    """How a cluster talks to its endpoints."""

    PLAINTEXT = "plaintext"
    AUTO = "auto"
    """Per endpoint: mTLS where the endpoint metadata says ``tlsMode: istio``."""
    ISTIO_MUTUAL = "istio_mutual"
    ORIGINATE = "originate"
    """DestinationRule SIMPLE or MUTUAL: TLS from files or a Secret (``origination``)."""


def outbound_sni(port: int, hostname: str) -> str:
    """Istio's SNI for a mesh mTLS upstream: ``outbound_.PORT_._.HOSTNAME``."""
    return f"outbound_.{port}_._.{hostname}"


def spiffe_uri(namespace: str, service_account: str) -> str:
    """A workload's SPIFFE ID: ``spiffe://TRUST_DOMAIN/ns/NS/sa/SA``."""
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def upstream_tls(model: MeshModel, service: Service, port: int, subset: str = "") -> UpstreamTls:
    """How the outbound cluster of a service port (subset) secures its connections (invariant 1)."""
    tls = client_tls_for(model.policies, service, port, subset)
    if tls is not None:
        return _BY_MODE[tls.mode]
    if service.location is Location.MESH_EXTERNAL or service.resolution is Resolution.NONE:
        return UpstreamTls.PLAINTEXT
    return UpstreamTls.AUTO


_BY_MODE = {
    ClientTlsMode.DISABLE: UpstreamTls.PLAINTEXT,
    ClientTlsMode.SIMPLE: UpstreamTls.ORIGINATE,
    ClientTlsMode.MUTUAL: UpstreamTls.ORIGINATE,
    ClientTlsMode.ISTIO_MUTUAL: UpstreamTls.ISTIO_MUTUAL,
}


def endpoint_uses_mtls(model: MeshModel, service: Service, endpoint: Endpoint) -> bool:
    """Whether auto mTLS dials this endpoint with mTLS: it has a sidecar that accepts it.

    The sidecar is known by the ``security.istio.io/tlsMode: istio`` label; a
    PeerAuthentication DISABLE on the endpoint's port means it accepts only
    plaintext (Istio's EDS ``mtlsChecker``).
    """
    if (TLS_MODE_LABEL, TLS_MODE_ISTIO) not in endpoint.labels:
        return False
    mode = effective_mode(model.policies, service.namespace, endpoint.labels, endpoint.port)
    return mode is not MtlsMode.DISABLE


def apply_upstream_tls(
    cluster: cluster_pb2.Cluster,
    model: MeshModel,
    service: Service,
    port: ServicePort,
    subset: str = "",
) -> None:
    """Set the cluster's transport socket (matches) for its service port (invariants 1, 2)."""
    how = upstream_tls(model, service, port.port, subset)
    if how is UpstreamTls.PLAINTEXT:
        return
    tls = client_tls_for(model.policies, service, port.port, subset)
    h2 = port.protocol in (Protocol.HTTP2, Protocol.GRPC)
    if how is UpstreamTls.ORIGINATE and tls is not None:
        context = originating_tls_context(tls, h2, service.hostname)
        cluster.transport_socket.CopyFrom(transport_socket(TLS_SOCKET, context))
        return
    sans = (tls.subject_alt_names if tls else ()) or _service_accounts(model, service)
    sni = (tls.sni if tls else "") or outbound_sni(port.port, service.hostname)
    alpn = ALPN_IN_MESH_H2 if h2 else ALPN_IN_MESH
    socket = transport_socket(TLS_SOCKET, upstream_tls_context(sni, alpn, sans))
    if how is UpstreamTls.ISTIO_MUTUAL:
        cluster.transport_socket.CopyFrom(socket)
        return
    match = cluster_pb2.Cluster.TransportSocketMatch
    istio = match(name="tlsMode-istio", transport_socket=socket)
    istio.match.update({"tlsMode": TLS_MODE_ISTIO})
    plain = match(name="tlsMode-disabled", transport_socket=raw_buffer_socket())
    plain.match.SetInParent()  # an empty match: every other endpoint
    cluster.transport_socket_matches.extend([istio, plain])


def _service_accounts(model: MeshModel, service: Service) -> tuple[str, ...]:
    accounts = {ep.service_account for ep in model.endpoints_of(service.hostname)}
    return tuple(sorted(spiffe_uri(service.namespace, sa) for sa in accounts if sa))


def set_tls_mode_metadata(metadata: base_pb2.Metadata) -> None:
    """Mark an LbEndpoint for the ``tlsMode-istio`` transport socket match."""
    metadata.filter_metadata[SOCKET_MATCH_KEY].update({"tlsMode": TLS_MODE_ISTIO})


def _common_tls_context(alpn: Sequence[str], sans: Sequence[str]) -> tls_pb2.CommonTlsContext:
    default_context = names_required(sans, URI)
    params = common_pb2.TlsParameters
    return tls_pb2.CommonTlsContext(
        tls_params=params(
            tls_minimum_protocol_version=params.TLSv1_2,
            tls_maximum_protocol_version=params.TLSv1_3,
        ),
        alpn_protocols=list(alpn),
        tls_certificate_sds_secret_configs=[sds_secret(SDS_CERT)],
        combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=default_context,
            validation_context_sds_secret_config=sds_secret(SDS_ROOT),
        ),
    )


def upstream_tls_context(
    sni: str, alpn: Sequence[str], sans: Sequence[str] = ()
) -> tls_pb2.UpstreamTlsContext:
    """Istio's client context: our cert, the server verified by ROOTCA (and ``sans``)."""
    return tls_pb2.UpstreamTlsContext(common_tls_context=_common_tls_context(alpn, sans), sni=sni)


def downstream_tls_context() -> tls_pb2.DownstreamTlsContext:
    """Istio's inbound context: our cert; a client cert signed by ROOTCA is required."""
    context = tls_pb2.DownstreamTlsContext(common_tls_context=_common_tls_context(ALPN_INBOUND, ()))
    context.require_client_certificate.value = True
    return context


def transport_socket(name: str, config: message.Message) -> base_pb2.TransportSocket:
    """A transport socket with its typed config."""
    socket = base_pb2.TransportSocket(name=name)
    socket.typed_config.Pack(config)
    return socket


def raw_buffer_socket() -> base_pb2.TransportSocket:
    """The plaintext transport socket."""
    return transport_socket(RAW_BUFFER_SOCKET, raw_buffer_pb2.RawBuffer())


def inbound_chains(
    mode: MtlsMode, filters: Sequence[listener_components_pb2.Filter]
) -> tuple[list[listener_components_pb2.ListenerFilter], list[listener_components_pb2.FilterChain]]:
    """Listener filters and filter chains for an inbound port in ``mode`` (invariant 3)."""
    chain = listener_components_pb2.FilterChain
    if mode is MtlsMode.DISABLE:
        return [], [chain(filters=filters)]
    tls = transport_socket(TLS_SOCKET, downstream_tls_context())
    if mode is MtlsMode.STRICT:
        return [], [chain(filters=filters, transport_socket=tls)]
    inspector = listener_components_pb2.ListenerFilter(name=TLS_INSPECTOR)
    inspector.typed_config.Pack(tls_inspector_pb2.TlsInspector())
    match = listener_components_pb2.FilterChainMatch
    return [inspector], [
        chain(
            filter_chain_match=match(transport_protocol="tls"),
            filters=filters,
            transport_socket=tls,
        ),
        chain(filter_chain_match=match(transport_protocol="raw_buffer"), filters=filters),
    ]
