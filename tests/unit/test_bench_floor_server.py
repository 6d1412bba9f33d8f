"""``benchmarks.floor_server`` sends pyistiod's bytes for proxy 0: a new version of what each
edit changed, once, to the streams that asked for those names; push_latency measures it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import push_latency
from benchmarks.floor_server import TYPES, Floor, _Stream
from benchmarks.mesh_gen import ROUTES_FILE, SERVICES_FILE, SLICES_FILE, Mesh, write_atomically
from benchmarks.sim_proxy import node_id
from benchmarks.sim_wire import delta_request, sotw_request
from pyistiod.secretless_view import SecretlessView
from pyistiod.snapshot_builder import SnapshotBuilder
from translators.mesh.model.proxy import proxy_from_node
from translators.sources.files import load_dir
from xds_server.snapshot import Resource
from xds_server.types import CLUSTER, ENDPOINT, ROUTE

SVC0_CLUSTER = "outbound|8080||svc-0.default.svc.cluster.local"
NEW_CLUSTER = "outbound|9090||svc-0.default.svc.cluster.local"


def _sotw(data: bytes | None) -> discovery_pb2.DiscoveryResponse:
    assert data is not None
    return discovery_pb2.DiscoveryResponse.FromString(data)


def _delta(data: bytes | None) -> discovery_pb2.DeltaDiscoveryResponse:
    assert data is not None
    return discovery_pb2.DeltaDiscoveryResponse.FromString(data)


def _value(resource: Resource) -> bytes:
    return any_pb2.Any.FromString(resource.any_bytes).value


def _names(response: discovery_pb2.DeltaDiscoveryResponse) -> list[str]:
    return sorted(r.name for r in response.resources)


def _queued(stream: _Stream) -> list[str | None]:
    """The types queued for the stream's writer (taken off its queue)."""
    out = []
    while not stream.due.empty():
        out.append(type_url := stream.due.get_nowait())
        if type_url is not None:
            stream.queued.discard(type_url)
    return out


def _edit(floor: Floor, config_dir: Path, file: str, text: str) -> tuple[str, ...]:
    write_atomically(config_dir / file, text)
    return floor.apply(floor.loader.read())


def _subscribed(floor: Floor, delta: bool, names: dict[str, tuple[str, ...]]) -> _Stream:
    """A stream that asked for ``names`` per type and was sent each type's first response."""
    stream = _Stream(delta=delta)
    floor.streams.add(stream)
    for type_url, wanted in names.items():
        if delta:
            floor.on_request(stream, delta_request(type_url, subscribe=wanted))
        else:
            floor.on_request(stream, sotw_request(type_url, names=wanted))
    for type_url in _queued(stream):
        assert type_url is not None
        floor.response(stream, type_url)
    return stream


def test_serves_what_pyistiod_builds_for_proxy_zero(tmp_path: Path) -> None:
    Mesh(5).write(tmp_path)
    floor = Floor.at(tmp_path)
    model = load_dir(tmp_path).model
    snapshot = SnapshotBuilder(model).snapshot(proxy_from_node(node_id(0), {}, model))
    plain = SecretlessView().snapshot(snapshot)  # what a plain-text stream is served
    for type_url in TYPES:
        sotw, delta = _sotw(floor.whole[type_url][0]), _delta(floor.whole[type_url][1])
        assert (sotw.version_info, sotw.nonce, delta.nonce) == ("floor-1", "1", "1")
        assert (sotw.type_url, delta.type_url) == (type_url, type_url)
        expected = sorted(_value(r) for r in plain.get(type_url))
        assert sorted(a.value for a in sotw.resources) == expected
        assert sorted(r.resource.value for r in delta.resources) == expected
        assert len(expected) > 0


def test_a_change_goes_once_to_the_streams_that_asked_for_what_changed(tmp_path: Path) -> None:
    mesh = Mesh(5, service_ports=2)  # route configurations 8080 and 8081
    mesh.write(tmp_path)
    floor = Floor.at(tmp_path)
    on_8080 = _subscribed(floor, False, {ROUTE: ("8080", "8081")})
    on_8081 = _subscribed(floor, True, {ROUTE: ("8081",)})
    clusters = _subscribed(floor, False, {CLUSTER: ()})

    assert _edit(floor, tmp_path, ROUTES_FILE, mesh.edit_timeout(0)) == (ROUTE,)
    assert floor.apply(floor.loader.read()) == ()  # nothing new: nothing sent
    assert _queued(on_8080) == [ROUTE]
    assert _queued(on_8081) == _queued(clusters) == []
    sent = floor.response(on_8080, ROUTE)
    assert sent is floor.changes[ROUTE][0]  # the one response every such stream shares
    change = _sotw(sent)
    assert (change.version_info, len(change.resources)) == ("floor-2", 1)
    assert floor.response(on_8080, ROUTE) is None  # it holds this version now
    fresh = _subscribed(floor, False, {})
    assert len(_sotw(floor.response(fresh, ROUTE)).resources) == 2  # every resource

    assert _edit(floor, tmp_path, SLICES_FILE, mesh.move_endpoint(0)) == (ENDPOINT,)
    assert len(_sotw(floor.changes[ENDPOINT][0]).resources) == 1
    assert len(_sotw(floor.whole[ENDPOINT][0]).resources) == 5


def test_a_new_port_is_sent_once_the_proxy_asks_for_it(tmp_path: Path) -> None:
    mesh = Mesh(5)
    mesh.write(tmp_path)
    floor = Floor.at(tmp_path)
    sotw_names = tuple(sorted(floor.sets[ENDPOINT].names()))
    sotw = _subscribed(floor, False, {CLUSTER: (), ENDPOINT: sotw_names})
    delta = _subscribed(floor, True, {CLUSTER: (), ENDPOINT: sotw_names})

    assert _edit(floor, tmp_path, SERVICES_FILE, mesh.add_port(0)) == TYPES
    assert _queued(sotw) == _queued(delta) == [CLUSTER]  # not EDS: nobody asked for it yet
    assert len(_sotw(floor.response(sotw, CLUSTER)).resources) == 6  # SotW CDS: whole
    assert _names(_delta(floor.response(delta, CLUSTER))) == [NEW_CLUSTER]

    floor.on_request(sotw, sotw_request(ENDPOINT, names=(*sotw_names, NEW_CLUSTER)))
    floor.on_request(delta, delta_request(ENDPOINT, subscribe=[NEW_CLUSTER]))
    assert _queued(sotw) == _queued(delta) == [ENDPOINT]
    added = floor.sets[ENDPOINT].get(NEW_CLUSTER)
    assert added is not None
    new = _value(added)
    assert [a.value for a in _sotw(floor.response(sotw, ENDPOINT)).resources] == [new]
    assert _names(_delta(floor.response(delta, ENDPOINT))) == [NEW_CLUSTER]


def test_a_repeated_ack_changes_nothing_and_a_stream_far_behind_gets_the_removals(
    tmp_path: Path,
) -> None:
    mesh = Mesh(5)
    mesh.write(tmp_path)
    floor = Floor.at(tmp_path)
    names = tuple(sorted(floor.sets[ENDPOINT].names()))
    stream = _subscribed(floor, False, {ENDPOINT: names})
    floor.on_request(stream, sotw_request(ENDPOINT, version="floor-1", nonce="1", names=names))
    assert _queued(stream) == []

    behind = _subscribed(floor, True, {ENDPOINT: names})
    _edit(floor, tmp_path, SERVICES_FILE, mesh.add_port(0))
    mesh.extra_ports.clear()
    _edit(floor, tmp_path, SERVICES_FILE, mesh.services_yaml())  # the port goes again
    whole = _delta(floor.response(behind, ENDPOINT))
    assert list(whole.removed_resources) == [NEW_CLUSTER]
    assert SVC0_CLUSTER in _names(whole)


def test_a_stream_ends_when_its_requests_fail(tmp_path: Path) -> None:
    Mesh(2).write(tmp_path)
    floor = Floor.at(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"\xff"  # not a DiscoveryRequest
        raise AssertionError("not read this far")

    stream = _Stream(delta=False)
    with pytest.raises(Exception, match="Error parsing message"):
        asyncio.run(floor._read(broken(), stream))
    assert _queued(stream) == [None]


def test_push_latency_refuses_what_the_floor_cannot_serve(tmp_path: Path) -> None:
    for cfg in (
        push_latency.RunConfig(services=5, proxies=2, tls=True, server="floor"),
        push_latency.RunConfig(services=5, proxies=2, server="istiod"),
    ):
        with pytest.raises(ValueError, match=r"floor|server"):
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
    assert changes["route"]["types"] == ["cds", "eds", "lds", "rds"]
    # One endpoint resource against the whole route configuration.
    assert changes["endpoint"]["bytes_per_proxy"]["p50"] < changes["vs"]["bytes_per_proxy"]["p50"]
