"""An in-process xDS server on loopback and a raw ADS client, for integration tests.

``expect_response`` / ``expect_no_response`` follow Istio's ``adstest.go``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

from pyistiod.registry import ProxyRegistry
from translators.mesh.model.mesh import MeshModel
from xds_server.cache import SnapshotCache
from xds_server.transport.server import XdsServer

FRONTEND = "sidecar~127.0.0.11~frontend-0.default~default.svc.cluster.local"


def node(node_id: str = FRONTEND, **metadata: Any) -> base_pb2.Node:
    md = struct_pb2.Struct()
    md.update(metadata)
    return base_pb2.Node(id=node_id, metadata=md)


def secure_channel(port: int, root_pem: bytes, bearer: str | None = None) -> grpc.aio.Channel:
    """A TLS channel to istiod's secure xDS port that trusts only ``root_pem``, as a proxy
    dials it (the name ``istiod.istio-system.svc``), with the ``bearer`` token if given."""
    creds = grpc.ssl_channel_credentials(root_certificates=root_pem)
    if bearer is not None:
        creds = grpc.composite_channel_credentials(
            creds, grpc.access_token_call_credentials(bearer)
        )
    return grpc.aio.secure_channel(
        f"127.0.0.1:{port}",
        creds,
        options=[("grpc.ssl_target_name_override", "istiod.istio-system.svc")],
    )


@dataclass
class Running:
    """A started server with its cache and registry."""

    server: XdsServer
    cache: SnapshotCache
    registry: ProxyRegistry
    port: int

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")


async def start(model: MeshModel) -> Running:
    cache = SnapshotCache()
    registry = ProxyRegistry(cache, model)
    server = XdsServer(cache, registry, "pyistiod-test")
    port, _ = await server.start("127.0.0.1:0")
    return Running(server, cache, registry, port)


@dataclass
class Stream:
    """One bidirectional stream: a request queue, and a reader task filling ``incoming``.

    Reads happen in one task because cancelling a pending aio ``read()`` (as a
    timeout would) cancels the whole call.
    """

    call: Any
    outgoing: asyncio.Queue[Any]
    incoming: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.call:
                await self.incoming.put(msg)
        except grpc.aio.AioRpcError as err:
            await self.incoming.put(err)

    async def send(self, msg: Any) -> None:
        await self.outgoing.put(msg)

    async def expect_response(self, timeout: float = 5.0) -> Any:
        msg = await asyncio.wait_for(self.incoming.get(), timeout)
        if isinstance(msg, grpc.aio.AioRpcError):
            raise msg
        return msg

    async def expect_no_response(self, wait: float = 0.3) -> None:
        try:
            msg = await asyncio.wait_for(self.incoming.get(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected response: {msg}")

    async def close(self) -> None:
        await self.outgoing.put(None)
        self.call.cancel()
        if self.reader is not None:
            self.reader.cancel()


def open_stream(
    channel: grpc.aio.Channel,
    method: str,
    delta: bool = False,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Stream:
    """Open ``/service/Method`` with discovery request/response (de)serializers."""
    req_type = discovery_pb2.DeltaDiscoveryRequest if delta else discovery_pb2.DiscoveryRequest
    resp_type = discovery_pb2.DeltaDiscoveryResponse if delta else discovery_pb2.DiscoveryResponse
    multi = channel.stream_stream(
        method,
        request_serializer=req_type.SerializeToString,
        response_deserializer=resp_type.FromString,
    )
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def requests() -> AsyncIterator[Any]:
        while (msg := await queue.get()) is not None:
            yield msg

    return Stream(multi(requests(), metadata=metadata or None), queue)


ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
DELTA_ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
CDS = "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters"


async def expect_closed(
    channel: grpc.aio.Channel,
    request: discovery_pb2.DiscoveryRequest,
    code: grpc.StatusCode,
    timeout: float = 5.0,
) -> str:
    """Send ``request`` on a new ADS stream; assert the server ends it with ``code``; its
    details."""
    stream = open_stream(channel, ADS)
    await stream.send(request)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stream.expect_response(timeout)
    assert err.value.code() == code
    return err.value.details() or ""


def uri_san(chain_pem: bytes) -> str:
    """The URI SAN (the SPIFFE ID) of the first certificate of ``chain_pem``."""
    cert = x509.load_pem_x509_certificates(chain_pem)[0]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return str(sans.get_values_for_type(x509.UniformResourceIdentifier)[0])
