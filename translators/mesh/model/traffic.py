"""DestinationRule traffic settings: load balancing, connection pool, outlier detection.

The typed, frozen part of ``trafficPolicy`` beside TLS (which stays in
``policies``, since mTLS reads it). Invariants:

1. Durations are whole milliseconds (``Millis``): Istio refuses durations
   finer than a millisecond, so nothing is lost and values stay hashable.
2. ``None`` means "not set": the translator leaves Envoy's (or Istio's)
   default in place. Zero is a value, never "unset".
3. A ``LoadBalancer`` is either ``simple`` or ``consistent_hash``, never
   both (the parser refuses both, as Istio's oneof does).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

Millis = int
"""A duration in whole milliseconds."""


class SimpleLb(enum.Enum):
    """``loadBalancer.simple``; LEAST_CONN is Istio's deprecated name for LEAST_REQUEST."""

    UNSPECIFIED = "UNSPECIFIED"
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_REQUEST = "LEAST_REQUEST"
    LEAST_CONN = "LEAST_CONN"
    RANDOM = "RANDOM"
    PASSTHROUGH = "PASSTHROUGH"


class HashKey(enum.Enum):
    """What ``consistentHash`` hashes on."""

    HEADER = "httpHeaderName"
    COOKIE = "httpCookie"
    SOURCE_IP = "useSourceIp"
    QUERY_PARAMETER = "httpQueryParameterName"


class HashAlgorithm(enum.Enum):
    """The consistent-hash ring Envoy builds: RING_HASH (Istio's default) or MAGLEV."""

    RING_HASH = "ringHash"
    MAGLEV = "maglev"


@dataclass(frozen=True, slots=True)
class ConsistentHash:
    """``loadBalancer.consistentHash``: ``name`` is the header, cookie or query parameter."""

    key: HashKey
    name: str = ""
    cookie_ttl: Millis | None = None
    cookie_path: str = ""
    algorithm: HashAlgorithm = HashAlgorithm.RING_HASH
    minimum_ring_size: int | None = None
    """``ringHash.minimumRingSize`` (or the deprecated top-level ``minimumRingSize``)."""
    maglev_table_size: int | None = None


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    """``trafficPolicy.loadBalancer``."""

    simple: SimpleLb | None = None
    consistent_hash: ConsistentHash | None = None


class H2UpgradePolicy(enum.Enum):
    """``connectionPool.http.h2UpgradePolicy``."""

    DEFAULT = "DEFAULT"
    DO_NOT_UPGRADE = "DO_NOT_UPGRADE"
    UPGRADE = "UPGRADE"


@dataclass(frozen=True, slots=True)
class TcpKeepalive:
    """``connectionPool.tcp.tcpKeepalive``."""

    probes: int | None = None
    time: Millis | None = None
    interval: Millis | None = None


@dataclass(frozen=True, slots=True)
class ConnectionPool:
    """``trafficPolicy.connectionPool``: Envoy circuit breakers and connection options."""

    max_connections: int | None = None
    connect_timeout: Millis | None = None
    tcp_keepalive: TcpKeepalive | None = None
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout: Millis | None = None
    h2_upgrade_policy: H2UpgradePolicy = H2UpgradePolicy.DEFAULT


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    """``trafficPolicy.outlierDetection``."""

    consecutive_5xx_errors: int | None = None
    consecutive_gateway_errors: int | None = None
    interval: Millis | None = None
    base_ejection_time: Millis | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None
