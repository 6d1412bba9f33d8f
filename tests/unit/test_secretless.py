"""A proxy without certificates (plain-text xDS) is served config that names no secret."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy_validate import envoy_validate
from google.protobuf import any_pb2
from sample_mesh import BACKEND, BACKEND_PROXY, meshed_model
from test_envoy_accepts_config import inlined_config
from test_security_mtls import dr, mesh_mode

from pyistiod import secretless_view
from pyistiod.secretless_view import SecretlessView, _body
from pyistiod.snapshot_builder import SnapshotBuilder
from translators.envoy.clusters import build_clusters
from translators.envoy.listeners.sidecar import build_listeners
from translators.envoy.tls.secretless import secretless_cluster, secretless_listener
from translators.mesh.model.policies import ClientTls, ClientTlsMode, MtlsMode, Policies
from xds_server import types
from xds_server.snapshot import Resource, ResourceSet, Snapshot

OUTBOUND = f"outbound|9080||{BACKEND}"


def plain_cluster(policies: Policies, name: str = OUTBOUND) -> cluster_pb2.Cluster:
    (found,) = [c for c in build_clusters(meshed_model(policies), BACKEND_PROXY) if c.name == name]
    return cluster_pb2.Cluster.FromString(secretless_cluster(found.SerializeToString()))


def inbound_8080(policies: Policies) -> bytes | None:
    (found,) = [
        v
        for v in build_listeners(meshed_model(policies), BACKEND_PROXY)
        if v.address.socket_address.address == BACKEND_PROXY.ip
        and v.address.socket_address.port_value == 8080
    ]
    return secretless_listener(found.SerializeToString())


def test_auto_mtls_keeps_only_the_plain_text_match() -> None:
    cluster = plain_cluster(Policies())
    assert [m.name for m in cluster.transport_socket_matches] == ["tlsMode-disabled"]
    assert not cluster.HasField("transport_socket")


def test_istio_mutual_becomes_plain_text_and_file_origination_stays() -> None:
    mutual = plain_cluster(dr(BACKEND, ClientTls(ClientTlsMode.ISTIO_MUTUAL)))
    assert mutual.transport_socket.name == "envoy.transport_sockets.raw_buffer"
    files = ClientTls(ClientTlsMode.SIMPLE, ca_certificates="/etc/ca.pem")
    simple = plain_cluster(dr(BACKEND, files))
    assert simple.transport_socket.name == "envoy.transport_sockets.tls"


def test_a_resource_without_tls_is_passed_on_as_is() -> None:
    (inbound,) = [c for c in build_clusters(meshed_model(), BACKEND_PROXY)
                  if c.name == "inbound|8080||"]  # fmt: skip
    body = inbound.SerializeToString()
    assert secretless_cluster(body) is body


def test_permissive_keeps_its_plain_text_chain_and_strict_is_not_opened() -> None:
    permissive = inbound_8080(Policies())
    assert permissive is not None
    chains = listener_pb2.Listener.FromString(permissive).filter_chains
    assert [c.filter_chain_match.transport_protocol for c in chains] == ["raw_buffer"]
    assert inbound_8080(mesh_mode(MtlsMode.STRICT)) is None


def test_the_view_converts_each_shared_part_once_and_envoy_accepts_the_result(
    tmp_path: Path,
) -> None:
    model = meshed_model(mesh_mode(MtlsMode.STRICT))
    snapshot = SnapshotBuilder(model).snapshot(BACKEND_PROXY)
    view = SecretlessView()
    plain = view.snapshot(snapshot)
    assert view.snapshot(snapshot).sets[types.CLUSTER] is plain.sets[types.CLUSTER]  # memoized
    assert plain.sets[types.ROUTE] is snapshot.sets[types.ROUTE]  # nothing to change: shared
    assert plain.version(types.CLUSTER) != snapshot.version(types.CLUSTER)
    assert types.SECRET not in plain.sets
    names = {r.name for r in plain.get(types.LISTENER)}
    assert f"{BACKEND_PROXY.ip}_8080" not in names  # STRICT: refused, not plain text
    assert not any(b"ROOTCA" in r.any_bytes for t in plain.sets for r in plain.get(t))
    config = inlined_config(BACKEND_PROXY, decoded(plain))
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_the_view_keeps_nothing_alive_once_its_snapshots_are_gone() -> None:
    """A part that needs no change maps to itself; the memo must not keep it (nor its set)
    alive by that value, or every reconnect and every config change leaks its parts."""
    view = SecretlessView()
    for policies in (Policies(), mesh_mode(MtlsMode.STRICT)):
        snapshot = SnapshotBuilder(meshed_model(policies)).snapshot(BACKEND_PROXY)
        plain = view.snapshot(snapshot)
        assert plain.sets[types.CLUSTER] is view.snapshot(snapshot).sets[types.CLUSTER]
        assert view._parts and view._sets
        del snapshot, plain
        gc.collect()
        assert (len(view._sets), len(view._parts)) == (0, 0)


@pytest.mark.parametrize("large", [True, False])
def test_a_new_large_part_converts_only_the_resources_no_recent_part_held(
    monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    """A config change rebuilds the shared outbound part; its unchanged clusters must not
    be parsed and converted again for it. A small part (a proxy's own) is not remembered
    per resource: the memo holds what the shared parts hold (invariant 4)."""
    if large:  # the sample mesh has a handful of clusters: make every part count as large
        monkeypatch.setattr(secretless_view, "MEMO_PART_MIN", 1)
    calls: list[bytes] = []

    def counted(body: bytes) -> bytes | None:
        calls.append(body)
        return secretless_cluster(body)

    monkeypatch.setitem(secretless_view._CONVERT, types.CLUSTER, counted)
    view = SecretlessView()
    clusters = SnapshotBuilder(meshed_model(mesh_mode(MtlsMode.STRICT))).snapshot(BACKEND_PROXY)
    first = view.snapshot(clusters).get(types.CLUSTER)
    original = clusters.get(types.CLUSTER)
    assert len(calls) == len(original)

    calls.clear()
    rebuilt = ResourceSet.of(types.CLUSTER, list(original))  # new part, the same resources
    again = view.snapshot(Snapshot.of([rebuilt])).get(types.CLUSTER)
    if not large:
        assert len(calls) == len(original) and view._recent == view._older == {}
        return
    assert calls == []
    assert again.version == view.snapshot(Snapshot.of([rebuilt])).get(types.CLUSTER).version
    assert [r.any_bytes for r in again] == [r.any_bytes for r in first]

    changed = cluster_pb2.Cluster.FromString(_body(next(iter(original))))
    changed.connect_timeout.seconds += 7
    edited = [Resource.of(types.CLUSTER, changed.name, changed), *list(original)[1:]]
    view.snapshot(Snapshot.of([ResourceSet.of(types.CLUSTER, edited)]))
    assert calls == [changed.SerializeToString(deterministic=True)]


MESSAGES = {
    types.CLUSTER: cluster_pb2.Cluster,
    types.ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    types.LISTENER: listener_pb2.Listener,
    types.ROUTE: route_pb2.RouteConfiguration,
}


def decoded(snapshot: Snapshot) -> dict[str, list[Any]]:
    return {
        type_url: [
            message.FromString(any_pb2.Any.FromString(r.any_bytes).value)
            for r in snapshot.get(type_url)
        ]
        for type_url, message in MESSAGES.items()
    }
