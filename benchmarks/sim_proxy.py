"""Simulated Envoy sidecars: the xDS subscribe/ACK behaviour of Envoy, minus Envoy.

Each proxy is a small state machine fed one response at a time, returning the
requests Envoy would send in answer; ``run_proxy`` moves them over one grpc.aio
ADS stream. Envoy's order is kept (xDS protocol, "Eventual consistency
considerations"): CDS wildcard first; on a CDS response, ACK and subscribe EDS
to the clusters of type EDS; after the first EDS response, LDS wildcard; on an
LDS response, ACK and subscribe RDS to the route names in the listeners' HTTP
connection managers. Every response is ACKed (this client never NACKs).

To stay cheap, resources are decoded only where Envoy's behaviour needs them:
a Cluster's name and discovery type (memoized on its bytes, which every proxy
shares with the same view) and a Listener's RDS route names. Endpoints and
routes are never decoded, only counted in bytes. Requests and responses move
as wire bytes (``benchmarks.sim_wire`` says why and how).

Measurement state lives here too: ``mark(types)`` starts a change, and the
first later response of each marked type that carries something new (SotW: a
version different from the one held at the mark; delta: any resource or
removal) records the proxy's convergence time for that type.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Iterable, Set
from typing import Any, Final

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from benchmarks import sim_wire
from benchmarks.sim_wire import Response, delta_request, sotw_request
from xds_server.types import CLUSTER, ENDPOINT, LISTENER, ROUTE

STORM_TYPES: Final = frozenset({CLUSTER, ENDPOINT, LISTENER, ROUTE})
HCM_TYPE: Final = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
ADS_METHOD: Final = (
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
)
DELTA_METHOD: Final = (
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
)

_CLUSTERS: dict[bytes, tuple[str, bool]] = {}
_CACHE_LIMIT: Final = 100_000


_EDS_BY_VERSION: dict[str, tuple[str, ...]] = {}
_DELTA_EDS: dict[bytes, tuple[frozenset[str], list[bytes]]] = {}


def node_id(index: int) -> str:
    """Proxy ``index``'s node ID, with a unique pod IP in 127.0.0.0/16."""
    ip = f"127.0.{1 + index // 250}.{1 + index % 250}"
    return f"sidecar~{ip}~proxy-{index}.default~default.svc.cluster.local"


def cluster_info(data: bytes) -> tuple[str, bool]:
    """A serialized Cluster's name and whether it is of type EDS, memoized on the bytes."""
    hit = _CLUSTERS.get(data)
    if hit is None:
        if len(_CLUSTERS) > _CACHE_LIMIT:
            _CLUSTERS.clear()
        cluster = cluster_pb2.Cluster.FromString(data)
        hit = (cluster.name, cluster.type == cluster_pb2.Cluster.EDS)
        _CLUSTERS[data] = hit
    return hit


def eds_names(resp: Response) -> tuple[str, ...]:
    """The EDS cluster names of a CDS response, memoized on its version.

    Versions are content hashes, so every proxy given one version holds the
    same clusters: the resources are looked at once per version, not once per
    proxy (the load generator must stay cheaper than the server it measures).
    """
    hit = _EDS_BY_VERSION.get(resp.version)
    if hit is None:
        if len(_EDS_BY_VERSION) > 64:
            _EDS_BY_VERSION.clear()
        infos = (cluster_info(a.value) for a in resp.decoded().resources)
        hit = tuple(sorted(n for n, is_eds in infos if is_eds))
        _EDS_BY_VERSION[resp.version] = hit
    return hit


def delta_eds(resp: Response) -> tuple[frozenset[str], list[bytes]]:
    """The EDS cluster names of a delta CDS response, and the requests that subscribe a
    fresh proxy to all of them, memoized on the response's wire bytes.

    A delta response has no version for its whole content, so only equal bytes share an
    entry. pyistiod gives equal content one nonce (``transport.responses``), so every
    fresh proxy is sent the same bytes and the clusters are decoded once, not once per
    proxy (the load generator must stay cheaper than the server it measures); a server
    whose nonces differ per stream just misses the memo.
    """
    hit = _DELTA_EDS.get(resp.data)
    if hit is None:
        if len(_DELTA_EDS) > 8:
            _DELTA_EDS.clear()
        infos = (cluster_info(r.resource.value) for r in resp.decoded().resources)
        names = frozenset(name for name, is_eds in infos if is_eds)
        hit = _DELTA_EDS[resp.data] = (names, _subscribe(ENDPOINT, set(names), set()))
    return hit


def route_names(data: bytes) -> set[str]:
    """The RDS route configuration names a serialized Listener's HTTP connection managers use."""
    listener = listener_pb2.Listener.FromString(data)
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    names = set()
    for chain in chains:
        for f in chain.filters:
            if f.typed_config.type_url == HCM_TYPE:
                hcm = hcm_pb2.HttpConnectionManager.FromString(f.typed_config.value)
                if hcm.HasField("rds"):
                    names.add(hcm.rds.route_config_name)
    return names


class ProxyState:
    """What every simulated proxy counts: bytes, ACKed types, and the change being measured."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.node = base_pb2.Node(id=node_id(index)).SerializeToString()
        self.bytes_received = 0
        self.acked: set[str] = set()
        self.storm_done_at: float | None = None
        self.error: str | None = None
        self.error_at = 0.0
        self.mark_types: frozenset[str] = frozenset()
        self.mark_bytes = 0
        self.converged: dict[str, float] = {}
        self.reconnects = 0
        self.last_failure = ""
        self.reset()

    def reset(self) -> None:
        """Forget the stream's state: a new stream starts as a fresh Envoy would."""
        self.acked = set()
        self.lds_requested = False

    @property
    def mark_pending(self) -> bool:
        """A change is being measured and some marked type has not arrived yet."""
        return not self.mark_types <= self.converged.keys()

    def mark(self, types: Iterable[str]) -> None:
        """Start measuring a change expected to update ``types``."""
        self.mark_types = frozenset(types)
        self.mark_bytes = self.bytes_received
        self.converged = {}

    def _count(self, type_url: str, size: int, now: float, news: bool) -> None:
        self.bytes_received += size
        self.acked.add(type_url)
        if news and type_url in self.mark_types and type_url not in self.converged:
            self.converged[type_url] = now


class SotwProxy(ProxyState):
    """Envoy over state-of-the-world ADS: every request carries the type's full name list."""

    def __init__(self, index: int) -> None:
        self.mark_versions: dict[str, str] = {}
        super().__init__(index)

    def reset(self) -> None:
        """Forget versions, nonces and subscriptions."""
        super().reset()
        self.versions: dict[str, str] = {}
        self.nonces: dict[str, str] = {}
        self.names: dict[str, tuple[str, ...]] = {CLUSTER: (), LISTENER: ()}

    def mark(self, types: Iterable[str]) -> None:
        """Start measuring; a marked type converges on a version other than the current one."""
        super().mark(types)
        self.mark_versions = dict(self.versions)

    def initial(self) -> list[bytes]:
        """The first request: CDS wildcard, with the node."""
        return [sotw_request(CLUSTER, node=self.node)]

    def _request(self, type_url: str) -> bytes:
        return sotw_request(
            type_url,
            version=self.versions.get(type_url, ""),
            nonce=self.nonces.get(type_url, ""),
            names=self.names[type_url],
        )

    def on_response(self, resp: Response, now: float) -> list[bytes | Any]:
        """ACK ``resp`` and follow up as Envoy does; returns the requests to send, in order."""
        t = resp.type_url
        self._count(t, len(resp.data), now, resp.version != self.mark_versions.get(t))
        self.versions[t] = resp.version
        self.nonces[t] = resp.nonce
        out: list[bytes | Any] = [self._request(t)]
        follow = ""
        if t == CLUSTER:
            eds = eds_names(resp)
            follow = ENDPOINT if eds != self.names.get(ENDPOINT) else ""
            self.names[ENDPOINT] = eds
        elif t == ENDPOINT and not self.lds_requested:
            self.lds_requested = True
            follow = LISTENER
        elif t == LISTENER:
            listeners = resp.decoded().resources
            routes = tuple(sorted(set().union(*(route_names(a.value) for a in listeners))))
            follow = ROUTE if routes != self.names.get(ROUTE) else ""
            self.names[ROUTE] = routes
        if follow:
            out.append(self._request(follow))
        return out


class DeltaProxy(ProxyState):
    """Envoy over delta ADS: wildcard CDS/LDS by an empty first subscribe, explicit EDS/RDS."""

    def reset(self) -> None:
        """Forget subscriptions."""
        super().reset()
        self.eds: set[str] = set()
        self.listener_routes: dict[str, set[str]] = {}
        self.routes: set[str] = set()

    def initial(self) -> list[bytes]:
        """The first request: CDS wildcard (no names), with the node."""
        return [delta_request(CLUSTER, node=self.node)]

    def on_response(self, resp: Response, now: float) -> list[bytes | Any]:
        """ACK ``resp`` by nonce and follow up as Envoy does; returns the requests to send."""
        t = resp.type_url
        self._count(t, len(resp.data), now, bool(resp.count or resp.removed))
        out: list[bytes | Any] = [delta_request(t, nonce=resp.nonce)]
        if t == CLUSTER:
            names, subscribe_all = delta_eds(resp)
            if not self.eds:  # a fresh stream: subscribe to them all, as every proxy does
                self.eds = set(names)
                out += subscribe_all
            else:
                added = names - self.eds
                gone = self.eds & set(resp.removed)
                self.eds = (self.eds | added) - gone
                out += _subscribe(ENDPOINT, added, gone)
        elif t == ENDPOINT and not self.lds_requested:
            self.lds_requested = True
            out.append(delta_request(LISTENER))
        elif t == LISTENER:
            for name in resp.removed:
                self.listener_routes.pop(name, None)
            for r in resp.decoded().resources:
                self.listener_routes[r.name] = route_names(r.resource.value)
            routes = set().union(*self.listener_routes.values())
            out += _subscribe(ROUTE, routes - self.routes, self.routes - routes)
            self.routes = routes
        return out


def _subscribe(type_url: str, added: Set[str], gone: Set[str]) -> list[bytes]:
    if not added and not gone:
        return []
    return [delta_request(type_url, subscribe=sorted(added), unsubscribe=sorted(gone))]


def open_call(channel: grpc.aio.Channel, delta: bool) -> Any:
    """Open one ADS stream whose reads yield ``sim_wire.Response``s; it writes requests
    given as bytes or as protobuf messages."""
    method = channel.stream_stream(
        DELTA_METHOD if delta else ADS_METHOD,
        request_serializer=sim_wire.to_bytes,
        response_deserializer=functools.partial(sim_wire.read, delta=delta),
    )
    return method()


async def run_proxy(
    proxy: SotwProxy | DeltaProxy,
    open_stream: Callable[[], Any],
    on_storm_done: Callable[[], None],
    on_converged: Callable[[], None],
    max_reconnects: int = 5,
) -> None:
    """Drive ``proxy`` over ADS until cancelled; report milestones by callback.

    A failed stream is reopened after a jittered exponential backoff (0.5 s
    base, as Envoy's ADS retry), from a fresh state; after ``max_reconnects``
    failures the proxy gives up and records ``error``.
    """
    while True:
        call = open_stream()
        try:
            await _drive(proxy, call, on_storm_done, on_converged)
            failure = "stream ended by the server"
        except grpc.aio.AioRpcError as err:
            failure = await _failure(call, err)
        proxy.last_failure = failure
        if proxy.reconnects >= max_reconnects:
            proxy.error = failure
            proxy.error_at = time.monotonic()
            return
        proxy.reconnects += 1
        await asyncio.sleep(random.uniform(0.5, 1.0) * 2 ** (proxy.reconnects - 1))
        proxy.reset()


async def _failure(call: Any, err: grpc.aio.AioRpcError) -> str:
    """Why the stream failed. A write on a call the server already ended fails with a
    generic INTERNAL "execute_batch" error (grpc/grpc#36066): ask the call for its status."""
    try:
        code, details = await asyncio.wait_for(asyncio.gather(call.code(), call.details()), 1.0)
    except (TimeoutError, grpc.aio.AioRpcError):
        code, details = err.code(), err.details()
    return f"{code.name}: {details}"


async def _drive(
    proxy: SotwProxy | DeltaProxy,
    call: Any,
    on_storm_done: Callable[[], None],
    on_converged: Callable[[], None],
) -> None:
    for req in proxy.initial():
        await call.write(req)
    while True:
        item = await call.read()
        if item is grpc.aio.EOF:
            return
        pending = proxy.mark_pending
        for req in proxy.on_response(item, time.monotonic()):
            await call.write(req)
        stormed, converged = milestones(proxy, pending)
        if stormed:
            on_storm_done()
        if converged:
            on_converged()


def milestones(proxy: ProxyState, pending: bool) -> tuple[bool, bool]:
    """After a response was answered: whether it completed ``proxy``'s connect storm (then
    stamped in ``storm_done_at``) and whether it converged the change being measured, which
    was ``pending`` before it."""
    stormed = proxy.storm_done_at is None and proxy.acked >= STORM_TYPES
    if stormed:
        proxy.storm_done_at = time.monotonic()
    return stormed, pending and not proxy.mark_pending
