"""Protobuf at the edge: discovery requests in, encoded responses out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format

from xds_server import wire
from xds_server.protocol.events import DeltaRequest, Send, SotwRequest


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


def sotw_request(req: discovery_pb2.DiscoveryRequest, default_type: str) -> SotwRequest:
    """The protocol core's view of a ``DiscoveryRequest``."""
    return SotwRequest(
        type_url=req.type_url or default_type,
        version_info=req.version_info,
        response_nonce=req.response_nonce,
        resource_names=tuple(req.resource_names),
        error_detail=_error(req),
    )


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
