"""Reading DestinationRules: subsets, load balancing, connection pool, outlier detection, TLS."""

from __future__ import annotations

from typing import Any

import pytest

from translators.mesh.documents.kinds import parse_object
from translators.mesh.documents.networking.destination_rules import DestinationRuleObject
from translators.mesh.model.policies import ClientTls, ClientTlsMode, DestinationRule
from translators.mesh.model.services import labels_of
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


def dr(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {"host": "reviews", **spec},
    }


def parsed(spec: dict[str, Any]) -> DestinationRule:
    result = parse_object(dr(spec), path="dr.yaml", document=0)
    assert result.errors == (), result.errors
    assert isinstance(result.obj, DestinationRuleObject)
    return result.obj.rule


def errors(spec: dict[str, Any]) -> dict[str, str]:
    result = parse_object(dr(spec), path="dr.yaml", document=1)
    assert result.obj is None and result.errors
    return {e.field: e.reason for e in result.errors}


def test_full_traffic_policy_and_subsets() -> None:
    rule = parsed(
        {
            "trafficPolicy": {
                "loadBalancer": {"simple": "LEAST_REQUEST"},
                "connectionPool": {
                    "tcp": {
                        "maxConnections": 100,
                        "connectTimeout": "30ms",
                        "tcpKeepalive": {"probes": 3, "time": "7200s", "interval": "75s"},
                    },
                    "http": {
                        "http1MaxPendingRequests": 10,
                        "http2MaxRequests": 1000,
                        "maxRequestsPerConnection": 1,
                        "maxRetries": 3,
                        "idleTimeout": "1h",
                        "h2UpgradePolicy": "UPGRADE",
                    },
                },
                "outlierDetection": {
                    "consecutive5xxErrors": 7,
                    "consecutiveGatewayErrors": 3,
                    "interval": "5m",
                    "baseEjectionTime": "15m",
                    "maxEjectionPercent": 50,
                    "minHealthPercent": 30,
                },
                "portLevelSettings": [
                    {"port": {"number": 9080}, "loadBalancer": {"simple": "RANDOM"}}
                ],
            },
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {
                    "name": "v2",
                    "labels": {"version": "v2"},
                    "trafficPolicy": {
                        "loadBalancer": {
                            "consistentHash": {
                                "httpCookie": {"name": "user", "ttl": "0s", "path": "/"},
                                "ringHash": {"minimumRingSize": 2048},
                            }
                        }
                    },
                },
            ],
        }
    )
    policy = rule.traffic_policy
    assert policy.load_balancer == LoadBalancer(SimpleLb.LEAST_REQUEST)
    assert policy.connection_pool == ConnectionPool(
        100,
        30,
        TcpKeepalive(3, 7_200_000, 75_000),
        10,
        1000,
        1,
        3,
        3_600_000,
        H2UpgradePolicy.UPGRADE,
    )
    assert policy.outlier_detection == OutlierDetection(7, 3, 300_000, 900_000, 50, 30)
    assert policy.port_level[0].load_balancer == LoadBalancer(SimpleLb.RANDOM)
    assert [s.name for s in rule.subsets] == ["v1", "v2"]
    assert rule.subsets[0].labels == labels_of({"version": "v1"})
    v2 = rule.subset("v2")
    assert v2 is not None and v2.traffic_policy is not None
    assert v2.traffic_policy.load_balancer == LoadBalancer(
        None, ConsistentHash(HashKey.COOKIE, "user", 0, "/", HashAlgorithm.RING_HASH, 2048)
    )


@pytest.mark.parametrize(
    ("hashing", "expected"),
    [
        ({"httpHeaderName": "x-user"}, ConsistentHash(HashKey.HEADER, "x-user")),
        ({"useSourceIp": True}, ConsistentHash(HashKey.SOURCE_IP)),
        ({"httpQueryParameterName": "u"}, ConsistentHash(HashKey.QUERY_PARAMETER, "u")),
        (
            {"httpHeaderName": "h", "maglev": {"tableSize": 65537}},
            ConsistentHash(
                HashKey.HEADER, "h", algorithm=HashAlgorithm.MAGLEV, maglev_table_size=65537
            ),
        ),
    ],
)
def test_consistent_hash_keys(hashing: dict[str, Any], expected: ConsistentHash) -> None:
    rule = parsed({"trafficPolicy": {"loadBalancer": {"consistentHash": hashing}}})
    assert rule.traffic_policy.load_balancer == LoadBalancer(None, expected)


def test_simple_and_mutual_tls() -> None:
    rule = parsed(
        {
            "trafficPolicy": {
                "tls": {
                    "mode": "MUTUAL",
                    "caCertificates": "/etc/ca.pem",
                    "clientCertificate": "/etc/cert.pem",
                    "privateKey": "/etc/key.pem",
                    "sni": "api.example.com",
                    "subjectAltNames": ["api.example.com"],
                }
            }
        }
    )
    assert rule.traffic_policy.tls == ClientTls(
        ClientTlsMode.MUTUAL,
        ("api.example.com",),
        "api.example.com",
        "/etc/ca.pem",
        "/etc/cert.pem",
        "/etc/key.pem",
    )


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        (
            {"trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}},
            "spec.trafficPolicy.loadBalancer.simple",
            "ROUND_ROBIN",
        ),
        (
            {
                "trafficPolicy": {
                    "loadBalancer": {"simple": "RANDOM", "consistentHash": {"useSourceIp": True}}
                }
            },
            "spec.trafficPolicy.loadBalancer",
            "only one",
        ),
        (
            {"trafficPolicy": {"loadBalancer": {"consistentHash": {}}}},
            "spec.trafficPolicy.loadBalancer.consistentHash",
            "exactly one",
        ),
        (
            {"trafficPolicy": {"connectionPool": {"tcp": {"connectTimeout": "soon"}}}},
            "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
            "duration",
        ),
        (
            {"trafficPolicy": {"connectionPool": {"http": {"h2UpgradePolicy": "MAYBE"}}}},
            "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy",
            "UPGRADE",
        ),
        (
            {"trafficPolicy": {"outlierDetection": {"maxEjectionPercent": 101}}},
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            "0-100",
        ),
        (
            {"trafficPolicy": {"outlierDetection": {"interval": "0s"}}},
            "spec.trafficPolicy.outlierDetection.interval",
            "at least 1ms",
        ),
        (
            {
                "subsets": [
                    {"name": "v1", "labels": {"a": "b"}},
                    {"name": "v1", "labels": {"a": "c"}},
                ]
            },
            "spec.subsets[1].name",
            "duplicates",
        ),
        ({"subsets": [{"name": "V_1", "labels": {"a": "b"}}]}, "spec.subsets[0].name", "DNS"),
        (
            {
                "subsets": [
                    {
                        "name": "v1",
                        "labels": {"a": "b"},
                        "trafficPolicy": {"loadBalancer": {"simple": "NOPE"}},
                    }
                ]
            },
            "spec.subsets[0].trafficPolicy.loadBalancer.simple",
            "ROUND_ROBIN",
        ),
        (
            {"trafficPolicy": {"tls": {"mode": "MUTUAL"}}},
            "spec.trafficPolicy.tls.clientCertificate",
            "required",
        ),
    ],
)
def test_invalid_fields_are_refused(spec: dict[str, Any], field: str, reason: str) -> None:
    found = errors(spec)
    assert field in found, found
    assert reason in found[field]
