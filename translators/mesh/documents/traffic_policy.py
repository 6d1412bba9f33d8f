"""Read a DestinationRule's ``loadBalancer``, ``connectionPool``, ``outlierDetection`` and subsets.

Called by ``policies.parse_destination_rule`` (which owns ``host``
and TLS). Invariants, following Istio's ``ValidateDestinationRule``:

1. ``loadBalancer`` sets ``simple`` or ``consistentHash``, not both;
   ``consistentHash`` sets exactly one hash key, and at most one of
   ``ringHash`` / ``maglev``.
2. Enum values (``simple``, ``h2UpgradePolicy``) must be ones Istio knows;
   durations are Istio durations (``networking_fields.duration``).
3. Subset names are unique DNS labels, each with at least one label, as
   Istio requires; a subset's policy is read with the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from translators.mesh.documents import fields as v
from translators.mesh.documents.networking_fields import duration, integer
from translators.mesh.model.policies import Subset, TrafficPolicy
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

PolicyReader = Callable[[v.Problems, object, str, list[str]], TrafficPolicy]
"""``policies``' traffic policy reader, passed in to read subset policies."""


def load_balancer(p: v.Problems, raw: object, field: str) -> LoadBalancer | None:
    """``loadBalancer`` (invariant 1); ``None`` when absent."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    simple = v.choice(p, m.get("simple"), f"{field}.simple", SimpleLb, SimpleLb.UNSPECIFIED)
    hashing = _consistent_hash(p, m.get("consistentHash"), f"{field}.consistentHash")
    if "simple" in m and "consistentHash" in m:
        p.add(field, "must set only one of simple and consistentHash")
    return LoadBalancer(simple if "simple" in m else None, hashing)


def _consistent_hash(p: v.Problems, raw: object, field: str) -> ConsistentHash | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    keys = [k for k in HashKey if k.value in m]
    if len(keys) != 1:
        names = ", ".join(k.value for k in HashKey)
        p.add(field, f"must set exactly one of {names}, got {len(keys)}")
        return None
    key = keys[0]
    name, ttl, path = "", None, ""
    if key is HashKey.COOKIE:
        cookie = v.mapping(p, m.get(key.value), f"{field}.httpCookie") or {}
        name = v.string(p, cookie.get("name"), f"{field}.httpCookie.name", required=True) or ""
        ttl = duration(p, cookie.get("ttl"), f"{field}.httpCookie.ttl")
        path = v.string(p, cookie.get("path"), f"{field}.httpCookie.path") or ""
    elif key is HashKey.SOURCE_IP:
        if v.boolean(p, m.get(key.value), f"{field}.useSourceIp", False) is not True:
            p.add(f"{field}.useSourceIp", "must be true when set")
    else:
        name = v.string(p, m.get(key.value), f"{field}.{key.value}", required=True) or ""
    algorithm, ring, table = _hash_algorithm(p, m, field)
    return ConsistentHash(key, name, ttl, path, algorithm, ring, table)


def _hash_algorithm(
    p: v.Problems, m: Mapping[str, object], field: str
) -> tuple[HashAlgorithm, int | None, int | None]:
    if "ringHash" in m and "maglev" in m:
        p.add(field, "must set only one of ringHash and maglev")
    ring = v.mapping(p, m.get("ringHash"), f"{field}.ringHash") or {}
    size = integer(p, ring.get("minimumRingSize"), f"{field}.ringHash.minimumRingSize", 1)
    size = size or integer(p, m.get("minimumRingSize"), f"{field}.minimumRingSize", 1)
    if "maglev" in m:
        maglev = v.mapping(p, m.get("maglev"), f"{field}.maglev") or {}
        table = integer(p, maglev.get("tableSize"), f"{field}.maglev.tableSize", 1)
        return HashAlgorithm.MAGLEV, None, table
    return HashAlgorithm.RING_HASH, size, None


def connection_pool(p: v.Problems, raw: object, field: str) -> ConnectionPool | None:
    """``connectionPool``: its ``tcp`` and ``http`` settings; ``None`` when absent."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    tcp = v.mapping(p, m.get("tcp"), f"{field}.tcp") or {}
    http = v.mapping(p, m.get("http"), f"{field}.http") or {}
    t, h = f"{field}.tcp", f"{field}.http"
    return ConnectionPool(
        max_connections=integer(p, tcp.get("maxConnections"), f"{t}.maxConnections", 1),
        connect_timeout=duration(
            p, tcp.get("connectTimeout"), f"{t}.connectTimeout", allow_zero=False
        ),
        tcp_keepalive=_keepalive(p, tcp.get("tcpKeepalive"), f"{t}.tcpKeepalive"),
        http1_max_pending_requests=integer(
            p, http.get("http1MaxPendingRequests"), f"{h}.http1MaxPendingRequests", 1
        ),
        http2_max_requests=integer(p, http.get("http2MaxRequests"), f"{h}.http2MaxRequests", 1),
        max_requests_per_connection=integer(
            p, http.get("maxRequestsPerConnection"), f"{h}.maxRequestsPerConnection", 0
        ),
        max_retries=integer(p, http.get("maxRetries"), f"{h}.maxRetries", 0),
        idle_timeout=duration(p, http.get("idleTimeout"), f"{h}.idleTimeout"),
        h2_upgrade_policy=v.choice(
            p,
            http.get("h2UpgradePolicy"),
            f"{h}.h2UpgradePolicy",
            H2UpgradePolicy,
            H2UpgradePolicy.DEFAULT,
        ),
    )


def _keepalive(p: v.Problems, raw: object, field: str) -> TcpKeepalive | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    return TcpKeepalive(
        integer(p, m.get("probes"), f"{field}.probes"),
        duration(p, m.get("time"), f"{field}.time", allow_zero=False),
        duration(p, m.get("interval"), f"{field}.interval", allow_zero=False),
    )


def outlier_detection(p: v.Problems, raw: object, field: str) -> OutlierDetection | None:
    """``outlierDetection``; ``None`` when absent."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    return OutlierDetection(
        consecutive_5xx_errors=integer(
            p, m.get("consecutive5xxErrors"), f"{field}.consecutive5xxErrors"
        ),
        consecutive_gateway_errors=integer(
            p, m.get("consecutiveGatewayErrors"), f"{field}.consecutiveGatewayErrors"
        ),
        interval=duration(p, m.get("interval"), f"{field}.interval", allow_zero=False),
        base_ejection_time=duration(
            p, m.get("baseEjectionTime"), f"{field}.baseEjectionTime", allow_zero=False
        ),
        max_ejection_percent=integer(
            p, m.get("maxEjectionPercent"), f"{field}.maxEjectionPercent", 0, 100
        ),
        min_health_percent=integer(
            p, m.get("minHealthPercent"), f"{field}.minHealthPercent", 0, 100
        ),
    )


def subsets(
    p: v.Problems, raw: object, warnings: list[str], read_policy: PolicyReader
) -> tuple[Subset, ...]:
    """``spec.subsets`` (invariant 3)."""
    out: list[Subset] = []
    for i, item in enumerate(v.sequence(p, raw, "spec.subsets")):
        field = f"spec.subsets[{i}]"
        m = v.mapping(p, item, field) or {}
        name = v.string(p, m.get("name"), f"{field}.name", required=True)
        if name is not None and not v.is_dns_label(name):
            p.add(f"{field}.name", f"must be a DNS-1123 label, got {name!r}")
        elif name is not None and any(s.name == name for s in out):
            p.add(f"{field}.name", f"duplicates subset {name!r}")
        labels = v.labels(p, m.get("labels"), f"{field}.labels")
        if not labels:
            p.add(f"{field}.labels", "must list at least one label: a subset selects endpoints")
        policy = None
        if m.get("trafficPolicy") is not None:
            policy = read_policy(p, m.get("trafficPolicy"), f"{field}.trafficPolicy", warnings)
        if name is not None:
            out.append(Subset(name, labels, policy))
    return tuple(out)
