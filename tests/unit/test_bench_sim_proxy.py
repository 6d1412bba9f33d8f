"""The simulated sidecars of the load generator: a delta CDS response is answered as Envoy
answers it, and the memo that keeps that cheap never takes one response for another."""

from __future__ import annotations

import sys
from pathlib import Path

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2

from xds_server.types import CLUSTER, ENDPOINT

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.sim_proxy import DeltaProxy, delta_eds
from benchmarks.sim_wire import Response, read

EDS, STATIC = cluster_pb2.Cluster.EDS, cluster_pb2.Cluster.STATIC


def _cds(nonce: str, clusters: dict[str, int], removed: tuple[str, ...] = ()) -> Response:
    """A delta CDS response, as received."""
    resp = discovery_pb2.DeltaDiscoveryResponse(
        type_url=CLUSTER, nonce=nonce, removed_resources=removed
    )
    for name, kind in clusters.items():
        entry = resp.resources.add(name=name, version=f"v-{name}")
        entry.resource.Pack(cluster_pb2.Cluster(name=name, type=kind))
    return read(resp.SerializeToString(), delta=True)


def _requests(sent: list[bytes]) -> list[discovery_pb2.DeltaDiscoveryRequest]:
    return [discovery_pb2.DeltaDiscoveryRequest.FromString(r) for r in sent]


def test_a_fresh_proxy_acks_then_subscribes_to_exactly_the_eds_clusters() -> None:
    proxy = DeltaProxy(0)
    sent = proxy.on_response(_cds("n1", {"b": EDS, "static": STATIC, "a": EDS}), 0.0)
    ack, subscribe = _requests(sent)
    assert (ack.type_url, ack.response_nonce) == (CLUSTER, "n1")
    assert subscribe.type_url == ENDPOINT
    assert list(subscribe.resource_names_subscribe) == ["a", "b"]
    assert proxy.eds == {"a", "b"}
    assert proxy.bytes_received > 0


def test_equal_bytes_share_one_answer_and_other_content_gets_its_own() -> None:
    names, _ = delta_eds(_cds("n1", {"x": EDS, "y": EDS}))
    again, _ = delta_eds(_cds("n1", {"x": EDS, "y": EDS}))
    other, _ = delta_eds(_cds("n1", {"x": EDS, "y": STATIC}))
    renonced, _ = delta_eds(_cds("n2", {"x": EDS}))
    assert again is names
    assert (names, other, renonced) == ({"x", "y"}, {"x"}, {"x"})


def test_a_later_response_subscribes_only_to_new_clusters_and_drops_removed_ones() -> None:
    proxy = DeltaProxy(0)
    proxy.on_response(_cds("n1", {"a": EDS, "b": EDS}), 0.0)
    _, subscribe = _requests(proxy.on_response(_cds("n2", {"c": EDS}, removed=("a",)), 0.0))
    assert list(subscribe.resource_names_subscribe) == ["c"]
    assert list(subscribe.resource_names_unsubscribe) == ["a"]
    assert proxy.eds == {"b", "c"}
