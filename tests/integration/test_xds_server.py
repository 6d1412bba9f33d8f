"""The aio server and a raw gRPC client on loopback: the transport moves what the core decides."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from prometheus_client import REGISTRY
from structlog.testing import capture_logs
from xds_client import ADS, CDS, DELTA_ADS, FRONTEND, Running, node, open_stream, start

from pyistiod.cli import EXAMPLE_MESH
from pyistiod.registry import ProxyRegistry
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import ObjectKey, Protocol, Service, ServicePort
from translators.sources.files import load_dir
from xds_server import types
from xds_server.cache import SnapshotCache
from xds_server.transport.server import XdsServer
from xds_server.transport.stream import STOPPING_REASON

BACKEND_CLUSTER = "outbound|9080||backend.default.svc.cluster.local"


@pytest.fixture
def model() -> MeshModel:
    return load_dir(EXAMPLE_MESH).model


@pytest.fixture
async def running(model: MeshModel) -> AsyncIterator[Running]:
    r = await start(model)
    yield r
    await r.server.stop(0)


def with_backend_endpoint(model: MeshModel, address: str) -> MeshModel:
    eps = dict(model.endpoints)
    host = "backend.default.svc.cluster.local"
    eps[host] = eps[host] + tuple(replace(e, address=address) for e in eps[host])
    return MeshModel.build(model.services, eps, model.workloads.values())


async def test_sotw_ads_initial_ack_and_push(running: Running, model: MeshModel) -> None:
    async with running.channel() as ch:
        s = open_stream(ch, ADS)
        await s.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
        cds = await s.expect_response()
        names = {cluster_pb2.Cluster.FromString(r.value).name for r in cds.resources}
        assert BACKEND_CLUSTER in names and "inbound|8080||" in names
        assert cds.control_plane.identifier == "pyistiod-test"
        await s.send(
            discovery_pb2.DiscoveryRequest(
                type_url=types.CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
            )
        )
        await s.send(
            discovery_pb2.DiscoveryRequest(
                type_url=types.ENDPOINT, resource_names=[BACKEND_CLUSTER]
            )
        )
        eds = await s.expect_response()
        assert [r.type_url for r in eds.resources] == [types.ENDPOINT]
        await s.send(
            discovery_pb2.DiscoveryRequest(
                type_url=types.ENDPOINT,
                resource_names=[BACKEND_CLUSTER],
                version_info=eds.version_info,
                response_nonce=eds.nonce,
            )
        )
        await s.expect_no_response()
        running.registry.apply_model(with_backend_endpoint(model, "127.0.0.99"))
        pushed = await s.expect_response()
        assert pushed.type_url == types.ENDPOINT  # CDS did not change: not resent
        assert b"127.0.0.99" in pushed.resources[0].value
        await s.close()


async def test_nack_keeps_the_stream_and_is_not_answered(running: Running) -> None:
    async with running.channel() as ch:
        s = open_stream(ch, ADS)
        await s.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.LISTENER))
        lds = await s.expect_response()
        await s.send(
            discovery_pb2.DiscoveryRequest(
                type_url=types.LISTENER,
                response_nonce=lds.nonce,
                error_detail=status_pb2.Status(code=3, message="bad listener"),
            )
        )
        await s.expect_no_response()
        await s.send(discovery_pb2.DiscoveryRequest(type_url=types.CLUSTER))
        assert (await s.expect_response()).type_url == types.CLUSTER
        await s.close()


async def test_delta_ads_sends_only_changes(running: Running, model: MeshModel) -> None:
    async with running.channel() as ch:
        s = open_stream(ch, DELTA_ADS, delta=True)
        await s.send(
            discovery_pb2.DeltaDiscoveryRequest(
                node=node(), type_url=types.ENDPOINT, resource_names_subscribe=[BACKEND_CLUSTER]
            )
        )
        first = await s.expect_response()
        assert [r.name for r in first.resources] == [BACKEND_CLUSTER]
        await s.send(
            discovery_pb2.DeltaDiscoveryRequest(type_url=types.ENDPOINT, response_nonce=first.nonce)
        )
        await s.expect_no_response()
        running.registry.apply_model(with_backend_endpoint(model, "127.0.0.98"))
        update = await s.expect_response()
        assert [r.name for r in update.resources] == [BACKEND_CLUSTER]
        assert update.resources[0].version != first.resources[0].version
        await s.close()


async def test_per_type_service_serves_its_type_and_refuses_others(running: Running) -> None:
    async with running.channel() as ch:
        s = open_stream(ch, CDS)
        await s.send(discovery_pb2.DiscoveryRequest(node=node()))  # type_url implied
        assert (await s.expect_response()).type_url == types.CLUSTER
        await s.send(discovery_pb2.DiscoveryRequest(type_url=types.ROUTE))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.expect_response()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_type_is_ignored_and_the_stream_stays_up(running: Running) -> None:
    async with running.channel() as ch:
        s = open_stream(ch, ADS)
        await s.send(
            discovery_pb2.DiscoveryRequest(node=node(), type_url="type.googleapis.com/x.Y")
        )
        await s.expect_no_response()
        await s.send(discovery_pb2.DiscoveryRequest(type_url=types.CLUSTER))
        assert (await s.expect_response()).type_url == types.CLUSTER
        await s.close()


async def test_invalid_node_id_is_refused_with_the_reason(running: Running) -> None:
    async with running.channel() as ch:
        s = open_stream(ch, ADS)
        await s.send(
            discovery_pb2.DiscoveryRequest(node=node("not-a-node-id"), type_url=types.CLUSTER)
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.expect_response()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not-a-node-id" in (err.value.details() or "")


@pytest.mark.parametrize("first", [True, False])
async def test_bytes_that_are_not_a_request_end_the_stream_saying_so(
    running: Running, first: bool
) -> None:
    """SotW requests reach the stream as bytes (most are read without decoding them); bytes
    that do not decode end the stream with INVALID_ARGUMENT, the first one or a later one."""
    async with running.channel() as ch:
        call = ch.stream_stream(ADS, request_serializer=lambda b: b)()
        if not first:
            await call.write(
                _serialize(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            )
            await call.read()
        with capture_logs() as logs:
            await call.write(b"\x0a\x05ab")  # version_info running past the end
            with pytest.raises(grpc.aio.AioRpcError) as err:
                while True:
                    await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.value.details() or "").startswith("invalid DiscoveryRequest:")
    assert any("invalid DiscoveryRequest" in str(e) for e in logs)


async def test_a_node_id_too_long_is_refused_without_being_echoed(running: Running) -> None:
    long_id = FRONTEND.replace("frontend-0", "p" * 2000)
    async with running.channel() as ch:
        s = open_stream(ch, ADS)
        with capture_logs() as logs:
            await s.send(discovery_pb2.DiscoveryRequest(node=node(long_id), type_url=types.CLUSTER))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.expect_response()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert "has 2053 characters; at most 1024" in details and "ppp" not in details
    assert all(len(str(entry)) < 1000 for entry in logs)
    assert running.registry.nodes == {}


async def test_a_repeated_nack_is_counted_and_logged_once_and_clipped(running: Running) -> None:
    rejects = 'pilot_total_xds_rejects{type="lds"}'
    before = REGISTRY.get_sample_value("pilot_total_xds_rejects_total", {"type": "lds"}) or 0.0
    async with running.channel() as ch:
        s = open_stream(ch, ADS)
        await s.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.LISTENER))
        lds = await s.expect_response()
        detail = "x" * 1_000_000
        with capture_logs() as logs:
            for _ in range(20):
                await s.send(
                    discovery_pb2.DiscoveryRequest(
                        type_url=types.LISTENER,
                        response_nonce=lds.nonce,
                        error_detail=status_pb2.Status(code=3, message=detail),
                    )
                )
            await s.send(discovery_pb2.DiscoveryRequest(type_url=types.CLUSTER))
            assert (await s.expect_response()).type_url == types.CLUSTER
        await s.close()
    nacks = [entry for entry in logs if entry["event"] == "xds.nack"]
    assert len(nacks) == 1
    after = REGISTRY.get_sample_value("pilot_total_xds_rejects_total", {"type": "lds"})
    assert after == before + 1, rejects
    assert len(nacks[0]["error"]) < 1100 and nacks[0]["error"].endswith("more characters)")


async def test_a_second_server_on_a_taken_port_refuses_to_start(running: Running) -> None:
    other = XdsServer(running.cache, running.registry, "pyistiod-second")
    with pytest.raises(OSError, match=f"127.0.0.1:{running.port}"):
        await other.start(f"127.0.0.1:{running.port}")
    await other.stop(0)


async def test_disconnect_leaves_nothing_behind(running: Running) -> None:
    async with running.channel() as ch:
        streams = [open_stream(ch, ADS) for _ in range(3)]
        for i, s in enumerate(streams):
            node_id = FRONTEND if i < 2 else FRONTEND.replace("127.0.0.11", "127.0.0.12")
            await s.send(discovery_pb2.DiscoveryRequest(node=node(node_id), type_url=types.CLUSTER))
            await s.expect_response()
        assert len(running.registry.nodes) == 2
        assert running.cache.watch_count() == 3
        assert REGISTRY.get_sample_value("pilot_xds") == 3
        for s in streams:
            await s.close()
        for _ in range(100):
            if not running.registry.nodes and not running.cache.node_ids():
                break
            await asyncio.sleep(0.02)
    assert running.registry.nodes == {}
    assert running.cache.node_ids() == []
    assert running.cache.watch_count() == 0
    assert REGISTRY.get_sample_value("pilot_xds") == 0


async def test_a_stream_whose_proxy_hangs_up_is_freed_at_once(model: MeshModel) -> None:
    """A stream whose proxy hangs up (the soak's churn) is freed by reference counting: no
    cycle keeps it, and its subscriptions, until the collector gets to the oldest generations
    (every few minutes under load: the soak's steps). A stream the server aborts (the
    watchdog, a denial) is not: gRPC keeps the AbortError, whose traceback holds the
    handler's frames, in the call's state, a cycle only the collector frees."""
    running = await start(model)
    gc.collect()
    gc.disable()
    try:
        async with running.channel() as ch:
            streams = [open_stream(ch, ADS) for _ in range(3)]
            for i, s in enumerate(streams):
                who = FRONTEND.replace("frontend-0", f"proxy-{i}")
                await s.send(discovery_pb2.DiscoveryRequest(node=node(who), type_url=types.CLUSTER))
                await s.expect_response()
            ended = [weakref.ref(s) for s in running.server.live]
            assert len(ended) == 3
            for s in streams:
                await s.close()
            for _ in range(100):
                if not running.server.live:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)  # let the handlers' tasks finish
            assert [r() for r in ended] == [None, None, None]
    finally:
        gc.enable()
        await running.server.stop(0)


def with_services(model: MeshModel, count: int) -> MeshModel:
    extra = [
        Service(
            hostname=f"extra{i}.default.svc.cluster.local",
            namespace="default",
            name=f"extra{i}",
            ports=(ServicePort("http", 80, Protocol.HTTP),),
            source=ObjectKey("Service", "default", f"extra{i}"),
        )
        for i in range(count)
    ]
    return MeshModel.build([*model.services, *extra], model.endpoints, model.workloads.values())


async def test_a_proxy_that_never_acks_blocks_no_one_and_gets_no_backlog(
    running: Running, model: MeshModel
) -> None:
    async with running.channel() as ch:
        stuck, live = open_stream(ch, ADS), open_stream(ch, ADS)
        await stuck.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
        await stuck.expect_response()  # and never ACKs
        other = FRONTEND.replace("127.0.0.11", "127.0.0.12")
        await live.send(discovery_pb2.DiscoveryRequest(node=node(other), type_url=types.CLUSTER))
        response = await live.expect_response()
        for i in range(1, 31):
            running.registry.apply_model(with_services(model, i))
            await live.send(
                discovery_pb2.DiscoveryRequest(
                    type_url=types.CLUSTER,
                    version_info=response.version_info,
                    response_nonce=response.nonce,
                )
            )
            response = await live.expect_response()
            assert len(response.resources) == len(model.services) + i + 1  # + inbound|8080||
        await stuck.expect_no_response()
        await stuck.send(discovery_pb2.DiscoveryRequest(type_url=types.CLUSTER, response_nonce="1"))
        latest = await stuck.expect_response()  # its ACK releases only the newest state
        assert len(latest.resources) == len(response.resources)  # the 30th model
        await stuck.expect_no_response()
        await stuck.close()
        await live.close()


async def test_streams_that_never_read_are_closed_and_never_delay_a_new_proxy(
    model: MeshModel,
) -> None:
    """Twenty proxies that never read a big CDS, one push slot: a fresh proxy still gets its
    first response at once (it skips the queue), and the stuck streams, which answer nothing,
    are closed after ``stall_after``, which frees what gRPC held for them; the fresh one,
    which ACKs, stays."""
    cache = SnapshotCache()
    registry = ProxyRegistry(cache, with_services(model, 4000))  # CDS of about 1 MB
    server = XdsServer(cache, registry, "t", push_limit=1, stall_after=1.0)
    port, _ = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stuck = []
            for i in range(20):
                call = ch.stream_stream(ADS, request_serializer=_serialize)()
                who = FRONTEND.replace("frontend-0", f"stuck-{i}")
                first = discovery_pb2.DiscoveryRequest(node=node(who), type_url=types.CLUSTER)
                await call.write(first)
                stuck.append(call)  # and never read
            fresh = open_stream(ch, ADS)
            started = asyncio.get_running_loop().time()
            await fresh.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            cds = await fresh.expect_response()
            assert asyncio.get_running_loop().time() - started < 1.0
            await fresh.send(
                discovery_pb2.DiscoveryRequest(
                    type_url=types.CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
                )
            )
            for _ in range(100):
                if len(registry.nodes) == 1:
                    break
                await asyncio.sleep(0.05)
            assert set(registry.nodes) == {FRONTEND}  # the stuck ones are gone
            assert server.streams == 1
            for call in stuck:
                call.cancel()
            await fresh.close()
    finally:
        await server.stop(0)


async def test_a_write_the_peer_stopped_draining_is_given_up(model: MeshModel) -> None:
    """A peer whose transport lives but whose reader hangs: its HTTP/2 window stays full
    (64 KiB, BDP probing off), so the server's write of a 1 MB CDS never completes. The
    watchdog counts from the start of that write: after ``stall_after`` the node is
    forgotten and the stream does no more work."""
    cache = SnapshotCache()
    registry = ProxyRegistry(cache, with_services(model, 4000))
    server = XdsServer(cache, registry, "t", push_limit=1, stall_after=1.0)
    port, _ = await server.start("127.0.0.1:0")
    stingy = [("grpc.http2.bdp_probe", 0), ("grpc.max_receive_message_length", -1)]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=stingy) as ch:
            call = ch.stream_stream(ADS, request_serializer=_serialize)()
            await call.write(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            for _ in range(100):
                if FRONTEND in registry.nodes:
                    break
                await asyncio.sleep(0.02)
            assert FRONTEND in registry.nodes and server.live  # writing, and stuck
            with capture_logs() as logs:
                for _ in range(60):
                    if not registry.nodes and not server.live:
                        break
                    await asyncio.sleep(0.05)
            assert not registry.nodes and not server.live  # given up after about 1 s
            (closed,) = [e for e in logs if e["event"] == "xds.closed"]
            assert "took no response bytes for 1 s" in closed["reason"]
            call.cancel()
    finally:
        await server.stop(0)


async def test_streams_beyond_the_limit_are_refused_saying_so(model: MeshModel) -> None:
    cache = SnapshotCache()
    registry = ProxyRegistry(cache, model)
    server = XdsServer(cache, registry, "t", max_streams=1)
    port, _ = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            first = open_stream(ch, ADS)
            await first.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            await first.expect_response()
            second = open_stream(ch, ADS)  # only now: a stream starts when it is opened
            await second.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await second.expect_response()
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "too many xDS streams: 1 open, at most 1" in (err.value.details() or "")
            await first.close()
    finally:
        await server.stop(0)


def _serialize(message: discovery_pb2.DiscoveryRequest) -> bytes:
    return message.SerializeToString()


async def test_stopping_ends_every_stream_with_unavailable_and_no_traceback(
    model: MeshModel, caplog: pytest.LogCaptureFixture
) -> None:
    r = await start(model)
    async with r.channel() as ch:
        streams = [open_stream(ch, ADS) for _ in range(3)]
        for s in streams:
            await s.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            await s.expect_response()
        with capture_logs() as logs:
            await r.server.stop(5)
        for s in streams:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.expect_response()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert err.value.details() == STOPPING_REASON
    assert [e["streams"] for e in logs if e["event"] == "xds.stopping"] == [3]
    # gRPC logs "Exception not handled ..." with a traceback for a handler it has to cancel
    assert not [rec for rec in caplog.records if rec.name.startswith("grpc")]


async def test_streams_with_the_same_view_get_the_same_response_bytes(
    running: Running, model: MeshModel
) -> None:
    async with running.channel() as ch:
        streams = [open_stream(ch, ADS) for _ in range(2)]
        firsts = []
        for s in streams:
            await s.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
            firsts.append(await s.expect_response())
        assert firsts[0].nonce == firsts[1].nonce
        for s, cds in zip(streams, firsts, strict=True):
            await s.send(
                discovery_pb2.DiscoveryRequest(
                    type_url=types.CLUSTER, version_info=cds.version_info, response_nonce=cds.nonce
                )
            )
        running.registry.apply_model(
            MeshModel.build(
                (*model.services, replace(model.services[0], name="more", hostname="more.x")),
                model.endpoints,
                model.workloads.values(),
            )
        )
        pushed = [await s.expect_response() for s in streams]
        assert pushed[0].SerializeToString() == pushed[1].SerializeToString()
        assert pushed[0].nonce not in (firsts[0].nonce, "")
        responses = running.server.responses[False]
        assert len(responses) >= 2 and responses.held > 0
