"""The grpc.aio server: ADS and the per-type discovery services, SotW and delta.

Responses are pre-encoded bytes (``convert.encode``), so every method is
registered with an identity response serializer instead of the generated
servicer stubs, which would re-serialize a protobuf per proxy.

Streams are bounded: at most ``max_streams`` at once across the server
(more are refused with RESOURCE_EXHAUSTED, saying so) and at most
``MAX_STREAMS_PER_CONNECTION`` on one HTTP/2 connection; a stream whose
proxy leaves a response unanswered for ``stall_after`` seconds is closed
(``watchdog``). Connections live at most ``max_connection_age`` (istiod's
``MaxServerConnectionAge``, 30 min) plus a 10 s grace for the streams on them, as
istiod's keepalive policy: Envoy reconnects, which spreads proxies over replicas.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from envoy.service.discovery.v3 import discovery_pb2

from xds_server import types, wire
from xds_server.cache import SnapshotCache
from xds_server.transport.admission import AdmissionLimiter
from xds_server.transport.push_limit import PushLimiter
from xds_server.transport.responses import SharedResponses
from xds_server.transport.stream import Authenticator, NodeRegistry, StreamConfig, XdsStream
from xds_server.transport.sync_status import ads_client

log = structlog.get_logger("xds")

_SERVICES: dict[str, tuple[str, str, str]] = {
    # service name: (type URL, SotW method, delta method)
    "envoy.service.cluster.v3.ClusterDiscoveryService": (
        types.CLUSTER,
        "StreamClusters",
        "DeltaClusters",
    ),
    "envoy.service.endpoint.v3.EndpointDiscoveryService": (
        types.ENDPOINT,
        "StreamEndpoints",
        "DeltaEndpoints",
    ),
    "envoy.service.listener.v3.ListenerDiscoveryService": (
        types.LISTENER,
        "StreamListeners",
        "DeltaListeners",
    ),
    "envoy.service.route.v3.RouteDiscoveryService": (types.ROUTE, "StreamRoutes", "DeltaRoutes"),
    "envoy.service.secret.v3.SecretDiscoveryService": (
        types.SECRET,
        "StreamSecrets",
        "DeltaSecrets",
    ),
}
ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"


def _identity(data: bytes) -> bytes:
    return data


@dataclass(frozen=True, slots=True)
class TlsListener:
    """A TLS port (istiod's 15012): server-authenticated TLS; proxies then present a token."""

    address: str
    cert_chain_pem: bytes
    key_pem: bytes


MAX_STREAMS_PER_CONNECTION = 100
"""HTTP/2 streams one connection may hold open at once (the server's SETTINGS)."""


MAX_CONNECTION_AGE = 30 * 60.0
"""Seconds a connection lives before the server asks the client to reconnect (istiod's
``--keepaliveMaxServerConnectionAge`` default; gRPC adds its own jitter of +-10 %)."""
MAX_CONNECTION_AGE_GRACE = 10.0
"""Seconds the streams of an aged connection get before it is closed (istiod's default)."""


class XdsServer:
    """Owns the grpc.aio server and hands each stream to an ``XdsStream``."""

    def __init__(
        self,
        cache: SnapshotCache,
        registry: NodeRegistry,
        identifier: str,
        authenticate: Authenticator | None = None,
        extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
        push_limit: int = 100,
        connection_rate: float = 1000.0,
        max_streams: int = 10_000,
        stall_after: float = 60.0,
        max_connection_age: float = MAX_CONNECTION_AGE,
        numbering: tuple[int, int] = (1, 1),
    ) -> None:
        """``numbering`` is (first, step) of the stream numbers in connection IDs: a worker
        of ``serve --workers N`` numbers from its index with step N, so IDs stay unique
        across workers."""
        self.limiter = PushLimiter(push_limit)
        self.max_connection_age = max_connection_age
        self.stall_after = stall_after
        self.max_streams = max_streams
        self.live: set[XdsStream] = set()
        """Streams open now, across every service (bounded by ``max_streams``)."""
        self.numbers = itertools.count(*numbering)
        """Stream numbers, for connection IDs (``/debug/adsz``)."""
        self.admission = AdmissionLimiter(connection_rate, burst=connection_rate)
        self.cache = cache
        self.authenticate = authenticate
        self.extra_handlers = tuple(extra_handlers)
        self.registry = registry
        self.control_plane = wire.control_plane(identifier)
        self.responses = {
            False: SharedResponses(self.control_plane),
            True: SharedResponses(self.control_plane),
        }
        """SotW (False) and delta (True) responses, each content encoded once for every
        stream (``responses``)."""
        self.server: grpc.aio.Server | None = None

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """Generic handlers for ADS and every per-type service."""
        out = [
            self._service(
                ADS_SERVICE,
                types.KNOWN_TYPES,
                "",
                "StreamAggregatedResources",
                "DeltaAggregatedResources",
            )
        ]
        for service, (type_url, sotw, delta) in _SERVICES.items():
            out.append(self._service(service, frozenset({type_url}), type_url, sotw, delta))
        return out

    def _service(
        self, name: str, allowed: frozenset[str], default_type: str, sotw: str, delta: str
    ) -> grpc.GenericRpcHandler:
        def method(config: StreamConfig, request_type: Any) -> grpc.RpcMethodHandler:
            async def handle(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
            ) -> None:
                if len(self.live) >= self.max_streams:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"too many xDS streams: {len(self.live)} open, at most "
                        f"{self.max_streams}; retry later",
                    )
                stream = XdsStream(
                    config,
                    self.cache,
                    self.registry,
                    self.control_plane,
                    self.authenticate,
                    self.limiter,
                    self.admission,
                    self.stall_after,
                    next(self.numbers),
                    self.responses[config.delta],
                )
                self.live.add(stream)
                try:
                    await stream.run(requests, context)
                finally:
                    self.live.discard(stream)

            return grpc.stream_stream_rpc_method_handler(
                handle,
                # State-of-the-world requests stay bytes: most repeat their stream's names
                # and are read without decoding them (``transport.repeats``).
                request_deserializer=request_type.FromString if config.delta else None,
                response_serializer=_identity,
            )

        return grpc.method_handlers_generic_handler(
            name,
            {
                sotw: method(
                    StreamConfig(False, allowed, default_type), discovery_pb2.DiscoveryRequest
                ),
                delta: method(
                    StreamConfig(True, allowed, default_type), discovery_pb2.DeltaDiscoveryRequest
                ),
            },
        )

    async def start(
        self, address: str, tls: TlsListener | None = None, share_ports: bool = False
    ) -> tuple[int, int]:
        """Listen on ``address`` (plain text) and, if given, ``tls``.

        Port 0 picks a free port. Returns the bound ports (0 for no TLS). ``share_ports``
        sets SO_REUSEPORT, for the workers of one ``serve --workers N`` only (their
        supervisor holds the ports and refuses a second pyistiod, ``pyistiod.port_lock``).
        """
        server = self.server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.max_connection_age_ms", int(self.max_connection_age * 1000)),
                ("grpc.max_connection_age_grace_ms", int(MAX_CONNECTION_AGE_GRACE * 1000)),
                # A connect storm queues thousands of new streams while the loop is busy;
                # grpc core refuses calls beyond 1,000 unaccepted ones by default
                # ("Too many pending requests"). Envoy would retry, but only after backoff.
                ("grpc.server.max_pending_requests", 20_000),
                ("grpc.server.max_pending_requests_hard_limit", 30_000),
                ("grpc.server_max_unrequested_time_in_server", 120),
                # grpc shares a port with another process by default (SO_REUSEPORT): a second
                # pyistiod would split the proxies between two control planes without a word.
                ("grpc.so_reuseport", int(share_ports)),
                # A proxy needs at most a handful of streams (ADS, or five per-type services,
                # SDS and the CA) on one connection; more is a client gone wrong.
                ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            ]
        )
        server.add_generic_rpc_handlers((*self.handlers(), *self.extra_handlers))
        plain = _bound(server.add_insecure_port, address)
        secure = 0
        if tls is not None:
            creds = grpc.ssl_server_credentials([(tls.key_pem, tls.cert_chain_pem)])
            secure = _bound(server.add_secure_port, tls.address, creds)
        await server.start()
        return plain, secure

    @property
    def streams(self) -> int:
        """How many streams are open now."""
        return len(self.live)

    def sync_status(self) -> list[dict[str, object]]:
        """Each connected proxy's stream: what was sent per type, what it ACKed or NACKed
        (istiod's ``/debug/syncz``). Call it on the event loop."""
        found = [s.status.as_dict() for s in self.live if s.status is not None]
        return sorted(found, key=lambda d: (str(d["proxy"]), str(d["connected_at"])))

    def ads_clients(self, proxy_id: str = "") -> dict[str, object]:
        """Each connected stream: who (connection, proxy, peer, TLS, identity), since when,
        and what it watches (istiod's ``/debug/adsz``); only ``proxy_id``'s if given.
        Call it on the event loop."""
        clients = [
            ads_client(s.status, s.subscriptions())
            for s in self.live
            if s.status is not None and (not proxy_id or s.status.node_id == proxy_id)
        ]
        clients.sort(key=lambda c: (str(c["proxy"]), str(c["connectionId"])))
        return {"totalClients": len(clients), "clients": clients}

    async def stop(self, grace: float = 1.0) -> None:
        """Stop serving: every open stream ends with UNAVAILABLE (the proxy reconnects);
        one stuck in a write is cancelled after ``grace`` seconds."""
        if self.server is not None:
            if self.live:
                log.info("xds.stopping", streams=len(self.live))
            for stream in self.live:
                stream.stop()
            await self.server.stop(grace)


def _bound(add_port: Callable[..., int], address: str, *credentials: Any) -> int:
    """The port ``add_port(address, *credentials)`` bound; ``OSError`` naming ``address`` if
    it bound none (grpc returns 0 or raises ``RuntimeError``, by version)."""
    try:
        port = add_port(address, *credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot listen on {address} (in use, or not an address here)")
    return port
