"""Protobuf at the edge: discovery requests in, encoded responses out.

A stream converts each request as it reads it (``Requests``), so the protobuf is freed at
once and the names are shared before the request waits in the stream's queue. A
state-of-the-world ACK repeats every name the proxy watches: a thousand endpoint names
made each stream hold its own tuple of fresh strings (and, in the core, a frozenset over
them), 130 KB per stream, 260 MB at 2,000 proxies. The names now come back as the tuple
the stream held before when they are equal, as most requests repeat them, and otherwise
as the process's shared tuple (``protocol.names``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format

from xds_server import wire
from xds_server.protocol.events import DeltaRequest, Send, SotwRequest
from xds_server.protocol.names import SHARED
from xds_server.transport.repeats import encoding, read_repeat
from xds_server.types import KNOWN_TYPES


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """The proxy's ``Node``: its ID and metadata as plain Python values."""

    id: str
    metadata: dict[str, Any]


def node_info(node: Any) -> NodeInfo:
    """A ``config.core.v3.Node`` as plain values."""
    metadata = json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}
    return NodeInfo(id=str(node.id), metadata=metadata)


def _error(req: Any) -> str | None:
    return str(req.error_detail.message) if req.HasField("error_detail") else None


def delta_request(req: discovery_pb2.DeltaDiscoveryRequest, default_type: str) -> DeltaRequest:
    """The protocol core's view of a ``DeltaDiscoveryRequest``."""
    return DeltaRequest(
        type_url=req.type_url or default_type,
        response_nonce=req.response_nonce,
        subscribe=tuple(req.resource_names_subscribe),
        unsubscribe=tuple(req.resource_names_unsubscribe),
        initial_resource_versions=dict(req.initial_resource_versions),
        error_detail=_error(req),
    )


class Requests:
    """One stream's requests, converted for its protocol core.

    State-of-the-world requests arrive as bytes (``server`` registers no deserializer
    for them): one that repeats the names this stream held is read from its bytes
    (``repeats``); any other is decoded whole. Delta requests arrive decoded.
    """

    def __init__(self, delta: bool, default_type: str) -> None:
        self.delta = delta
        self.default_type = default_type
        self._names: dict[str, tuple[str, ...]] = {}
        """The names of the last state-of-the-world request, per known type (a proxy that
        sends made-up types cannot grow it)."""
        self._encodings: dict[str, bytes] = {}
        """Their encoding, for the types whose lists are long enough to share."""

    def __call__(self, req: Any) -> SotwRequest | DeltaRequest:
        """The core's view of ``req``; equal name lists as one shared tuple.

        Raises ``DecodeError`` for bytes that are not a ``DiscoveryRequest``.
        """
        if self.delta:
            return delta_request(req, self.default_type)
        if isinstance(req, bytes):
            for type_url, names_encoding in self._encodings.items():
                fields = read_repeat(req, names_encoding)
                if fields is not None and (fields[1] or self.default_type) == type_url:
                    names = self._names[type_url]
                    return SotwRequest(type_url, fields[0], fields[2], names, None)
            req = discovery_pb2.DiscoveryRequest.FromString(req)
        type_url = req.type_url or self.default_type
        names = tuple(req.resource_names)
        if type_url in KNOWN_TYPES:  # others are refused by the core: nothing to remember
            names = self._hold(type_url, names)
        return SotwRequest(type_url, req.version_info, req.response_nonce, names, _error(req))

    def _hold(self, type_url: str, names: tuple[str, ...]) -> tuple[str, ...]:
        """The tuple held for ``type_url``'s names: the last one if equal, else the shared
        one, whose encoding is kept when the list is long enough to share."""
        held = self._names.get(type_url)
        if held is None or names != held:
            held = self._names[type_url] = SHARED.intern(names)
            if len(held) >= SHARED.min_length:
                self._encodings[type_url] = encoding(held)
            else:
                self._encodings.pop(type_url, None)
        return held

    @staticmethod
    def decoded(req: Any) -> Any:
        """``req`` as a decoded ``DiscoveryRequest`` (raises ``DecodeError``); the stream
        reads its first request this way, for the node, then converts that message."""
        if isinstance(req, bytes):
            return discovery_pb2.DiscoveryRequest.FromString(req)
        return req


def encode(send: Send, control_plane: bytes) -> bytes:
    """The wire bytes of a response, from the shared serialized resources."""
    if send.delta:
        return wire.delta_response(
            system_version=send.version,
            type_url=send.type_url,
            nonce=send.nonce,
            entries=((r.delta_header, r.any_bytes) for r in send.resources),
            removed=send.removed,
            control_plane_bytes=control_plane,
        )
    return wire.sotw_response(
        version=send.version,
        type_url=send.type_url,
        nonce=send.nonce,
        entries=((r.sotw_header, r.any_bytes) for r in send.resources),
        control_plane_bytes=control_plane,
        encoded=[part.sotw_bytes() for part in send.whole],
    )
