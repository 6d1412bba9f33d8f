"""One xDS stream on grpc.aio: moves messages between the proxy and a protocol core.

The core decides everything; this shell only reads, writes, watches the cache,
and logs and counts what the core reports. aio allows one ``read`` and one
``write`` at a time, so a reader task feeds requests into a queue and this
coroutine is the only writer. Memory per stream is bounded whatever the proxy
does: at most ``MAX_QUEUED_REQUESTS`` requests are read ahead; a snapshot
change enqueues a single wake-up token however often it fires; and the core
holds one response per type in flight, so a proxy that reads slowly is sent
the newest state, never a backlog, and a stuck one blocks only its own
writer, until ``PushLimiter`` gives up on it and the stream is closed.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

import grpc
import structlog
from google.protobuf.message import DecodeError
from prometheus_client import Counter, Histogram

from xds_server import metrics
from xds_server.cache import SnapshotCache
from xds_server.errors import PyistiodError
from xds_server.protocol.delta import DeltaStream
from xds_server.protocol.events import (
    Acked,
    Action,
    Close,
    DeltaRequest,
    Ignored,
    IgnoreReason,
    Nacked,
    Send,
    SotwRequest,
)
from xds_server.protocol.sotw import SotwStream
from xds_server.protocol.subscription import Subscription
from xds_server.transport.admission import AdmissionLimiter
from xds_server.transport.convert import NodeInfo, Requests, node_info
from xds_server.transport.log_limit import LogLimiter, clip
from xds_server.transport.push_limit import PushLimiter
from xds_server.transport.responses import SharedResponses
from xds_server.transport.sync_status import SyncStatus
from xds_server.transport.watchdog import Watchdog
from xds_server.types import SECRET, short_name

log = structlog.get_logger("xds")

MAX_NODE_ID = 1024
"""Characters a node ID may have: Istio's ``TYPE~IP~POD.NS~NS.svc.DOMAIN`` needs under 400
(a pod name has at most 253); a longer one is refused before it is registered or logged."""

MAX_QUEUED_REQUESTS = 16
"""Requests read ahead of processing; beyond this the proxy is not read (HTTP/2 flow control)."""


@dataclass(frozen=True, slots=True)
class _Invalid:
    """A request that could not be decoded: the stream ends with INVALID_ARGUMENT."""

    reason: str


_WAKE = object()
_END = object()
_STALLED = object()
_STOPPING = object()
STOPPING_REASON = "the control plane is stopping; reconnect"


class NodeRegistry(Protocol):
    """What the transport needs of the control plane: a snapshot per connected node."""

    async def connect(self, node: NodeInfo, identity: Any = None) -> None:
        """Make sure the cache holds a snapshot for ``node``.

        ``identity`` is what ``Authenticator`` returned for the stream. Raise
        ValueError for an invalid node, PermissionError for a node that claims
        another identity.
        """

    def disconnect(self, node_id: str) -> None:
        """One stream of ``node_id`` ended."""


Authenticator = Callable[[grpc.aio.ServicerContext], Awaitable[Any]]
"""Who the peer of a stream proved to be (None: nobody). Raises a ``PyistiodError``
(UNAUTHENTICATED) for a credential that is presented but invalid. Awaited: checking a
credential may ask another server (a Kubernetes TokenReview)."""

SECRETS_NEED_AUTHENTICATION = (
    "secrets are served only over TLS (port 15012) to a proxy that authenticated "
    "with its workload token"
)


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How a stream behaves: protocol variant and the types it may serve."""

    delta: bool
    allowed: frozenset[str]
    default_type: str = ""


class XdsStream:
    """Runs one stream until the proxy hangs up."""

    def __init__(
        self,
        config: StreamConfig,
        cache: SnapshotCache,
        registry: NodeRegistry,
        cp: bytes,
        authenticate: Authenticator | None = None,
        limiter: PushLimiter | None = None,
        admission: AdmissionLimiter | None = None,
        stall_after: float = 60.0,
        number: int = 0,
        responses: SharedResponses | None = None,
    ) -> None:
        self.number = number
        """This stream's number on its server (istiod's connection counter)."""
        self.identity: Any = None
        """What ``authenticate`` returned for the stream (None: nobody)."""
        self.admission = admission
        self.config = config
        self.authenticate = authenticate
        self.limiter = limiter or PushLimiter()
        self.cache = cache
        self.registry = registry
        self.responses = responses if responses is not None else SharedResponses(cp)
        """Nonces by content and each content's bytes, shared by the server's streams of
        this kind (SotW or delta); a stream of its own by default."""
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        """Requests, converted as read (``convert.Requests``), and wake-up tokens."""
        self.convert = Requests(config.delta, config.default_type)
        self.first_node: Any = None
        """The first request's ``Node``, kept by the reader until ``run`` reads it."""
        self.request_slots = asyncio.Semaphore(MAX_QUEUED_REQUESTS)
        self.wake_pending = False
        self.woken_at = 0.0
        self.converging_since: float | None = None
        self.log_limit = LogLimiter()
        self.sent_any = False
        self.status: SyncStatus | None = None
        """What was sent and said, per type; set once the node is known (``/debug/syncz``)."""
        self.watchdog = Watchdog(stall_after, self._stalled)
        self.writing = False
        """Whether a response write is in progress (the peer may have stopped taking bytes)."""
        self.task: asyncio.Task[None] | None = None
        self.core: SotwStream | DeltaStream = self._core(authenticated=False)

    def _core(self, *, authenticated: bool) -> SotwStream | DeltaStream:
        denied = {} if authenticated else {SECRET: SECRETS_NEED_AUTHENTICATION}
        nonces = self.responses.nonce
        if self.config.delta:
            return DeltaStream(allowed=self.config.allowed, denied=denied, nonces=nonces)
        return SotwStream(allowed=self.config.allowed, denied=denied, nonces=nonces)

    async def run(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        """Serve the stream: identify the node, then answer requests and snapshot changes."""
        reader = asyncio.create_task(self._read(requests))
        self.task = asyncio.current_task()
        try:
            first = await self._next()
            if first is _END or first is _STOPPING:
                return
            if isinstance(first, _Invalid):
                log.warning("xds.request_rejected", reason=first.reason)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, first.reason)
            node, self.first_node = node_info(self.first_node), None
            if len(node.id) > MAX_NODE_ID:
                log.warning("xds.node_rejected", node=clip(node.id, 80), length=len(node.id))
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"invalid node: the node ID has {len(node.id)} characters; "
                    f"at most {MAX_NODE_ID} are allowed",
                )
            if self.admission is not None:
                await self.admission.admit()
            await self._admit(node, context)
            await self._serve(node, first, context)
        except asyncio.CancelledError:
            if not self.watchdog.fired:
                raise
            # A write the peer stopped draining (invariant of ``_stalled``): the stream is
            # given up; its status would wait behind the bytes gRPC still holds.
            log.warning(
                "xds.closed",
                node=self.status.node_id if self.status is not None else "",
                code="UNAVAILABLE",
                reason=f"the proxy took no response bytes for {self.watchdog.after:g} s",
            )
            raise  # gRPC then sends nothing more on the stream (a status would fail behind it)
        finally:
            reader.cancel()

    async def _admit(self, node: NodeInfo, context: grpc.aio.ServicerContext) -> None:
        """Authenticate the stream and register the node, or abort with the reason."""
        try:
            identity = await self.authenticate(context) if self.authenticate else None
            self.identity = identity
            self.core = self._core(authenticated=identity is not None)
            await self.registry.connect(node, identity)
        except ValueError as err:
            log.warning("xds.node_rejected", node=node.id, reason=str(err))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid node: {err}")
        except PermissionError as err:
            await _deny(context, node, grpc.StatusCode.PERMISSION_DENIED, str(err))
        except PyistiodError as err:
            await _deny(context, node, grpc.StatusCode[err.grpc_status.value], str(err))

    async def _serve(self, node: NodeInfo, first: Any, context: grpc.aio.ServicerContext) -> None:
        self.status = SyncStatus(
            node.id,
            self.config.delta,
            connection_id=f"{node.id}-{self.number}",
            peer=_peer_address(context),
            tls=_over_tls(context),
            identity="" if self.identity is None else str(self.identity),
        )
        cancel_watch = self.cache.watch(node.id, self._wake)
        metrics.XDS_CONNECTIONS.inc()
        log.info("xds.connected", node=node.id, delta=self.config.delta)
        try:
            snapshot = self.cache.snapshot(node.id)
            assert snapshot is not None  # connect() published it
            await self._carry_out(node, self.core.on_snapshot(snapshot), context)
            item: object = first
            while item is not _END:
                if item is _STALLED:
                    reason = f"the proxy answered no response for {self.watchdog.after:g} s"
                    await _deny(context, node, grpc.StatusCode.UNAVAILABLE, reason)
                if item is _STOPPING:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, STOPPING_REASON)
                if isinstance(item, _Invalid):
                    await _deny(context, node, grpc.StatusCode.INVALID_ARGUMENT, item.reason)
                await self._carry_out(node, self._step(node, item), context)
                if self.converging_since is not None:
                    metrics.PROXY_CONVERGENCE.observe(time.monotonic() - self.converging_since)
                    self.converging_since = None
                item = await self._next()
        finally:
            self.watchdog.stop()
            cancel_watch()
            metrics.XDS_CONNECTIONS.dec()
            self.registry.disconnect(node.id)
            log.info("xds.disconnected", node=node.id)

    def _step(self, node: NodeInfo, item: object) -> list[Action]:
        if item is _WAKE:
            self.wake_pending = False
            metrics.PROXY_QUEUE_TIME.observe(time.monotonic() - self.woken_at)
            snapshot = self.cache.snapshot(node.id)
            actions = self.core.on_snapshot(snapshot) if snapshot is not None else []
            if actions:
                self.converging_since = self.cache.changed_at(node.id)
            return actions
        if isinstance(self.core, DeltaStream):
            assert isinstance(item, DeltaRequest)
            return self.core.on_request(item)
        assert isinstance(item, SotwRequest)
        return self.core.on_request(item)

    async def _carry_out(
        self, node: NodeInfo, actions: list[Action], context: grpc.aio.ServicerContext
    ) -> None:
        for action in actions:
            if isinstance(action, Send):
                started = time.monotonic()
                first, self.sent_any = not self.sent_any, True
                self.watchdog.sent()  # before the write, which blocks while the peer reads nothing
                self.writing = True
                size = await self.limiter.write(
                    action, self.responses.encode, context.write, first=first
                )
                self.writing = False
                if self.status is not None:
                    self.status.sent(action.type_url, action.version, action.nonce)
                pushes, sizes, push_time = _push_metrics(action.type_url)
                pushes.inc()
                sizes.observe(size)
                push_time.observe(time.monotonic() - started)
                log.debug(
                    "xds.sent",
                    node=node.id,
                    type=short_name(action.type_url),
                    version=action.version,
                    nonce=action.nonce,
                    resources=action.resource_count(),
                    removed=len(action.removed),
                )
            elif isinstance(action, Close):
                await _deny(context, node, grpc.StatusCode[action.code], action.reason)
            else:
                _record(node, action, self.log_limit)
                if self.status is not None and isinstance(action, Acked):
                    self.status.acked(action.type_url, action.version)
                elif self.status is not None and isinstance(action, Nacked):
                    self.status.nacked(action.type_url, action.version, action.detail)

    def subscriptions(self) -> dict[str, Subscription]:
        """What the proxy watches now, per type URL (``/debug/adsz``; on the event loop)."""
        return {
            type_url: state.subscription
            for type_url, state in self.core.types.items()
            if state.subscription is not None
        }

    async def _next(self) -> object:
        item = await self.inbox.get()
        if (
            item is not _WAKE
            and item is not _END
            and item is not _STALLED
            and item is not _STOPPING
        ):
            self.request_slots.release()
        return item

    def stop(self) -> None:
        """The server is stopping: end the stream with UNAVAILABLE between two steps, so the
        proxy reconnects at once (gRPC would otherwise cancel the handler after its grace)."""
        self.inbox.put_nowait(_STOPPING)

    def _stalled(self) -> None:
        """The proxy left a response unanswered for ``stall_after`` seconds: close the stream.

        If the serving task is between steps, it reads ``_STALLED`` and ends the stream with
        UNAVAILABLE. If it is inside a write the peer stopped draining (its HTTP/2 window is
        full: the transport lives, the reader does not), it would never get there: it is
        cancelled instead, so the node is forgotten and the stream does no more work. The one
        response gRPC holds for it stays until the peer's connection goes (gRPC Python
        cannot reset a single stream); the memory test bounds that cost.
        """
        if self.writing and self.task is not None:
            self.task.cancel()
        else:
            self.inbox.put_nowait(_STALLED)

    def _wake(self) -> None:
        if not self.wake_pending:
            self.wake_pending = True
            self.woken_at = time.monotonic()
            self.inbox.put_nowait(_WAKE)

    async def _read(self, requests: AsyncIterator[Any]) -> None:
        try:
            first = True
            async for req in requests:
                self.watchdog.heard()
                await self.request_slots.acquire()  # a flooding proxy waits, unread
                try:
                    if first:  # decoded whole, once, for its node
                        req = self.convert.decoded(req)
                        self.first_node, first = req.node, False
                    self.inbox.put_nowait(self.convert(req))
                except DecodeError as err:
                    self.inbox.put_nowait(_Invalid(f"invalid DiscoveryRequest: {err}"))
                    return
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            self.inbox.put_nowait(_END)


def _peer_address(context: grpc.aio.ServicerContext) -> str:
    """The peer as ``host:port`` (gRPC says ``ipv4:1.2.3.4:5`` or ``ipv6:%5B::1%5D:5``)."""
    peer = unquote(str(context.peer() or ""))
    scheme, _, address = peer.partition(":")
    return address if scheme in ("ipv4", "ipv6") else peer


def _over_tls(context: grpc.aio.ServicerContext) -> bool:
    """Whether the stream came over TLS (gRPC's auth context says ``ssl``)."""
    return b"ssl" in context.auth_context().get("transport_security_type", [])


async def _deny(
    context: grpc.aio.ServicerContext, node: NodeInfo, code: grpc.StatusCode, reason: str
) -> None:
    """End the stream with ``code``: logged, and counted when it is about access."""
    log.warning("xds.closed", node=node.id, code=code.name, reason=reason)
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        metrics.XDS_DENIED.labels(code.name.lower()).inc()
    await context.abort(code, reason)


@functools.cache
def _push_metrics(type_url: str) -> tuple[Counter, Histogram, Histogram]:
    """A pushed type's children of the push metrics (looked up once: ``labels`` costs three
    times what it fetches); the types a server sends are few."""
    kind = short_name(type_url)
    return (
        metrics.XDS_PUSHES.labels(kind),
        metrics.XDS_CONFIG_SIZE.labels(kind),
        metrics.XDS_PUSH_TIME.labels(kind),
    )


def _record(node: NodeInfo, action: Acked | Nacked | Ignored, limit: LogLimiter) -> None:
    """Log (and count) what the core reports; it does no logging itself. NACKs are counted
    each and logged at most once per type per interval, their text clipped."""
    if isinstance(action, Nacked):
        metrics.XDS_REJECTS.labels(short_name(action.type_url)).inc()
        allowed, unlogged = limit.allow(("nack", action.type_url))
        if not allowed:
            return
        log.warning(
            "xds.nack",
            node=node.id,
            type=short_name(action.type_url),
            version=action.version,
            nonce=action.nonce,
            error=clip(action.detail),
            unlogged_nacks=unlogged,
        )
    elif isinstance(action, Acked):
        log.debug(
            "xds.ack",
            node=node.id,
            type=short_name(action.type_url),
            version=action.version,
            nonce=action.nonce,
        )
    elif action.reason is IgnoreReason.DENIED:
        metrics.XDS_DENIED.labels("permission_denied").inc()
        log.warning(
            "xds.denied",
            node=node.id,
            type=short_name(action.type_url),
            code="PERMISSION_DENIED",
            reason=SECRETS_NEED_AUTHENTICATION,
        )
    else:
        # Stale and repeated answers are ordinary protocol traffic: debug. An unknown type
        # is worth seeing, once per interval.
        if action.reason is not IgnoreReason.UNKNOWN_TYPE:
            say = log.debug
        elif limit.allow(("ignored", action.type_url))[0]:
            say = log.info
        else:
            return
        say(
            "xds.ignored",
            node=node.id,
            type=clip(action.type_url, 200),
            reason=action.reason.name,
            nonce=clip(action.nonce, 80),
        )


StreamFactory = Callable[[StreamConfig], XdsStream]
