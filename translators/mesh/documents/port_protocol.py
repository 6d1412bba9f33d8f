"""Port protocol selection, as Istio does it (``pkg/config/protocol`` and
``kube.ConvertProtocol``).

Invariants:

1. Kubernetes Service ports: ``appProtocol`` wins, else the port name's prefix
   before the first ``-`` (``http-web`` is HTTP), compared case-insensitively.
   A name or appProtocol Istio does not know never fails: Istio would sniff the
   protocol on the wire; pyistiod has no sniffing, so such a port is TCP (it
   still carries any traffic, just without HTTP routing).
2. ServiceEntry ports: an explicit ``protocol`` must be one Istio knows, else
   the object is refused; an empty one falls back to the name, as above.
3. Protocols our model has no value for map to the nearest one Envoy handles
   the same way: ``grpc-web`` is HTTP/2-capable HTTP (Istio's ``IsHTTP2``
   includes it), ``mongo``/``redis``/``mysql`` are TCP proxying without their
   Istio-specific filters.
"""

from __future__ import annotations

from translators.mesh.model.services import Protocol

_BY_NAME: dict[str, Protocol] = {
    "http": Protocol.HTTP,
    "http2": Protocol.HTTP2,
    "grpc": Protocol.GRPC,
    "grpc-web": Protocol.HTTP2,
    "tcp": Protocol.TCP,
    "tls": Protocol.TLS,
    "https": Protocol.HTTPS,
    "mongo": Protocol.TCP,
    "redis": Protocol.TCP,
    "mysql": Protocol.TCP,
}
"""Istio's known protocol names (``protocol.Parse``), lower-cased, to our model."""

_KUBERNETES_APP_PROTOCOLS: dict[str, Protocol] = {
    "kubernetes.io/h2c": Protocol.HTTP2,
    "kubernetes.io/ws": Protocol.HTTP,
    "kubernetes.io/wss": Protocol.HTTPS,
}
"""The standard ``appProtocol`` values Kubernetes defines (KEP-3726)."""

KNOWN_PROTOCOLS = tuple(name.upper() for name in _BY_NAME)
"""ServiceEntry ``protocol`` values accepted, as Istio spells them."""


def parse_protocol(name: str) -> Protocol | None:
    """The protocol a name means exactly (``HTTP``, ``grpc-web``...), or ``None``."""
    return _BY_NAME.get(name.lower())


def protocol_from_port_name(name: str) -> Protocol:
    """Protocol from a port name's prefix: ``http-web`` -> HTTP; unknown -> TCP.

    ``grpc-web`` is checked before splitting at ``-`` since it holds one, as
    Istio's ``ConvertProtocol`` does.
    """
    lowered = name.lower()
    if lowered.startswith("grpc-web"):
        return Protocol.HTTP2
    return _BY_NAME.get(lowered.split("-", 1)[0], Protocol.TCP)


def kubernetes_port_protocol(name: str, app_protocol: str | None) -> Protocol:
    """A Kubernetes Service port's protocol: ``appProtocol`` first, else the name."""
    if app_protocol:
        standard = _KUBERNETES_APP_PROTOCOLS.get(app_protocol)
        if standard is not None:
            return standard
        return protocol_from_port_name(app_protocol)
    return protocol_from_port_name(name)
