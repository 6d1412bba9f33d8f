"""``benchmarks.floor_server`` sends pyistiod's bytes for proxy 0, a new version of what each
edited file feeds, once to each stream that watches it; push_latency measures against it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from envoy.service.discovery.v3 import discovery_pb2

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import push_latency
from benchmarks.floor_server import TYPES, Floor, _Stream
from benchmarks.mesh_gen import ROUTES_FILE, SERVICES_FILE, SLICES_FILE, Mesh, write_atomically
from benchmarks.sim_proxy import node_id
from pyistiod.snapshot_builder import SnapshotBuilder
from translators.mesh.model.proxy import proxy_from_node
from translators.sources.files import load_dir
from xds_server.types import CLUSTER, ENDPOINT, ROUTE


def _sotw(data: bytes) -> discovery_pb2.DiscoveryResponse:
    return discovery_pb2.DiscoveryResponse.FromString(data)


def _delta(data: bytes) -> discovery_pb2.DeltaDiscoveryResponse:
    return discovery_pb2.DeltaDiscoveryResponse.FromString(data)


def _queued(stream: _Stream) -> list[str | None]:
    """What the stream's writer would send now."""
    out = []
    while not stream.due.empty():
        out.append(type_url := stream.due.get_nowait())
        if type_url is not None:
            stream.queued.discard(type_url)
    return out


def test_serves_what_pyistiod_builds_for_proxy_zero(tmp_path: Path) -> None:
    Mesh(5).write(tmp_path)
    floor = Floor(tmp_path)
    model = load_dir(tmp_path).model
    snapshot = SnapshotBuilder(model).snapshot(proxy_from_node(node_id(0), {}, model))
    for type_url in TYPES:
        sotw, delta = (_sotw(floor.whole[type_url][0]), _delta(floor.whole[type_url][1]))
        assert (sotw.version_info, sotw.nonce, delta.nonce) == ("floor-1", "1", "1")
        assert (sotw.type_url, delta.type_url) == (type_url, type_url)
        assert len(sotw.resources) == len(snapshot.get(type_url)) > 0
        assert sorted(r.name for r in delta.resources) == snapshot.get(type_url).names()


def test_a_change_sends_what_changed_once_to_the_streams_that_watch_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        mesh = Mesh(5)
        mesh.write(tmp_path)
        floor = Floor(tmp_path)
        routes, clusters = _Stream(delta=False), _Stream(delta=True)
        for stream, type_url in ((routes, ROUTE), (clusters, CLUSTER)):
            stream.watched.add(type_url)
            assert len(floor.response(stream, type_url)) > 0  # the first: every resource
            floor.streams.add(stream)

        write_atomically(tmp_path / ROUTES_FILE, mesh.edit_timeout(0))
        assert floor.reload() == (ROUTE,)
        assert floor.reload() == ()  # nothing new: nothing sent
        assert _queued(routes) == [ROUTE]
        assert _queued(clusters) == []
        change = _sotw(floor.response(routes, ROUTE))
        assert (change.version_info, len(change.resources)) == ("floor-2", 1)
        fresh = _Stream(delta=False)
        assert _sotw(floor.response(fresh, ROUTE)).resources == change.resources

        write_atomically(tmp_path / SLICES_FILE, mesh.move_endpoint(0))
        assert floor.reload() == (ENDPOINT,)
        assert len(_sotw(floor.changes[ENDPOINT][0]).resources) == 1  # only what changed
        assert len(_delta(floor.changes[ENDPOINT][1]).resources) == 1
        assert len(_sotw(floor.whole[ENDPOINT][0]).resources) == 5  # a fresh stream's

        write_atomically(tmp_path / SERVICES_FILE, mesh.add_port(0))
        assert floor.reload() == TYPES
        assert _queued(clusters) == [CLUSTER]
        assert len(_sotw(floor.changes[CLUSTER][0]).resources) == 6  # SotW CDS: whole
        assert len(_delta(floor.response(clusters, CLUSTER)).resources) == 1  # the new one
        assert len(_sotw(floor.changes[ROUTE][0]).resources) == 1  # the new port's

    asyncio.run(scenario())


def test_push_latency_refuses_what_the_floor_cannot_serve(tmp_path: Path) -> None:
    cfg = push_latency.RunConfig(services=5, proxies=2, tls=True, server="floor")
    with pytest.raises(ValueError, match="plain port"):
        push_latency._start(cfg, tmp_path, tmp_path / "log", 5.0)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["sotw", "delta"])
def test_push_latency_measures_the_floor(mode: str) -> None:
    cfg = push_latency.RunConfig(
        services=20,
        proxies=10,
        mode=mode,
        server="floor",
        load_workers=2,
        storm_timeout=20,
        change_timeout=10,
        run_timeout=60,
    )
    result = push_latency.run(cfg, progress=False)

    assert result["server"] == "floor"
    assert (result["storm"]["converged"], result["storm"]["error_count"]) == (10, 0)
    changes = result["changes"]
    for name in ("endpoint", "vs", "route"):
        assert changes[name]["converged"] == 10, changes[name]
        assert changes[name]["latency"]["p50"] >= cfg.debounce_after
    assert changes["endpoint"]["types"] == ["eds"]
    assert changes["vs"]["types"] == ["rds"]
    # One endpoint resource against the whole route configuration.
    assert changes["endpoint"]["bytes_per_proxy"]["p50"] < changes["vs"]["bytes_per_proxy"]["p50"]
