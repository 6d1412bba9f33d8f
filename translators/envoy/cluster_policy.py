"""A DestinationRule's traffic policy in Envoy cluster terms.

Invariants, as Istio's cluster builder (``applyTrafficPolicy``) does it:

1. Load balancer: ROUND_ROBIN, LEAST_REQUEST (and deprecated LEAST_CONN),
   RANDOM map to Envoy's policies of the same name; PASSTHROUGH makes the
   cluster ORIGINAL_DST (the caller's destination address, no endpoints);
   a consistent hash makes it RING_HASH (minimum ring size 1024 unless set,
   Istio's default) or MAGLEV. Unset leaves the cluster as it was.
2. Connection pool: circuit breaker thresholds start from Istio's defaults
   (every limit 2^32-1, ``track_remaining``) and take the pool's limits
   (``maxConnections``, ``http1MaxPendingRequests``, ``http2MaxRequests``,
   ``maxRetries``); ``connectTimeout``, ``tcpKeepalive``,
   ``maxRequestsPerConnection`` and ``idleTimeout`` go to their Envoy fields;
   ``h2UpgradePolicy: UPGRADE`` makes an HTTP/1 cluster speak HTTP/2.
3. Outlier detection: success-rate ejection off (``enforcing_success_rate``
   0), each consecutive-error count enforced at 100 % when positive;
   ``minHealthPercent`` becomes the panic threshold.
4. Pure: mutates only the cluster it is given.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import protocol_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import duration_pb2

from translators.mesh.model.traffic import (
    ConnectionPool,
    H2UpgradePolicy,
    HashAlgorithm,
    LoadBalancer,
    Millis,
    OutlierDetection,
    SimpleLb,
)
from translators.mesh.selection.traffic_policy import EffectivePolicy

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
DEFAULT_MINIMUM_RING_SIZE = 1024
"""Istio's ``ringHash.minimumRingSize`` default."""
MAX_UINT32 = 2**32 - 1

_SIMPLE = {
    SimpleLb.ROUND_ROBIN: cluster_pb2.Cluster.ROUND_ROBIN,
    SimpleLb.LEAST_REQUEST: cluster_pb2.Cluster.LEAST_REQUEST,
    SimpleLb.LEAST_CONN: cluster_pb2.Cluster.LEAST_REQUEST,
    SimpleLb.RANDOM: cluster_pb2.Cluster.RANDOM,
}


def duration(ms: Millis) -> duration_pb2.Duration:
    """A protobuf Duration of ``ms`` milliseconds."""
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def apply_traffic_policy(cluster: cluster_pb2.Cluster, policy: EffectivePolicy, http: bool) -> None:
    """Set the cluster's load balancing, connection pool and outlier detection (TLS aside)."""
    if policy.load_balancer is not None:
        _apply_load_balancer(cluster, policy.load_balancer)
    if policy.connection_pool is not None:
        _apply_connection_pool(cluster, policy.connection_pool, http)
    if policy.outlier_detection is not None:
        _apply_outlier_detection(cluster, policy.outlier_detection)


def _apply_load_balancer(cluster: cluster_pb2.Cluster, lb: LoadBalancer) -> None:
    if lb.consistent_hash is not None:
        ch = lb.consistent_hash
        if ch.algorithm is HashAlgorithm.MAGLEV:
            cluster.lb_policy = cluster_pb2.Cluster.MAGLEV
            if ch.maglev_table_size is not None:
                cluster.maglev_lb_config.table_size.value = ch.maglev_table_size
            else:
                cluster.maglev_lb_config.SetInParent()
        else:
            cluster.lb_policy = cluster_pb2.Cluster.RING_HASH
            size = ch.minimum_ring_size or DEFAULT_MINIMUM_RING_SIZE
            cluster.ring_hash_lb_config.minimum_ring_size.value = size
    elif lb.simple is SimpleLb.PASSTHROUGH:
        cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
        cluster.ClearField("eds_cluster_config")
        cluster.ClearField("load_assignment")
    elif lb.simple in _SIMPLE:
        cluster.lb_policy = _SIMPLE[lb.simple]


def _apply_connection_pool(cluster: cluster_pb2.Cluster, pool: ConnectionPool, http: bool) -> None:
    limits = circuit_breaker_pb2.CircuitBreakers.Thresholds(track_remaining=True)
    limits.max_connections.value = pool.max_connections or MAX_UINT32
    limits.max_pending_requests.value = pool.http1_max_pending_requests or MAX_UINT32
    limits.max_requests.value = pool.http2_max_requests or MAX_UINT32
    limits.max_retries.value = MAX_UINT32 if pool.max_retries is None else pool.max_retries
    cluster.circuit_breakers.CopyFrom(circuit_breaker_pb2.CircuitBreakers(thresholds=[limits]))
    if pool.connect_timeout is not None:
        cluster.connect_timeout.CopyFrom(duration(pool.connect_timeout))
    if pool.tcp_keepalive is not None:
        ka = cluster.upstream_connection_options.tcp_keepalive
        ka.SetInParent()
        if pool.tcp_keepalive.probes is not None:
            ka.keepalive_probes.value = pool.tcp_keepalive.probes
        if pool.tcp_keepalive.time is not None:
            ka.keepalive_time.value = max(1, pool.tcp_keepalive.time // 1000)
        if pool.tcp_keepalive.interval is not None:
            ka.keepalive_interval.value = max(1, pool.tcp_keepalive.interval // 1000)
    if http:
        _apply_http_options(cluster, pool)


def _apply_http_options(cluster: cluster_pb2.Cluster, pool: ConnectionPool) -> None:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    existing = cluster.typed_extension_protocol_options.get(HTTP_PROTOCOL_OPTIONS)
    if existing is not None:
        existing.Unpack(options)
    common = options.common_http_protocol_options
    if pool.max_requests_per_connection:
        common.max_requests_per_connection.value = pool.max_requests_per_connection
    if pool.idle_timeout is not None:
        common.idle_timeout.CopyFrom(duration(pool.idle_timeout))
    if pool.h2_upgrade_policy is H2UpgradePolicy.UPGRADE:
        options.explicit_http_config.http2_protocol_options.CopyFrom(
            protocol_pb2.Http2ProtocolOptions()
        )
    if options.ByteSize() == 0:
        return
    if options.WhichOneof("upstream_protocol_options") is None:
        # Envoy requires the protocol choice; an HTTP/1 port stays HTTP/1.
        options.explicit_http_config.http_protocol_options.SetInParent()
    cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Pack(options)


def _apply_outlier_detection(cluster: cluster_pb2.Cluster, od: OutlierDetection) -> None:
    out = outlier_detection_pb2.OutlierDetection()
    out.enforcing_success_rate.value = 0
    if od.consecutive_5xx_errors is not None:
        out.consecutive_5xx.value = od.consecutive_5xx_errors
        out.enforcing_consecutive_5xx.value = 100 if od.consecutive_5xx_errors > 0 else 0
    if od.consecutive_gateway_errors is not None:
        out.consecutive_gateway_failure.value = od.consecutive_gateway_errors
        enforcing = 100 if od.consecutive_gateway_errors > 0 else 0
        out.enforcing_consecutive_gateway_failure.value = enforcing
    if od.interval is not None:
        out.interval.CopyFrom(duration(od.interval))
    if od.base_ejection_time is not None:
        out.base_ejection_time.CopyFrom(duration(od.base_ejection_time))
    if od.max_ejection_percent is not None:
        out.max_ejection_percent.value = od.max_ejection_percent
    cluster.outlier_detection.CopyFrom(out)
    if od.min_health_percent is not None:
        cluster.common_lb_config.healthy_panic_threshold.value = od.min_health_percent
