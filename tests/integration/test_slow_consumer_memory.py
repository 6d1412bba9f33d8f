"""Proxies that never read cost the server one response each, whatever changes meanwhile.

``pyistiod serve`` runs as its own process (``benchmarks.server_proc``), so its
resident memory is its own. 300 streams ask for the CDS of a 1,500-service mesh
(about 0.72 MB) and never read. Their client grants no HTTP/2 flow-control
window beyond the first 64 KiB (BDP probing off), as a proxy whose transport
lives on while its application hangs: gRPC then holds each response, unsent,
in the server. That is the worst a reader can do, and the bound stated here
(README, Benchmarks) is for it:

- 300 never-reading streams cost at most 4 CDS responses each (about 860 MB
  here; measured 1.4-2.2 responses: the encoded bytes, and gRPC's copy);
- four config changes while they are stuck add less than a quarter of a
  response per stream: the protocol core keeps one response per type in flight
  (the next waits for an ACK), so nothing queues per change. A server that
  buffered every push per stream would add at least one response per stream
  per change;
- a fresh proxy still gets its first response within a second;
- once the stuck streams are gone, the memory is given back (within 64 MB of
  where it started).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.mesh_gen import SERVICES_FILE, Mesh, prepare, write_atomically
from benchmarks.server_proc import Server, memory_mb, start_server
from benchmarks.sim_proxy import ADS_METHOD, node_id
from benchmarks.soak import streams
from xds_server.types import CLUSTER

SERVICES = 1500
STUCK = 300
PER_CONNECTION = 50
CHANGES = 4
RESPONSES_PER_STREAM_BOUND = 4.0
PER_CHANGE_BOUND = 0.25
"""Of one response per stuck stream: what all the changes together may add."""
RELEASED_BOUND_MB = 64.0

_STINGY = [
    ("grpc.http2.bdp_probe", 0),  # the window stays at 64 KiB: gRPC's default
    ("grpc.use_local_subchannel_pool", 1),  # one connection per channel
    ("grpc.max_receive_message_length", -1),
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path, Mesh]]:
    _, config_dir, mesh = prepare(SERVICES, str(tmp_path / "mesh-"))
    server = start_server(config_dir, 0.1, tmp_path / "server.log")
    try:
        yield server, config_dir, mesh
    finally:
        server.stop()


async def settled_rss(pid: int, timeout: float = 15.0) -> float:
    """The server's RSS once two readings 0.5 s apart agree within 2 MB."""
    last = memory_mb(pid)[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = memory_mb(pid)[0]
        if abs(now - last) < 2:
            return now
        last = now
    return last


async def until_streams(server: Server, want: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while streams(server.monitoring_port) != want:
        assert time.monotonic() < deadline, f"{streams(server.monitoring_port)} streams, not {want}"
        await asyncio.sleep(0.2)


def ads(channel: grpc.aio.Channel) -> Any:
    method = channel.stream_stream(
        ADS_METHOD,
        request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
        response_deserializer=len,  # the wire size is all we need
    )
    return method()


def cds_request(index: int) -> discovery_pb2.DiscoveryRequest:
    return discovery_pb2.DiscoveryRequest(node=base_pb2.Node(id=node_id(index)), type_url=CLUSTER)


async def first_response(server: Server, index: int) -> tuple[float, int]:
    """Seconds until a fresh proxy's first CDS response, and its size in bytes."""
    async with grpc.aio.insecure_channel(server.address, options=_STINGY[1:]) as ch:
        call = ads(ch)
        started = time.monotonic()
        await call.write(cds_request(index))
        size = await call.read()
        elapsed = time.monotonic() - started
        call.cancel()
    return elapsed, size


async def test_never_reading_streams_cost_one_response_each_and_delay_no_one(
    served: tuple[Server, Path, Mesh],
) -> None:
    server, config_dir, mesh = served
    _, cds_bytes = await first_response(server, 10_000)
    cds_mb = cds_bytes / 2**20
    await until_streams(server, 0)
    baseline = await settled_rss(server.pid)

    channels = [
        grpc.aio.insecure_channel(server.address, options=_STINGY)
        for _ in range(STUCK // PER_CONNECTION)
    ]
    stuck = []
    try:
        for i in range(STUCK):
            call = ads(channels[i // PER_CONNECTION])
            await call.write(cds_request(i))
            stuck.append(call)  # and never read
        await until_streams(server, STUCK)
        held = await settled_rss(server.pid)
        per_stream = (held - baseline) / STUCK / cds_mb
        assert per_stream >= 0.5, f"{per_stream:.2f} responses each: the streams are not stuck"
        assert per_stream <= RESPONSES_PER_STREAM_BOUND, (
            f"{STUCK} stuck streams hold {held - baseline:.0f} MB: "
            f"{per_stream:.2f} CDS responses ({cds_mb:.2f} MB) each"
        )

        for n in range(1, CHANGES + 1):
            write_atomically(config_dir / SERVICES_FILE, mesh.add_port(n))
            await asyncio.sleep(1.0)
        changed = await settled_rss(server.pid)
        added = (changed - held) / STUCK / cds_mb
        assert added <= PER_CHANGE_BOUND, (
            f"{CHANGES} changes while stuck added {changed - held:.0f} MB: "
            f"{added:.2f} responses per stuck stream; pushes queue per stream"
        )

        elapsed, size = await first_response(server, 10_001)
        assert elapsed < 1.0, f"a fresh proxy waited {elapsed:.2f} s behind {STUCK} stuck ones"
        assert size > cds_bytes  # the changed config (a new port each change)
    finally:
        for call in stuck:
            call.cancel()
        for ch in channels:
            await ch.close(grace=None)

    await until_streams(server, 0)
    released = await settled_rss(server.pid)
    assert released - baseline <= RELEASED_BOUND_MB, (
        f"{released - baseline:.0f} MB still held after the stuck streams closed "
        f"(held {held - baseline:.0f} MB while stuck)"
    )
