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


def _cds(nonce: str, clusters: dict[str, int]) -> discovery_pb2.DeltaDiscoveryResponse:
    resp = discovery_pb2.DeltaDiscoveryResponse(type_url=CLUSTER, nonce=nonce)
    for name, kind in clusters.items():
        entry = resp.resources.add(name=name, version=f"v-{name}")
        entry.resource.Pack(cluster_pb2.Cluster(name=name, type=kind))
    return resp


EDS, STATIC = cluster_pb2.Cluster.EDS, cluster_pb2.Cluster.STATIC


def test_a_fresh_proxy_acks_then_subscribes_to_exactly_the_eds_clusters() -> None:
    proxy = DeltaProxy(0)
    resp = _cds("n1", {"b": EDS, "static": STATIC, "a": EDS})
    ack, subscribe = proxy.on_response(resp, 0, 0.0)
    assert (ack.type_url, ack.response_nonce) == (CLUSTER, "n1")
    assert subscribe.type_url == ENDPOINT
    assert list(subscribe.resource_names_subscribe) == ["a", "b"]
    assert proxy.eds == {"a", "b"}


def test_responses_that_differ_only_in_their_nonce_share_one_answer() -> None:
    first, second = _cds("n1", {"x": EDS}), _cds("n2", {"x": EDS})
    assert delta_eds(first) is delta_eds(second)
    assert (first.nonce, second.nonce) == ("n1", "n2")  # the nonce is left as it came


def test_responses_with_other_clusters_get_their_own_answer() -> None:
    names, _ = delta_eds(_cds("n1", {"x": EDS, "y": EDS}))
    other, _ = delta_eds(_cds("n1", {"x": EDS, "y": STATIC}))
    assert (names, other) == ({"x", "y"}, {"x"})


def test_a_later_response_subscribes_only_to_new_clusters_and_drops_removed_ones() -> None:
    proxy = DeltaProxy(0)
    proxy.on_response(_cds("n1", {"a": EDS, "b": EDS}), 0, 0.0)
    later = _cds("n2", {"c": EDS})
    later.removed_resources.append("a")
    _, subscribe = proxy.on_response(later, 0, 0.0)
    assert list(subscribe.resource_names_subscribe) == ["c"]
    assert list(subscribe.resource_names_unsubscribe) == ["a"]
    assert proxy.eds == {"b", "c"}
