"""The registry publishes a whole model or nothing."""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest

from pyistiod.cli import EXAMPLE_MESH
from pyistiod.registry import ProxyRegistry
from pyistiod.snapshot_builder import SnapshotBuilder
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy
from translators.sources.files import load_dir
from xds_server import types
from xds_server.cache import SnapshotCache
from xds_server.snapshot import Snapshot
from xds_server.transport.convert import NodeInfo

FRONT = "sidecar~127.0.0.11~frontend-0.default~default.svc.cluster.local"
BACK = "sidecar~127.0.0.21~backend-0.default~default.svc.cluster.local"


class FailsForBackend(SnapshotBuilder):
    """Fails to translate the empty model for backend-0 only, after frontend-0 succeeded."""

    def snapshot(self, proxy: Proxy) -> Snapshot:
        if proxy.pod_name == "backend-0" and not self.model.services:
            raise RuntimeError("translator bug")
        return super().snapshot(proxy)


async def test_failed_translation_publishes_nothing() -> None:
    cache = SnapshotCache()
    model = load_dir(EXAMPLE_MESH).model
    registry = ProxyRegistry(cache, model, builder_factory=FailsForBackend)
    for node in (FRONT, BACK):
        await registry.connect(NodeInfo(node, {}))
    before = {n: cache.snapshot(n) for n in (FRONT, BACK)}
    with pytest.raises(RuntimeError):
        registry.apply_model(MeshModel())
    assert {n: cache.snapshot(n) for n in (FRONT, BACK)} == before
    assert registry.model is model


async def test_proxies_with_equal_views_share_resource_objects() -> None:
    cache = SnapshotCache()
    registry = ProxyRegistry(cache, load_dir(EXAMPLE_MESH).model)
    for node in (FRONT, BACK):
        await registry.connect(NodeInfo(node, {}))
    front, back = cache.snapshot(FRONT), cache.snapshot(BACK)
    assert front is not None and back is not None
    shared = "outbound|9080||backend.default.svc.cluster.local"
    assert front.get(types.CLUSTER).get(shared) is back.get(types.CLUSTER).get(shared)
    assert front.get(types.ENDPOINT).get(shared) is back.get(types.ENDPOINT).get(shared)
    assert front.get(types.ROUTE).get("9080") is back.get(types.ROUTE).get("9080")
    assert front.get(types.LISTENER).version != back.get(types.LISTENER).version


async def test_endpoint_only_change_reuses_every_other_part() -> None:
    cache = SnapshotCache()
    model = load_dir(EXAMPLE_MESH).model
    registry = ProxyRegistry(cache, model)
    await registry.connect(NodeInfo(FRONT, {}))
    before = cache.snapshot(FRONT)
    eps = dict(model.endpoints)
    host = "backend.default.svc.cluster.local"
    eps[host] = tuple(replace(e, address="127.0.0.99") for e in eps[host])
    registry.apply_model(MeshModel.build(model.services, eps, model.workloads.values()))
    after = cache.snapshot(FRONT)
    assert before is not None and after is not None
    for t in (types.LISTENER, types.ROUTE):
        assert after.get(t).parts == before.get(t).parts  # reused, not rebuilt
    assert after.get(types.CLUSTER).version == before.get(types.CLUSTER).version
    assert after.get(types.ENDPOINT).version != before.get(types.ENDPOINT).version


async def test_disconnected_proxy_parts_are_forgotten() -> None:
    cache = SnapshotCache()
    registry = ProxyRegistry(cache, load_dir(EXAMPLE_MESH).model)
    await registry.connect(NodeInfo(FRONT, {}))
    await registry.connect(NodeInfo(BACK, {}))
    parts = len(registry.builder._parts)
    registry.disconnect(BACK)
    assert len(registry.builder._parts) == parts - 3  # inbound clusters and listeners, outbound
    assert registry.builder._owned.keys() == {registry.nodes[FRONT].proxy}


async def test_a_proxy_named_by_two_nodes_is_forgotten_with_the_last_of_them() -> None:
    """Two node IDs may be one proxy (here by the NAMESPACE metadata); its parts go with
    the last node, also when a change of workloads made its Proxy anew."""
    cache = SnapshotCache()
    model = load_dir(EXAMPLE_MESH).model
    registry = ProxyRegistry(cache, model)
    alias = FRONT.replace(".default~", ".elsewhere~")
    await registry.connect(NodeInfo(FRONT, {}))
    await registry.connect(NodeInfo(alias, {"NAMESPACE": "default"}))
    proxy = registry.nodes[FRONT].proxy
    assert registry.nodes[alias].proxy == proxy
    parts = len(registry.builder._parts)
    registry.disconnect(FRONT)
    assert len(registry.builder._parts) == parts and proxy in registry.builder._owned
    registry.disconnect(alias)
    assert registry.builder._owned == {}

    await registry.connect(NodeInfo(FRONT, {}))
    await registry.connect(NodeInfo(alias, {"NAMESPACE": "default"}))
    relabelled = [
        replace(w, labels=w.labels | {("track", "new")}) if w.name == "frontend-0" else w
        for w in model.workloads.values()
    ]
    registry.apply_model(MeshModel.build(model.services, model.endpoints, relabelled))
    new = registry.nodes[FRONT].proxy
    assert new != proxy and registry.nodes[alias].proxy == new
    registry.disconnect(alias)
    assert new in registry.builder._owned
    registry.disconnect(FRONT)
    assert registry.builder._owned == {}


async def test_unaffected_proxies_are_not_republished() -> None:
    cache = SnapshotCache()
    model = load_dir(EXAMPLE_MESH).model
    registry = ProxyRegistry(cache, model)
    await registry.connect(NodeInfo(FRONT, {}))
    before = cache.snapshot(FRONT)
    woken: list[str] = []
    cancel = cache.watch(FRONT, lambda: woken.append("x"))
    registry.apply_model(MeshModel.build(model.services, model.endpoints, model.workloads.values()))
    assert cache.snapshot(FRONT) is before and woken == []
    cancel()


async def test_reconnects_and_changes_leave_nothing_behind() -> None:
    """Per-node state ends with the node's last stream, and what is kept for plain-text
    proxies follows the snapshots served: it does not grow with connections ever made
    nor with changes applied (the soak's churn)."""
    cache = SnapshotCache()
    model = load_dir(EXAMPLE_MESH).model
    registry = ProxyRegistry(cache, model)
    host = "backend.default.svc.cluster.local"
    sizes = []
    for round_ in range(4):
        cancels = []
        for node in (FRONT, BACK):  # as a stream does: connect, watch; unwatch, disconnect
            await registry.connect(NodeInfo(node, {}))
            cancels.append(cache.watch(node, lambda: None))
        eps = dict(model.endpoints)
        eps[host] = tuple(replace(e, address=f"127.0.0.{90 + round_}") for e in eps[host])
        registry.apply_model(MeshModel.build(model.services, eps, model.workloads.values()))
        for node, cancel in zip((FRONT, BACK), cancels, strict=True):
            cancel()
            registry.disconnect(node)
        assert registry.nodes == {} and cache.node_ids() == [] and registry.builder._owned == {}
        gc.collect()
        sizes.append((len(registry.secretless._sets), len(registry.secretless._parts)))
    assert len(set(sizes)) == 1, sizes
