"""The transport floor: the least a grpc.aio xDS server can do for push_latency's proxies.

Usage (``python -m benchmarks.push_latency --server floor`` starts it)::

    python -m benchmarks.floor_server --config-dir DIR --xds-address 127.0.0.1:PORT
        [--debounce-after 0.1]

It serves push_latency's simulated sidecars over ADS (state of the world or delta) with
what pyistiod would send proxy 0 of the same mesh, made with pyistiod's own loader,
translators and encoding, and does no work per proxy beyond gRPC's: each stream's
requests are read, a type the stream has not been sent is answered, and every stream
is sent the one response its variant shares. A change of the config directory is noticed
and debounced as ``pyistiod serve`` does (``DirectoryWatch``, ``Changes``), read with
the same ``Loader``, and proxy 0's snapshot built again with the previous builder's
parts: the work pyistiod does once per change. Each type that changed gets a new version
and is sent to every stream watching it, holding what pyistiod sends: in state of the
world, CDS and LDS whole and EDS and RDS only the resources that changed; in delta, only
those, and the names removed.

So push_latency against it measures what every control plane pays on this machine: the
debounce, one model and one snapshot per change, gRPC Python's reads and writes of the
bytes, the event loop and the load generator. What pyistiod adds per proxy (every
proxy's snapshot, its stream's protocol state, the registry) is the difference between
the two. Not a control plane: every proxy is sent proxy 0's resources (its listeners
are bound at proxy 0's address), no NACK is looked at, and a request is decoded whole
with protobuf (about 25 µs for a SotW endpoint ACK that lists a thousand names, which
pyistiod's ``transport.repeats`` avoids).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
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
from translators.sources.loader import Loader
from xds_server import wire
from xds_server.snapshot import Resource
from xds_server.types import CLUSTER, ENDPOINT, LISTENER, ROUTE

TYPES: Final = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
WHOLE_IN_SOTW: Final = frozenset({CLUSTER, LISTENER})
"""The types whose state-of-the-world responses must hold every resource (the protocol's rule)."""

_SERVICE, _SOTW = ADS_METHOD.strip("/").split("/")
_DELTA = DELTA_METHOD.rsplit("/", 1)[1]
_CONTROL_PLANE: Final = wire.control_plane("floor")


@dataclass(eq=False, slots=True)
class _Stream:
    """One stream's queue of types to send, the types it watches, the versions it was sent."""

    delta: bool
    due: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    queued: set[str] = field(default_factory=set)
    watched: set[str] = field(default_factory=set)
    sent: dict[str, int] = field(default_factory=dict)

    def send(self, type_url: str | None) -> None:
        """Queue ``type_url`` once (None ends the stream)."""
        if type_url not in self.queued:
            if type_url is not None:
                self.queued.add(type_url)
            self.due.put_nowait(type_url)


class Floor:
    """Proxy 0's resources, the shared responses of each type, and the open streams."""

    def __init__(self, config_dir: Path) -> None:
        self.loader = Loader([FileSource(config_dir)])
        self.builder: SnapshotBuilder | None = None
        self.resources: dict[str, dict[str, Resource]] = {t: {} for t in TYPES}
        self.versions = dict.fromkeys(TYPES, 0)
        self.whole: dict[str, tuple[bytes, bytes]] = {}
        """Per type, every resource: the state-of-the-world response and the delta one."""
        self.changes: dict[str, tuple[bytes, bytes]] = {}
        """Per type, what its last change sends (SotW CDS and LDS: every resource)."""
        self.streams: set[_Stream] = set()
        self.reload()

    def reload(self) -> tuple[str, ...]:
        """Read the directory again; give each type that changed a new version and send
        it to every stream watching it. Returns those types."""
        result = self.loader.read()
        self.loader.commit(result)
        model = result.model
        self.builder = SnapshotBuilder(model, self.builder)
        snapshot = self.builder.snapshot(proxy_from_node(node_id(0), {}, model))
        self.builder.seal()
        snapshot = SecretlessView().snapshot(snapshot)
        changed = tuple(t for t in TYPES if self._update(t, {r.name: r for r in snapshot.get(t)}))
        for stream in self.streams:
            for t in changed:
                if t in stream.watched:
                    stream.send(t)
        return changed

    def _update(self, type_url: str, now: dict[str, Resource]) -> bool:
        """Encode a new version of ``type_url`` if its resources changed (or at start)."""
        before = self.resources[type_url]
        news = [r for name, r in now.items() if _version(before.get(name)) != r.version]
        removed = sorted(before.keys() - now.keys())
        if type_url in self.whole and not news and not removed:
            return False
        self._encode(type_url, now, news, removed)
        return True

    def _encode(
        self, type_url: str, now: dict[str, Resource], news: list[Resource], removed: list[str]
    ) -> None:
        self.resources[type_url] = now
        self.versions[type_url] += 1
        version, whole = self.versions[type_url], list(now.values())
        self.whole[type_url] = _encoded(type_url, version, whole, whole, [])
        sotw = whole if type_url in WHOLE_IN_SOTW else news
        self.changes[type_url] = _encoded(type_url, version, sotw, news, removed)

    def response(self, stream: _Stream, type_url: str) -> bytes:
        """What ``stream`` is sent of ``type_url`` now: the last change if it holds the
        version before, else every resource; the version is then the stream's."""
        version = self.versions[type_url]
        last = self.changes if stream.sent.get(type_url) == version - 1 else self.whole
        stream.sent[type_url] = version
        return last[type_url][stream.delta]

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
                await context.write(self.response(stream, type_url))
        finally:
            self.streams.discard(stream)
            reader.cancel()

    @staticmethod
    async def _read(requests: AsyncIterator[bytes], stream: _Stream) -> None:
        """Watch each type the stream asks for, and send it the first time."""
        kind = (
            discovery_pb2.DeltaDiscoveryRequest if stream.delta else discovery_pb2.DiscoveryRequest
        )
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for raw in requests:
                type_url = kind.FromString(raw).type_url
                if type_url not in stream.watched:
                    stream.watched.add(type_url)
                    stream.send(type_url)
        stream.send(None)


async def serve(config_dir: Path, address: str, debounce_after: float) -> None:
    """Serve until cancelled; read the directory again on each debounced burst."""
    floor = Floor(config_dir)
    handler = grpc.method_handlers_generic_handler(
        _SERVICE,
        {
            _SOTW: grpc.stream_stream_rpc_method_handler(floor.sotw),
            _DELTA: grpc.stream_stream_rpc_method_handler(floor.delta),
        },
    )
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.server.max_pending_requests", 20_000),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers([handler])
    server.add_insecure_port(address)
    await server.start()
    changes = Changes(Debouncer(debounce_after, 10.0))
    watch = asyncio.create_task(DirectoryWatch(config_dir, changes).run())
    try:
        async for _burst in changes.bursts():
            floor.reload()
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


def _version(resource: Resource | None) -> str:
    return "" if resource is None else resource.version


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
