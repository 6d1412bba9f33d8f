"""DestinationRules in CDS and EDS: subset clusters, label-filtered CLAs, merged policies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from translators.envoy.clusters import build_outbound_clusters
from translators.envoy.endpoints import build_endpoints
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import (
    DestinationRule,
    Policies,
    PortTrafficPolicy,
    Subset,
    TrafficPolicy,
)
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.traffic import (
    ConnectionPool,
    ConsistentHash,
    H2UpgradePolicy,
    HashAlgorithm,
    HashKey,
    LoadBalancer,
    OutlierDetection,
    SimpleLb,
    TcpKeepalive,
)
from translators.mesh.selection.traffic_policy import consistent_hash, effective_policy
from translators.sources.files import load_dir

BOOKINFO = Path(__file__).parents[2] / "pyistiod" / "examples" / "bookinfo"
REVIEWS = "reviews.default.svc.cluster.local"
PROXY = Proxy(ProxyType.SIDECAR, "127.0.0.101", "productpage-v1", "default", "cluster.local")


def bookinfo() -> MeshModel:
    return load_dir(BOOKINFO).model


def with_rule(model: MeshModel, rule: DestinationRule) -> MeshModel:
    others = tuple(d for d in model.policies.destination_rules if d.host != rule.host)
    return replace(model, policies=Policies.build(destination_rules=(*others, rule)))


def clusters(model: MeshModel) -> dict[str, cluster_pb2.Cluster]:
    return {c.name: c for c in build_outbound_clusters(model)}


def test_subset_clusters_and_filtered_assignments() -> None:
    model = bookinfo()
    names = set(clusters(model))
    for subset in ("", "v1", "v2", "v3"):
        assert f"outbound|9080|{subset}|{REVIEWS}" in names
    subset_cluster = clusters(model)[f"outbound|9080|v2|{REVIEWS}"]
    assert subset_cluster.eds_cluster_config.service_name == f"outbound|9080|v2|{REVIEWS}"
    assert subset_cluster.metadata.filter_metadata["istio"]["subset"] == "v2"
    cla = {c.cluster_name: c for c in build_endpoints(model, PROXY)}

    def addresses(name: str) -> list[str]:
        return [
            e.endpoint.address.socket_address.address for e in cla[name].endpoints[0].lb_endpoints
        ]

    assert addresses(f"outbound|9080||{REVIEWS}") == ["127.0.0.103", "127.0.0.104", "127.0.0.105"]
    assert addresses(f"outbound|9080|v1|{REVIEWS}") == ["127.0.0.103"]
    assert addresses(f"outbound|9080|v3|{REVIEWS}") == ["127.0.0.105"]
    # ratings v2 has no pod: its subset cluster exists with an empty assignment
    assert addresses("outbound|9080|v2|ratings.default.svc.cluster.local") == []


POLICY = TrafficPolicy(
    load_balancer=LoadBalancer(SimpleLb.ROUND_ROBIN),
    port_level=(PortTrafficPolicy(9080, load_balancer=LoadBalancer(SimpleLb.RANDOM)),),
)
SUBSET_POLICY = TrafficPolicy(
    connection_pool=ConnectionPool(max_connections=5),
    port_level=(
        PortTrafficPolicy(9080, outlier_detection=OutlierDetection(consecutive_5xx_errors=2)),
    ),
)


def test_merge_order_subset_port_over_subset_over_port_over_rule() -> None:
    rule = DestinationRule(
        "default",
        "r",
        REVIEWS,
        POLICY,
        (
            Subset("v1", frozenset({("version", "v1")}), SUBSET_POLICY),
            Subset(
                "v2",
                frozenset({("version", "v2")}),
                TrafficPolicy(connection_pool=ConnectionPool(max_connections=7)),
            ),
        ),
    )
    # rule's port level replaces the rule's settings wholesale on 9080
    assert effective_policy(rule, "", 9080).load_balancer == LoadBalancer(SimpleLb.RANDOM)
    assert effective_policy(rule, "", 80).load_balancer == LoadBalancer(SimpleLb.ROUND_ROBIN)
    # subset policy overrides per setting, inheriting the rule's (port-level) rest
    v2 = effective_policy(rule, "v2", 9080)
    assert v2.connection_pool == ConnectionPool(max_connections=7)
    assert v2.load_balancer == LoadBalancer(SimpleLb.RANDOM)
    # subset port level replaces the subset's settings wholesale, still inheriting the rule's
    v1 = effective_policy(rule, "v1", 9080)
    assert v1.outlier_detection == OutlierDetection(consecutive_5xx_errors=2)
    assert v1.connection_pool is None
    assert v1.load_balancer == LoadBalancer(SimpleLb.RANDOM)
    model = with_rule(bookinfo(), rule)
    c = clusters(model)
    assert c[f"outbound|9080||{REVIEWS}"].lb_policy == cluster_pb2.Cluster.RANDOM
    assert (
        c[f"outbound|9080|v2|{REVIEWS}"].circuit_breakers.thresholds[0].max_connections.value == 7
    )
    assert c[f"outbound|9080|v1|{REVIEWS}"].outlier_detection.consecutive_5xx.value == 2
    assert not c[f"outbound|9080|v1|{REVIEWS}"].HasField("circuit_breakers")


def test_consistent_hash_follows_istio_precedence() -> None:
    header = LoadBalancer(None, ConsistentHash(HashKey.HEADER, "x-user"))
    cookie = LoadBalancer(None, ConsistentHash(HashKey.COOKIE, "c", 10_000, "/"))
    rule = DestinationRule(
        "default",
        "r",
        REVIEWS,
        TrafficPolicy(load_balancer=header, port_level=(PortTrafficPolicy(9080),)),
        (Subset("v1", frozenset({("version", "v1")}), TrafficPolicy(load_balancer=cookie)),),
    )
    # a port entry without a hash keeps the rule's hash for routes (Istio's hashForHTTPDestination)
    assert consistent_hash(rule, "", 9080) == header.consistent_hash
    assert consistent_hash(rule, "v1", 9080) == cookie.consistent_hash
    model = with_rule(bookinfo(), replace(rule, traffic_policy=TrafficPolicy(load_balancer=header)))
    c = clusters(model)
    ring = c[f"outbound|9080||{REVIEWS}"]
    assert ring.lb_policy == cluster_pb2.Cluster.RING_HASH
    assert ring.ring_hash_lb_config.minimum_ring_size.value == 1024


def test_maglev_and_passthrough_and_simple() -> None:
    maglev = LoadBalancer(
        None,
        ConsistentHash(HashKey.SOURCE_IP, algorithm=HashAlgorithm.MAGLEV, maglev_table_size=65537),
    )
    rule = DestinationRule(
        "default",
        "r",
        REVIEWS,
        TrafficPolicy(load_balancer=LoadBalancer(SimpleLb.LEAST_CONN)),
        (
            Subset("v1", frozenset({("version", "v1")}), TrafficPolicy(load_balancer=maglev)),
            Subset(
                "v2",
                frozenset({("version", "v2")}),
                TrafficPolicy(load_balancer=LoadBalancer(SimpleLb.PASSTHROUGH)),
            ),
        ),
    )
    c = clusters(with_rule(bookinfo(), rule))
    assert c[f"outbound|9080||{REVIEWS}"].lb_policy == cluster_pb2.Cluster.LEAST_REQUEST
    v1 = c[f"outbound|9080|v1|{REVIEWS}"]
    assert v1.lb_policy == cluster_pb2.Cluster.MAGLEV
    assert v1.maglev_lb_config.table_size.value == 65537
    v2 = c[f"outbound|9080|v2|{REVIEWS}"]
    assert v2.type == cluster_pb2.Cluster.ORIGINAL_DST
    assert v2.lb_policy == cluster_pb2.Cluster.CLUSTER_PROVIDED
    assert not v2.HasField("eds_cluster_config")


def test_connection_pool_and_outlier_detection_in_envoy_terms() -> None:
    pool = ConnectionPool(
        max_connections=100,
        connect_timeout=250,
        tcp_keepalive=TcpKeepalive(3, 7_200_000, 75_000),
        http1_max_pending_requests=10,
        http2_max_requests=1000,
        max_requests_per_connection=1,
        max_retries=0,
        idle_timeout=3_600_000,
        h2_upgrade_policy=H2UpgradePolicy.UPGRADE,
    )
    outlier = OutlierDetection(7, 3, 300_000, 900_000, 50, 30)
    rule = DestinationRule(
        "default", "r", REVIEWS, TrafficPolicy(connection_pool=pool, outlier_detection=outlier)
    )
    c = clusters(with_rule(bookinfo(), rule))[f"outbound|9080||{REVIEWS}"]
    limits = c.circuit_breakers.thresholds[0]
    assert (
        limits.max_connections.value,
        limits.max_pending_requests.value,
        limits.max_requests.value,
        limits.max_retries.value,
    ) == (100, 10, 1000, 0)
    assert c.connect_timeout.ToMilliseconds() == 250
    keepalive = c.upstream_connection_options.tcp_keepalive
    assert (keepalive.keepalive_probes.value, keepalive.keepalive_time.value) == (3, 7200)
    options = http_protocol_options_pb2.HttpProtocolOptions()
    c.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ].Unpack(options)
    assert options.common_http_protocol_options.max_requests_per_connection.value == 1
    assert options.common_http_protocol_options.idle_timeout.seconds == 3600
    assert options.explicit_http_config.HasField("http2_protocol_options")
    od = c.outlier_detection
    assert (od.consecutive_5xx.value, od.enforcing_consecutive_5xx.value) == (7, 100)
    assert od.consecutive_gateway_failure.value == 3
    assert od.enforcing_success_rate.value == 0
    assert (od.interval.seconds, od.base_ejection_time.seconds) == (300, 900)
    assert od.max_ejection_percent.value == 50
    assert c.common_lb_config.healthy_panic_threshold.value == 30


@pytest.mark.parametrize("limit", [None, 5])
def test_unset_pool_limits_are_istio_defaults(limit: int | None) -> None:
    rule = DestinationRule(
        "default",
        "r",
        REVIEWS,
        TrafficPolicy(connection_pool=ConnectionPool(max_connections=limit)),
    )
    c = clusters(with_rule(bookinfo(), rule))[f"outbound|9080||{REVIEWS}"]
    limits = c.circuit_breakers.thresholds[0]
    assert limits.max_connections.value == (limit or 2**32 - 1)
    assert limits.max_requests.value == 2**32 - 1
    assert limits.track_remaining
