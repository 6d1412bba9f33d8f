"""An endpoint change rebuilds one service's resources and reuses every other's (snapshot_builder).

The per-service memo (invariant 6 of ``pyistiod.snapshot_builder``): what a proxy
already holds for the other services stays the very same serialized ``Resource``.
"""

from __future__ import annotations

from pathlib import Path

from pyistiod.snapshot_builder import SnapshotBuilder
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import proxy_from_node
from translators.sources.files import load_dir
from xds_server import types
from xds_server.snapshot import Resource, Snapshot

MESH = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec: {{ports: [{{name: http, port: 80}}], selector: {{app: {name}}}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints: [{{addresses: [{address}]}}]
"""

NODE = "sidecar~10.9.0.1~client-0.default~default.svc.cluster.local"


def model(tmp_path: Path, b_address: str) -> MeshModel:
    root = tmp_path / b_address
    root.mkdir()
    (root / "a.yaml").write_text(MESH.format(name="a", address="10.0.0.1"))
    (root / "b.yaml").write_text(MESH.format(name="b", address=b_address))
    return load_dir(root).model


def resources(snapshot: Snapshot, type_url: str) -> dict[str, Resource]:
    return {r.name: r for r in snapshot.get(type_url)}


def test_an_endpoint_change_reuses_every_other_services_resources(tmp_path: Path) -> None:
    before, after = model(tmp_path, "10.0.0.2"), model(tmp_path, "10.0.0.3")
    proxy = proxy_from_node(NODE, {}, before)
    first = SnapshotBuilder(before)
    old = first.snapshot(proxy)
    new = SnapshotBuilder(after, first).snapshot(proxy)
    a_cluster, b_cluster = (f"outbound|80||{s}.default.svc.cluster.local" for s in "ab")
    old_clusters, new_clusters = resources(old, types.CLUSTER), resources(new, types.CLUSTER)
    old_eds, new_eds = resources(old, types.ENDPOINT), resources(new, types.ENDPOINT)
    assert new_clusters[a_cluster] is old_clusters[a_cluster]  # not rebuilt, not re-serialized
    assert new_eds[a_cluster] is old_eds[a_cluster]
    assert new_eds[b_cluster].version != old_eds[b_cluster].version  # the change itself
    assert new_clusters[b_cluster].version == old_clusters[b_cluster].version  # same config
    assert new.version(types.CLUSTER) == old.version(types.CLUSTER)  # no CDS push


VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: routes, namespace: default}}
spec:
  hosts: [{host}.default.svc.cluster.local]
  {routes}
"""
TCP_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {ports: [{name: tcp, port: 5432}], selector: {app: db}}
"""


def routed_model(
    tmp_path: Path, name: str, routes: str, tcp: bool = False, host: str = "b"
) -> MeshModel:
    root = tmp_path / name
    root.mkdir()
    (root / "a.yaml").write_text(MESH.format(name="a", address="10.0.0.1"))
    (root / "b.yaml").write_text(MESH.format(name="b", address="10.0.0.2"))
    if tcp:
        (root / "db.yaml").write_text(TCP_SERVICE)
    (root / "vs.yaml").write_text(VIRTUAL_SERVICE.format(host=host, routes=routes))
    return load_dir(root).model


def outbound_listeners(snapshot: Snapshot) -> list[Resource]:
    return [r for r in snapshot.get(types.LISTENER) if not r.name.startswith("virtual")]


def test_a_virtual_service_edit_rebuilds_no_http_listener(tmp_path: Path) -> None:
    http = "http: [{timeout: 1s, route: [{destination: {host: b.default.svc.cluster.local}}]}]"
    before = routed_model(tmp_path, "before", http)
    after = routed_model(tmp_path, "after", http.replace("1s", "2s"))
    proxy = proxy_from_node(NODE, {}, before)
    first = SnapshotBuilder(before)
    old = first.snapshot(proxy)
    new = SnapshotBuilder(after, first).snapshot(proxy)
    assert new.version(types.ROUTE) != old.version(types.ROUTE)  # the edit itself
    assert [id(r) for r in outbound_listeners(new)] == [id(r) for r in outbound_listeners(old)]


def test_a_tcp_route_edit_still_rebuilds_the_tcp_listener(tmp_path: Path) -> None:
    def tcp(host: str) -> str:
        return f"tcp: [{{route: [{{destination: {{host: {host}}}}}]}}]"

    db, a = "db.default.svc.cluster.local", "a.default.svc.cluster.local"
    before = routed_model(tmp_path, "before", tcp(db), tcp=True, host="db")
    after = routed_model(tmp_path, "after", tcp(a), tcp=True, host="db")
    proxy = proxy_from_node(NODE, {}, before)
    first = SnapshotBuilder(before)
    old = first.snapshot(proxy)
    new = SnapshotBuilder(after, first).snapshot(proxy)
    assert new.version(types.LISTENER) != old.version(types.LISTENER)


def test_an_empty_part_is_memoized_like_any_other(tmp_path: Path) -> None:
    builder = SnapshotBuilder(model(tmp_path, "10.0.0.2"))
    builds = 0

    def build() -> list[Resource]:
        nonlocal builds
        builds += 1
        return []

    first = builder._part(types.CLUSTER, ("nothing here",), build)
    again = builder._part(types.CLUSTER, ("nothing here",), build)
    assert (builds, len(first)) == (1, 0)
    assert again is first
