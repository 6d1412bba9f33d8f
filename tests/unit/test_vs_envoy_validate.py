"""Real Envoy (``--mode validate``) accepts VirtualService and DestinationRule output.

The bookinfo mesh with a VirtualService using every HTTP feature, TCP and TLS
routes, and DestinationRules with subsets, consistent hashing, connection
pools, outlier detection and TLS origination from files and from a
``credentialName`` Secret: clusters and route configurations inlined
(``test_envoy_accepts_config``) and the Secret's SDS resources static, so Envoy
validates every route, filter, cluster setting and secret reference.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from envoy_validate import _self_signed, envoy_validate
from test_envoy_accepts_config import as_dict, inlined_config
from test_vs_routes import PRODUCTPAGE, tcp_mesh, with_vs

from translators.envoy.resources import build_resources
from translators.envoy.tls.origination_secrets import origination_secrets
from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import Meta, Origin
from translators.mesh.documents.networking.destination_rules import parse_destination_rule
from translators.mesh.model.gateways import TlsCredential
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import Policies
from translators.mesh.model.services import ObjectKey

EVERYTHING = {
    "hosts": ["reviews"],
    "http": [
        {
            "name": "api",
            "match": [
                {
                    "name": "m",
                    "uri": {"regex": "/api/[a-z]+"},
                    "ignoreUriCase": True,
                    "headers": {"end-user": {"exact": "jason"}, "x-any": {}},
                    "withoutHeaders": {"x-skip": {"prefix": "y"}},
                    "queryParams": {"q": {"regex": "^a.*"}},
                    "method": {"exact": "GET"},
                    "authority": {"prefix": "reviews"},
                },
            ],
            "route": [
                {
                    "destination": {"host": "reviews", "subset": "v1"},
                    "weight": 60,
                    "headers": {"request": {"set": {"x-w": "1"}}},
                },
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 40},
            ],
            "rewrite": {
                "uriRegexRewrite": {"match": "^/api/(.*)", "rewrite": "/\\1"},
                "authority": "reviews.internal",
            },
            "timeout": "3s",
            "retries": {
                "attempts": 3,
                "perTryTimeout": "1s",
                "retryOn": "5xx,503",
                "retryRemoteLocalities": True,
            },
            "fault": {
                "delay": {"fixedDelay": "1s", "percentage": {"value": 0.5}},
                "abort": {"httpStatus": 503, "percentage": {"value": 1}},
            },
            "mirror": {"host": "ratings", "subset": "v1"},
            "mirrorPercentage": {"value": 10},
            "headers": {
                # Envoy format strings: what header_value_problem lets through, Envoy takes.
                "request": {
                    "add": {"x-b": "2", "x-pct": "100%%", "x-from": "%HOSTNAME% %REQ(x-b)%"},
                    "remove": ["x-c"],
                },
                "response": {"set": {"x-d": "3"}, "remove": ["x-e"]},
            },
            "corsPolicy": {
                "allowOrigins": [{"exact": "https://a.com"}, {"regex": "https://.*\\.b\\.com"}],
                "allowMethods": ["GET"],
                "allowHeaders": ["x-h"],
                "exposeHeaders": ["x-e"],
                "maxAge": "1h",
                "allowCredentials": True,
            },
        },
        {
            "match": [{"uri": {"prefix": "/old"}}],
            "redirect": {
                "uri": "/new",
                "authority": "a",
                "scheme": "https",
                "port": 8443,
                "redirectCode": 307,
            },
        },
        {
            "match": [{"uri": {"exact": "/ping"}}],
            "directResponse": {"status": 200, "body": {"string": "pong"}},
        },
        {
            "match": [{"uri": {"prefix": "/grpc"}}],
            "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
            "fault": {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 5}}},
        },
        {"route": [{"destination": {"host": "reviews", "subset": "v3"}}], "rewrite": {"uri": "/"}},
    ],
}
TCP_TLS = {
    "hosts": ["db"],
    "tls": [{"match": [{"sniHosts": ["db"]}], "route": [{"destination": {"host": "db"}}]}],
    "tcp": [
        {
            "route": [
                {"destination": {"host": "db"}, "weight": 50},
                {"destination": {"host": "db", "subset": "v1"}, "weight": 50},
            ]
        }
    ],
}


def rules(tmp_path: Path) -> Policies:
    cert, key = _self_signed("spiffe://cluster.local/ns/default/sa/ext")
    (tmp_path / "ca.pem").write_text(cert)
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    specs = {
        "reviews": {
            "trafficPolicy": {
                "loadBalancer": {"consistentHash": {"httpCookie": {"name": "u", "ttl": "60s"}}},
                "connectionPool": {
                    "tcp": {
                        "maxConnections": 10,
                        "connectTimeout": "1s",
                        "tcpKeepalive": {"time": "60s"},
                    },
                    "http": {
                        "http1MaxPendingRequests": 5,
                        "maxRetries": 2,
                        "maxRequestsPerConnection": 10,
                        "idleTimeout": "30s",
                    },
                },
                "outlierDetection": {
                    "consecutive5xxErrors": 5,
                    "interval": "10s",
                    "baseEjectionTime": "30s",
                    "maxEjectionPercent": 50,
                    "minHealthPercent": 20,
                },
            },
            "subsets": [{"name": f"v{i}", "labels": {"version": f"v{i}"}} for i in (1, 2, 3)]
            + [
                {
                    "name": "m",
                    "labels": {"version": "v1"},
                    "trafficPolicy": {
                        "loadBalancer": {
                            "consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 65537}}
                        }
                    },
                }
            ],
        },
        "ratings": {
            "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
            "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}},
        },
        "details": {
            "trafficPolicy": {
                "tls": {
                    "mode": "MUTUAL",
                    "caCertificates": str(tmp_path / "ca.pem"),
                    "clientCertificate": str(tmp_path / "cert.pem"),
                    "privateKey": str(tmp_path / "key.pem"),
                    "sni": "details.example.com",
                    "subjectAltNames": ["details.example.com"],
                },
                "connectionPool": {"http": {"h2UpgradePolicy": "UPGRADE"}},
            }
        },
        "db": {
            "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
            "trafficPolicy": {"tls": {"mode": "SIMPLE"}},
        },
        "productpage": {  # the Secret productpage-client of the proxy's namespace, over SDS
            "trafficPolicy": {"tls": {"mode": "MUTUAL", "credentialName": "productpage-client"}},
        },
    }
    out = []
    for host, spec in specs.items():
        p = v.Problems("dr.yaml", 0)
        meta = Meta(ObjectKey("DestinationRule", "default", host), frozenset(), Origin("dr", 0))
        obj = parse_destination_rule(p, {"spec": {"host": host, **spec}}, meta, [])
        assert p.errors == (), p.errors
        rule = obj.rule
        out.append(replace(rule, host=f"{host}.default.svc.cluster.local"))
    return Policies.build(destination_rules=tuple(out))


def full_model(tmp_path: Path) -> MeshModel:
    model = with_vs(with_vs(tcp_mesh(), EVERYTHING, name="reviews"), TCP_TLS, name="db")
    cert, key = _self_signed("spiffe://cluster.local/ns/default/sa/productpage")
    client = TlsCredential(
        PRODUCTPAGE.namespace, "productpage-client", cert.encode(), key.encode(), cert.encode()
    )
    return replace(model, policies=rules(tmp_path), credentials=(client,))


def productpage_config(model: MeshModel) -> dict[str, Any]:
    config = inlined_config(PRODUCTPAGE, build_resources(model, PRODUCTPAGE))
    secrets = origination_secrets(model, PRODUCTPAGE.namespace)
    assert [s.name for s in secrets] == [
        "kubernetes://productpage-client",
        "kubernetes://productpage-client-cacert",
    ]
    config["static_resources"]["secrets"] += [as_dict(s) for s in secrets]
    return config


def test_envoy_accepts_virtual_service_and_destination_rule_output(tmp_path: Path) -> None:
    model = full_model(tmp_path)
    result = envoy_validate(productpage_config(model), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
