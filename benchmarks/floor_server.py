"""The transport floor: the least a grpc.aio xDS server can do for push_latency's proxies.

Usage (``python -m benchmarks.push_latency --server floor`` starts it)::

    python -m benchmarks.floor_server --config-dir DIR --xds-address 127.0.0.1:PORT
        [--debounce-after 0.1]

It serves push_latency's simulated sidecars over ADS (state of the world or delta) with
what pyistiod would send proxy 0 of the same mesh, made with pyistiod's own loader,
translators and encoding. Per change it does what pyistiod does once: the edit is noticed
and debounced as ``pyistiod serve`` does (``DirectoryWatch``, ``Changes``), read in a
thread with the same ``Loader``, and proxy 0's snapshot built with the previous builder's
parts and served through one ``SecretlessView``. Per proxy it does no more than the
protocol asks: each type that changed gets a new version, and every stream watching it is
sent the one response its variant shares, holding what pyistiod sends (state of the world:
CDS and LDS whole, EDS and RDS only the resources that changed; delta: only those, and the
names removed). A resource is sent only once a stream has asked for its name (for EDS and
RDS), as pyistiod does: a new port's endpoints and routes go out after the proxy asked for
them in answer to the new CDS and LDS. A stream whose ACK repeats its last names is read
from its bytes (``transport.repeats``, as pyistiod); other requests are decoded.

So push_latency against it measures what every control plane pays on this machine: the
debounce, one model and one snapshot per change, the protocol's round trips, gRPC Python's
reads and writes of the bytes, the event loop and the load generator. What pyistiod adds
per proxy (every proxy's snapshot, its stream's protocol state, the registry) is the
difference between the two. Not a control plane: every proxy is sent proxy 0's resources
(its listeners are bound at proxy 0's address), no NACK is looked at, and a SotW response
for EDS or RDS may hold changed resources a stream did not ask for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from benchmarks.sim_proxy import ADS_METHOD, DELTA_METHOD, node_id
from pyistiod.secretless_view import SecretlessView
from pyistiod.snapshot_builder import SnapshotBuilder
from translators.mesh.model.proxy import proxy_from_node
from translators.sources.changes import Changes
from translators.sources.debounce import Debouncer
from translators.sources.directory_watch import DirectoryWatch
from translators.sources.files import FileSource
from translators.sources.loader import Loader, LoadResult
from xds_server import wire
from xds_server.snapshot import Resource, ResourceSet
from xds_server.transport.repeats import encoding, read_repeat
from xds_server.types import CLUSTER, ENDPOINT, LISTENER, ROUTE

TYPES: Final = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
WILDCARD: Final = frozenset({CLUSTER, LISTENER})
"""The types a sidecar watches whole; their state-of-the-world responses hold every resource.
EDS and RDS are watched by name."""

_SERVICE, _SOTW = ADS_METHOD.strip("/").split("/")
_DELTA = DELTA_METHOD.rsplit("/", 1)[1]
_CONTROL_PLANE: Final = wire.control_plane("floor")


@dataclass(eq=False, slots=True)
class _Stream:
    """One stream's queue of types to send, and what it watches and was sent."""

    delta: bool
    due: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    queued: set[str] = field(default_factory=set)
    names: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per type it watches, the names it asked for (empty for a wildcard type)."""
    asked: dict[str, set[str]] = field(default_factory=dict)
    """Per type, names asked for since its last response and not sent yet."""
    sent: dict[str, int] = field(default_factory=dict)
    """Per type, the version it was last sent."""
    encodings: dict[str, bytes] = field(default_factory=dict)
    """Per named type, the encoding of its last names (to read a repeating ACK from bytes)."""

    def send(self, type_url: str | None) -> None:
        """Queue ``type_url`` once (None ends the stream)."""
        if type_url not in self.queued:
            if type_url is not None:
                self.queued.add(type_url)
            self.due.put_nowait(type_url)


class Floor:
    """Proxy 0's resources, the shared responses of each type, and the open streams."""

    def __init__(self, first: LoadResult, loader: Loader) -> None:
        self.loader = loader
        self.builder: SnapshotBuilder | None = None
        self.secretless = SecretlessView()
        self.sets: dict[str, ResourceSet] = {}
        """Per type, proxy 0's resources now."""
        self.versions = dict.fromkeys(TYPES, 0)
        self.whole: dict[str, tuple[bytes, bytes]] = {}
        """Per type, every resource (and in delta every name removed since the start): the
        state-of-the-world response and the delta one."""
        self.changes: dict[str, tuple[bytes, bytes]] = {}
        """Per type, what its last change sends (SotW CDS and LDS: every resource)."""
        self.changed: dict[str, frozenset[str]] = {}
        """Per type, the names its last change added, changed or removed."""
        self.gone: dict[str, set[str]] = {t: set() for t in TYPES}
        self.streams: set[_Stream] = set()
        self._names: dict[tuple[str, ...], tuple[frozenset[str], bytes]] = {}
        self.apply(first)

    @staticmethod
    def at(config_dir: Path) -> Floor:
        """A floor serving ``config_dir`` as it is now."""
        loader = Loader([FileSource(config_dir)])
        return Floor(loader.read(), loader)

    def apply(self, result: LoadResult) -> tuple[str, ...]:
        """Serve ``result`` (a read of ``self.loader``): each type that changed gets a new
        version, queued for every stream watching one of its changed names. Returns those
        types."""
        self.loader.commit(result)
        model = result.model
        self.builder = SnapshotBuilder(model, self.builder)
        snapshot = self.builder.snapshot(proxy_from_node(node_id(0), {}, model))
        self.builder.seal()
        snapshot = self.secretless.snapshot(snapshot)
        changed = tuple(t for t in TYPES if self._update(snapshot.get(t)))
        for stream in self.streams:
            for t in changed:
                watched = stream.names.get(t)
                if watched is not None and (t in WILDCARD or watched & self.changed[t]):
                    stream.send(t)
        return changed

    def _update(self, now: ResourceSet) -> bool:
        """Encode a new version of ``now``'s type if its resources changed (or at start)."""
        type_url, before = now.type_url, self.sets.get(now.type_url)
        if before is None:
            changed, removed = frozenset(now.names()), frozenset[str]()
        else:
            changed, removed = now.changed_since(before)
            if not changed and not removed:
                return False
        self.sets[type_url] = now
        self.versions[type_url] += 1
        self.changed[type_url] = changed | removed
        gone = self.gone[type_url]
        gone.difference_update(now.names())
        gone.update(removed)
        version, whole = self.versions[type_url], list(now)
        news = [r for r in whole if r.name in changed]
        self.whole[type_url] = _encoded(type_url, version, whole, whole, sorted(gone))
        sotw = whole if type_url in WILDCARD else news
        self.changes[type_url] = _encoded(type_url, version, sotw, news, sorted(removed))
        return True

    def response(self, stream: _Stream, type_url: str) -> bytes | None:
        """What ``stream`` is sent of ``type_url`` now (None: nothing new); its version is
        then the stream's. A stream holding the version before gets the last change (and
        the names it asked for since), one holding this version the names it asked for,
        and any other every resource."""
        version, held = self.versions[type_url], stream.sent.get(type_url)
        asked = stream.asked.pop(type_url, set())
        stream.sent[type_url] = version
        if held == version - 1:
            if asked <= self.changed[type_url]:
                return self.changes[type_url][stream.delta]
            asked |= self.changed[type_url]
        elif held != version:
            return self.whole[type_url][stream.delta]
        elif not asked:
            return None
        now = self.sets[type_url]
        named = [r for r in now if r.name in asked]
        sotw = list(now) if type_url in WILDCARD else named
        removed = sorted(n for n in asked if n not in now)
        return _encoded(type_url, version, sotw, named, removed)[stream.delta]

    async def sotw(self, requests: AsyncIterator[bytes], context: Any) -> None:
        """A state-of-the-world ADS stream."""
        await self._serve(_Stream(delta=False), requests, context)

    async def delta(self, requests: AsyncIterator[bytes], context: Any) -> None:
        """A delta ADS stream."""
        await self._serve(_Stream(delta=True), requests, context)

    async def _serve(self, stream: _Stream, requests: AsyncIterator[bytes], context: Any) -> None:
        """A reader task queues what to send, this loop sends it."""
        self.streams.add(stream)
        reader = asyncio.create_task(self._read(requests, stream))
        try:
            while (type_url := await stream.due.get()) is not None:
                stream.queued.discard(type_url)
                response = self.response(stream, type_url)
                if response is not None:
                    await context.write(response)
        finally:
            self.streams.discard(stream)
            reader.cancel()

    async def _read(self, requests: AsyncIterator[bytes], stream: _Stream) -> None:
        """Note what each request asks for; queue a type the first time, and again for
        names asked for later."""
        try:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
                async for raw in requests:
                    self.on_request(stream, raw)
        finally:
            stream.send(None)

    def on_request(self, stream: _Stream, raw: bytes) -> None:
        """One request's names (an ACK that repeats them is read from its bytes)."""
        if stream.delta:
            delta = discovery_pb2.DeltaDiscoveryRequest.FromString(raw)
            type_url, held = delta.type_url, stream.names.get(delta.type_url, frozenset())
            names = (held | set(delta.resource_names_subscribe)) - set(
                delta.resource_names_unsubscribe
            )
        else:
            for type_url, names_encoding in stream.encodings.items():
                hit = read_repeat(raw, names_encoding)
                if hit is not None and hit[1] == type_url:
                    return  # the same names: an ACK
            sotw = discovery_pb2.DiscoveryRequest.FromString(raw)
            type_url = sotw.type_url
            names, stream.encodings[type_url] = self._interned(sotw.resource_names)
        self._watch(stream, type_url, names)

    def _interned(self, names: Iterable[str]) -> tuple[frozenset[str], bytes]:
        """A names list as a set and its request encoding, shared by streams that ask the same."""
        key = tuple(names)
        found = self._names.get(key)
        if found is None:
            found = self._names[key] = (frozenset(key), encoding(key))
        return found

    @staticmethod
    def _watch(stream: _Stream, type_url: str, names: frozenset[str]) -> None:
        held = stream.names.get(type_url)
        stream.names[type_url] = names
        if held is None:
            stream.send(type_url)  # the first request: every resource
        elif names - held and type_url not in WILDCARD:
            stream.asked.setdefault(type_url, set()).update(names - held)
            stream.send(type_url)


async def serve(config_dir: Path, address: str, debounce_after: float) -> None:
    """Serve until cancelled; read the directory again on each debounced burst."""
    changes = Changes(Debouncer(debounce_after, 10.0))
    watch = asyncio.create_task(DirectoryWatch(config_dir, changes).run())
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.server.max_pending_requests", 20_000),
            ("grpc.so_reuseport", 0),
        ]
    )
    try:
        floor = Floor.at(config_dir)
        handler = grpc.method_handlers_generic_handler(
            _SERVICE,
            {
                _SOTW: grpc.stream_stream_rpc_method_handler(floor.sotw),
                _DELTA: grpc.stream_stream_rpc_method_handler(floor.delta),
            },
        )
        server.add_generic_rpc_handlers([handler])
        server.add_insecure_port(address)
        await server.start()
        async for _burst in changes.bursts():
            floor.apply(await asyncio.to_thread(floor.loader.read))
    finally:
        watch.cancel()
        await server.stop(None)


def _encoded(
    type_url: str, version: int, sotw: list[Resource], delta: list[Resource], removed: list[str]
) -> tuple[bytes, bytes]:
    """A state-of-the-world response holding ``sotw`` and a delta one holding ``delta`` and
    ``removed``, both at ``version`` (also their nonce)."""
    return wire.sotw_response(
        version=f"floor-{version}",
        type_url=type_url,
        nonce=str(version),
        entries=[(r.sotw_header, r.any_bytes) for r in sotw],
        control_plane_bytes=_CONTROL_PLANE,
    ), wire.delta_response(
        system_version=f"floor-{version}",
        type_url=type_url,
        nonce=str(version),
        entries=[(r.delta_header, r.any_bytes) for r in delta],
        removed=removed,
        control_plane_bytes=_CONTROL_PLANE,
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor_server", description=__doc__)
    parser.add_argument("--config-dir", type=Path, required=True)
    parser.add_argument("--xds-address", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--debounce-after", type=float, default=0.1)
    args = parser.parse_args(argv)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve(args.config_dir, args.xds_address, args.debounce_after)

    asyncio.run(run())


if __name__ == "__main__":
    main()
