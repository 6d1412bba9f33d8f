"""A proxy without certificates: its config minus everything that needs an SDS secret.

A proxy whose xDS stream is not authenticated (the plain-text port, istiod's 15010) is never
sent secrets. Envoy waits for a secret a cluster or listener names (its initial fetch timeout,
15 s) before warming it, and a TLS context without its certificate cannot handshake, so such
a proxy is served config that names none. Invariants:

1. A cluster's transport socket whose TLS context names an SDS secret becomes plain text; its
   ``transport_socket_matches`` that do lose those matches (auto mTLS then dials every endpoint
   in plain text through the remaining plain-text match). A TLS origination from files
   (DestinationRule ``SIMPLE``/``MUTUAL`` with paths) names no secret and stays; one from a
   ``credentialName`` Secret names its SDS resources, so it becomes plain text too.
2. A listener's filter chains whose transport socket names an SDS secret are dropped (and so
   is such a default chain). A listener left without any chain is dropped whole: a port that
   accepts only mTLS (PeerAuthentication ``STRICT``) or a gateway's ``credentialName``
   server refuses connections; it is never opened in plain text instead.
3. Other types name no secrets and pass unchanged; the functions are pure and say, by
   returning ``body`` itself, that nothing needed to change.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from translators.envoy.tls.mtls import raw_buffer_socket

_TLS_CONTEXTS = (tls_pb2.UpstreamTlsContext, tls_pb2.DownstreamTlsContext)
_MARKERS = tuple(c.DESCRIPTOR.full_name.encode() for c in _TLS_CONTEXTS)
"""A resource whose bytes hold neither name has no TLS context, hence no secret: it is passed
on without being parsed."""


def names_secret(socket: base_pb2.TransportSocket) -> bool:
    """Whether ``socket`` is TLS with a certificate or validation context fetched over SDS."""
    for context_type in _TLS_CONTEXTS:
        if socket.typed_config.Is(context_type.DESCRIPTOR):
            context = context_type()
            socket.typed_config.Unpack(context)
            common = context.common_tls_context
            return bool(
                common.tls_certificate_sds_secret_configs
                or common.HasField("validation_context_sds_secret_config")
                or common.combined_validation_context.HasField(
                    "validation_context_sds_secret_config"
                )
            )
    return False


def secretless_cluster(body: bytes) -> bytes:
    """A serialized Cluster with plain text wherever it needed a secret (invariant 1)."""
    if not any(marker in body for marker in _MARKERS):
        return body
    cluster = cluster_pb2.Cluster.FromString(body)
    changed = False
    if cluster.HasField("transport_socket") and names_secret(cluster.transport_socket):
        cluster.transport_socket.CopyFrom(raw_buffer_socket())
        changed = True
    kept = [m for m in cluster.transport_socket_matches if not names_secret(m.transport_socket)]
    if len(kept) != len(cluster.transport_socket_matches):
        del cluster.transport_socket_matches[:]
        cluster.transport_socket_matches.extend(kept)
        changed = True
    return cluster.SerializeToString(deterministic=True) if changed else body


def secretless_listener(body: bytes) -> bytes | None:
    """A serialized Listener without the chains that need a secret; None if none is left
    (invariant 2)."""
    if not any(marker in body for marker in _MARKERS):
        return body
    listener = listener_pb2.Listener.FromString(body)
    kept = [c for c in listener.filter_chains if not names_secret(c.transport_socket)]
    changed = len(kept) != len(listener.filter_chains)
    if changed:
        del listener.filter_chains[:]
        listener.filter_chains.extend(kept)
    default = listener.default_filter_chain
    if listener.HasField("default_filter_chain") and names_secret(default.transport_socket):
        listener.ClearField("default_filter_chain")
        changed = True
    if not listener.filter_chains and not listener.HasField("default_filter_chain"):
        return None
    return listener.SerializeToString(deterministic=True) if changed else body
