"""Read a DestinationRule's ``loadBalancer``, ``connectionPool``, ``outlierDetection`` and subsets.

Called by ``destination_rules.parse_destination_rule`` (which owns ``host``, TLS and
the shape of ``trafficPolicy``). Invariants, following Istio's
``validateLoadBalancer``, ``validateConnectionPool``, ``validateOutlierDetection``,
``validateSubset`` and ``agent.ValidateLocalityLbSetting``:

1. ``loadBalancer`` sets ``simple`` or ``consistentHash``, not both;
   ``consistentHash`` sets exactly one hash key, at most one of ``ringHash``
   and ``maglev``, and the deprecated ``minimumRingSize`` only without them.
   A maglev ``tableSize`` is set, below 5000011 and prime by Envoy's test.
2. ``connectionPool`` sets ``tcp`` or ``http``. Counts are int32, not
   negative, and 0 means "unset" (``None`` in the model), as in Istio's
   cluster builder. Durations are at least 1ms, except ``tcp.idleTimeout``,
   where ``0s`` disables the timeout.
3. ``outlierDetection.consecutiveLocalOriginFailures`` needs
   ``splitExternalLocalOriginErrors: true``.
4. ``localityLbSetting`` follows ``locality``.
5. Subset names are unique Istio DNS labels (upper case allowed). Labels are
   optional (no labels: every endpoint of the host) and follow
   ``fields.labels``; a subset's policy is read with the same rules.
6. A field checked here but not translated (``localityLbSetting``, ``warmup``,
   ``tcp.idleTimeout``, ``consecutiveLocalOriginFailures``...) is accepted
   with a warning, never silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from translators.mesh.documents import fields as v
from translators.mesh.documents.networking.locality import locality_lb_setting
from translators.mesh.documents.networking.shared_fields import (
    duration,
    integer,
    parse_duration_text,
)
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
"""``destination_rules``' traffic policy reader, passed in to read subset policies."""

INT32_MAX = 2**31 - 1
_UINT64 = 2**64 - 1
_MAGLEV_LIMIT = 5_000_011  # Envoy's largest maglev table
_IGNORED_LB = ("localityLbSetting", "warmup", "warmupDurationSecs")
_IGNORED_TCP = ("idleTimeout", "maxConnectionDuration")
_IGNORED_HTTP = ("maxConcurrentStreams", "useClientProtocol")
_IGNORED_OUTLIER = (
    "consecutiveErrors", "consecutiveLocalOriginFailures", "splitExternalLocalOriginErrors",
)  # fmt: skip


def ignored(m: Mapping[str, object], names: Sequence[str], field: str) -> list[str]:
    """Warnings for the fields of ``names`` that ``m`` sets: read, perhaps checked, not applied."""
    return [f"{field}.{name} is not supported yet and is ignored" for name in names if name in m]


def is_empty(m: Mapping[str, object], *, besides: tuple[str, ...] = ()) -> bool:
    """Whether ``m`` sets nothing other than ``besides``, as Istio's "at least one field" sees it.

    Protobuf drops a null field and an empty list, so ``{tls: null}`` and
    ``{portLevelSettings: []}`` are empty; ``{tls: {}}`` is not. An unknown
    key counts as set: it is refused on its own (``known_fields``).
    """
    return all(val is None or val == [] for key, val in m.items() if key not in besides)


def load_balancer(
    p: v.Problems, raw: object, field: str, warnings: list[str]
) -> LoadBalancer | None:
    """``loadBalancer`` (invariants 1, 4, 6); ``None`` when absent."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    simple = v.choice(p, m.get("simple"), f"{field}.simple", SimpleLb, SimpleLb.UNSPECIFIED)
    hashing = _consistent_hash(p, m.get("consistentHash"), f"{field}.consistentHash")
    if "simple" in m and "consistentHash" in m:
        p.add(field, "must set only one of simple and consistentHash")
    locality_lb_setting(p, m.get("localityLbSetting"), f"{field}.localityLbSetting")
    _warmup(p, m.get("warmup"), f"{field}.warmup")
    warnings.extend(ignored(m, _IGNORED_LB, field))
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
    if "minimumRingSize" in m and ("ringHash" in m or "maglev" in m):
        p.add(
            f"{field}.minimumRingSize",
            "is deprecated and may not come with ringHash or maglev: "
            "move it to ringHash.minimumRingSize",
        )
    ring = v.mapping(p, m.get("ringHash"), f"{field}.ringHash") or {}
    size = integer(p, ring.get("minimumRingSize"), f"{field}.ringHash.minimumRingSize", 0, _UINT64)
    size = size or integer(p, m.get("minimumRingSize"), f"{field}.minimumRingSize", 0, _UINT64)
    if "maglev" in m:
        maglev = v.mapping(p, m.get("maglev"), f"{field}.maglev") or {}
        table = _maglev_table_size(p, maglev.get("tableSize"), f"{field}.maglev.tableSize")
        return HashAlgorithm.MAGLEV, None, table
    return HashAlgorithm.RING_HASH, size or None, None


def _maglev_table_size(p: v.Problems, value: object, field: str) -> int | None:
    size = integer(p, value, field, 0, _UINT64)
    if value is not None and size is None:
        return None
    if not size:
        p.add(field, "is required for maglev: a prime below 5000011, such as 65537")
    elif size >= _MAGLEV_LIMIT:
        p.add(field, f"must be below {_MAGLEV_LIMIT} for maglev, got {size}")
    elif not _is_prime(size):
        p.add(field, f"must be a prime number for maglev (Envoy refuses others), got {size}")
    else:
        return size
    return None


def _is_prime(x: int) -> bool:
    """Envoy's primality test for maglev table sizes, which Istio copies (it lets 1 pass)."""
    if 0 < x < 4:
        return True
    if x % 2 == 0:
        return False
    return all(x % factor for factor in range(3, math.isqrt(x) + 1, 2))


def _warmup(p: v.Problems, raw: object, field: str) -> None:
    """``warmup``: checked as Istio does, then dropped (the caller warns)."""
    m = v.mapping(p, raw, field)
    if m is None:
        return
    if m.get("duration") is None:
        p.add(f"{field}.duration", "is required: how long new endpoints warm up")
    duration(p, m.get("duration"), f"{field}.duration", allow_zero=False)
    for name, low, high in (("minimumPercent", 0.0, 100.0), ("aggression", 1.0, math.inf)):
        value = m.get(name)
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if value is not None and (number is None or not low <= number <= high):
            span = f"{low:g}-{high:g}" if high < math.inf else f"at least {low:g}"
            p.add(f"{field}.{name}", f"must be a number {span}, got {v.describe(value)}")


def connection_pool(
    p: v.Problems, raw: object, field: str, warnings: list[str]
) -> ConnectionPool | None:
    """``connectionPool``: its ``tcp`` and ``http`` settings (invariant 2); ``None`` when absent."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    if is_empty(m):
        p.add(field, "must set tcp or http: Istio refuses an empty connectionPool")
    t, h = f"{field}.tcp", f"{field}.http"
    tcp = v.mapping(p, m.get("tcp"), t) or {}
    http = v.mapping(p, m.get("http"), h) or {}
    _unapplied_pool_fields(p, tcp, http, field, warnings)
    return ConnectionPool(
        max_connections=_count(p, tcp, "maxConnections", t),
        connect_timeout=duration(
            p, tcp.get("connectTimeout"), f"{t}.connectTimeout", allow_zero=False
        ),
        tcp_keepalive=_keepalive(p, tcp.get("tcpKeepalive"), f"{t}.tcpKeepalive"),
        http1_max_pending_requests=_count(p, http, "http1MaxPendingRequests", h),
        http2_max_requests=_count(p, http, "http2MaxRequests", h),
        max_requests_per_connection=_count(p, http, "maxRequestsPerConnection", h),
        max_retries=_count(p, http, "maxRetries", h),
        idle_timeout=duration(p, http.get("idleTimeout"), f"{h}.idleTimeout", allow_zero=False),
        h2_upgrade_policy=_h2_upgrade_policy(p, http, h),
    )


def _count(p: v.Problems, m: Mapping[str, object], name: str, field: str) -> int | None:
    """An int32 count, not negative; 0 is "unset" (``None``), as Istio's cluster builder has it."""
    return integer(p, m.get(name), f"{field}.{name}", 0, INT32_MAX) or None


def _h2_upgrade_policy(p: v.Problems, http: Mapping[str, object], field: str) -> H2UpgradePolicy:
    policy = v.choice(
        p, http.get("h2UpgradePolicy"), f"{field}.h2UpgradePolicy", H2UpgradePolicy,
        H2UpgradePolicy.DEFAULT,
    )  # fmt: skip
    client = v.boolean(p, http.get("useClientProtocol"), f"{field}.useClientProtocol", False)
    if client and policy is H2UpgradePolicy.UPGRADE:
        p.add(
            f"{field}.useClientProtocol",
            "must not be true when h2UpgradePolicy is UPGRADE: the two choose the protocol",
        )
    return policy


def _unapplied_pool_fields(
    p: v.Problems, tcp: Mapping[str, object], http: Mapping[str, object], field: str,
    warnings: list[str],
) -> None:  # fmt: skip
    """Check the pool fields pyistiod does not translate, and warn that they are ignored."""
    t, h = f"{field}.tcp", f"{field}.http"
    idle = tcp.get("idleTimeout")
    nanos = parse_duration_text(idle) if isinstance(idle, str) else None
    if nanos is None or nanos >= 1_000_000:  # Istio skips anything under 1ms: no idle timeout
        duration(p, idle, f"{t}.idleTimeout")
    duration(p, tcp.get("maxConnectionDuration"), f"{t}.maxConnectionDuration", allow_zero=False)
    integer(p, http.get("maxConcurrentStreams"), f"{h}.maxConcurrentStreams", 0, INT32_MAX)
    warnings.extend(ignored(tcp, _IGNORED_TCP, t))
    warnings.extend(ignored(http, _IGNORED_HTTP, h))


def _keepalive(p: v.Problems, raw: object, field: str) -> TcpKeepalive | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    return TcpKeepalive(
        integer(p, m.get("probes"), f"{field}.probes"),
        duration(p, m.get("time"), f"{field}.time", allow_zero=False),
        duration(p, m.get("interval"), f"{field}.interval", allow_zero=False),
    )


def outlier_detection(
    p: v.Problems, raw: object, field: str, warnings: list[str]
) -> OutlierDetection | None:
    """``outlierDetection`` (invariant 3); ``None`` when absent."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    integer(p, m.get("consecutiveErrors"), f"{field}.consecutiveErrors", 0, INT32_MAX)
    local = integer(
        p, m.get("consecutiveLocalOriginFailures"), f"{field}.consecutiveLocalOriginFailures"
    )
    split = f"{field}.splitExternalLocalOriginErrors"
    if local and not v.boolean(p, m.get("splitExternalLocalOriginErrors"), split, False):
        p.add(
            f"{field}.consecutiveLocalOriginFailures",
            "needs splitExternalLocalOriginErrors: true, or local-origin failures are not "
            "counted apart from the upstream's",
        )
    warnings.extend(ignored(m, _IGNORED_OUTLIER, field))

    def count(name: str, high: int = 2**32 - 1) -> int | None:
        return integer(p, m.get(name), f"{field}.{name}", 0, high)

    def wait(name: str) -> int | None:
        return duration(p, m.get(name), f"{field}.{name}", allow_zero=False)

    return OutlierDetection(
        count("consecutive5xxErrors"), count("consecutiveGatewayErrors"), wait("interval"),
        wait("baseEjectionTime"), count("maxEjectionPercent", 100), count("minHealthPercent", 100),
    )  # fmt: skip


def subsets(
    p: v.Problems, raw: object, warnings: list[str], read_policy: PolicyReader
) -> tuple[Subset, ...]:
    """``spec.subsets`` (invariant 5)."""
    out: list[Subset] = []
    for i, item in enumerate(v.sequence(p, raw, "spec.subsets")):
        field = f"spec.subsets[{i}]"
        m = v.mapping(p, item, field) or {}
        name = v.string(p, m.get("name"), f"{field}.name", required=True)
        if name is not None and not v.is_istio_label(name):
            p.add(
                f"{field}.name",
                "must be a DNS-1123 label (at most 63 letters, digits or '-', starting and "
                f"ending with a letter or digit), got {name!r}",
            )
        elif name is not None and any(s.name == name for s in out):
            p.add(f"{field}.name", f"duplicates subset {name!r}")
        labels = v.labels(p, m.get("labels"), f"{field}.labels")
        policy = None
        if m.get("trafficPolicy") is not None:
            policy = read_policy(p, m.get("trafficPolicy"), f"{field}.trafficPolicy", warnings)
        if name is not None:
            out.append(Subset(name, labels, policy))
    return tuple(out)
