"""``proxy_config``: istioctl's tables from the config dump pyistiod's own debug view writes.

The dump is the sample mesh's frontend sidecar, with a workload certificate
issued by a fresh CA, as ``/debug/config_dump`` shows it (keys redacted).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sample_mesh import FRONTEND_PROXY, sample_model

from ca.spiffe import SpiffeId
from ca.storage import load_or_create_root
from pyistiod.debug_views import REDACTED, config_dump
from pyistiod.proxy_config import (
    UnknownProxy,
    cluster_rows,
    endpoint_rows,
    listener_rows,
    resolve,
    route_rows,
    rows,
    secret_rows,
)
from pyistiod.proxy_status import columns
from pyistiod.snapshot_builder import SnapshotBuilder
from pyistiod.workload_certs import CertificateIssuer, WorkloadCert
from translators.envoy.tls.workload_secrets import build_secrets
from xds_server import types
from xds_server.cache import SnapshotCache
from xds_server.snapshot import Resource, ResourceSet, resource_name

NODE = "sidecar~127.0.1.2~frontend-1.default~default.svc.cluster.local"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> WorkloadCert:
    bundle = load_or_create_root(tmp_path_factory.mktemp("ca"), "cluster.local", NOW)
    issuer = CertificateIssuer(bundle, timedelta(hours=24), lambda: NOW)
    return issuer.issue(SpiffeId("cluster.local", "default", "frontend"))


@pytest.fixture(scope="module")
def dump(issued: WorkloadCert) -> dict[str, Any]:
    secrets = build_secrets(issued.chain_pem, issued.key_pem, issued.root_pem)
    sds = ResourceSet.of(
        types.SECRET, (Resource.of(types.SECRET, resource_name(s), s) for s in secrets)
    )
    snapshot = SnapshotBuilder(sample_model()).snapshot(FRONTEND_PROXY).with_set(sds)
    cache = SnapshotCache()
    cache.set_snapshot(NODE, snapshot)
    shown = config_dump(cache, NODE)
    assert shown is not None
    return json.loads(json.dumps(shown))  # as the monitoring port sends it


def resources(dump: dict[str, Any], short: str) -> list[dict[str, Any]]:
    return list(dump["configs"][short]["resources"])


def test_clusters_split_istios_names_sorted_like_istioctl(dump: dict[str, Any]) -> None:
    table = cluster_rows(resources(dump, "cds"))
    assert ["backend.default.svc.cluster.local", "9080", "-", "outbound", "EDS", "-"] in table
    assert ["passthrough.example.com", "8443", "-", "outbound", "ORIGINAL_DST", "-"] in table
    assert ["", "8000", "-", "inbound", "STATIC", "-"] in table
    assert ["api.example.com", "443", "-", "outbound", "STRICT_DNS", "-"] in table
    assert [r[0] for r in table] == sorted(r[0] for r in table)
    assert len(table) == len(resources(dump, "cds"))
    odd = cluster_rows([{"name": "BlackHoleCluster"}, _with_config("outbound|80|v1|a.b", "dr")])
    assert odd == [
        ["BlackHoleCluster", "-", "-", "-", "STATIC", "-"],
        ["a.b", "80", "v1", "outbound", "STATIC", "dr.default"],
    ]


def _with_config(name: str, config_name: str) -> dict[str, Any]:
    path = f"/apis/networking.istio.io/v1alpha3/namespaces/default/destination-rule/{config_name}"
    return {"name": name, "metadata": {"filterMetadata": {"istio": {"config": path}}}}


def test_listeners_show_each_filter_chain_match_and_destination(dump: dict[str, Any]) -> None:
    table = listener_rows(resources(dump, "lds"))
    assert ["127.2.1.2", "9080", "ALL", "Route: 9080"] in table
    assert [
        "127.2.1.2",
        "5432",
        "ALL",
        "Cluster: outbound|5432||db.data.svc.cluster.local",
    ] in table
    assert ["127.0.1.2", "8000", "Trans: tls", "Inline Route: /*"] in table
    assert ["127.0.1.2", "8000", "Trans: raw_buffer", "Inline Route: /*"] in table
    assert [int(r[1]) for r in table] == sorted(int(r[1]) for r in table)
    chain = {
        "filterChainMatch": {
            "serverNames": ["a.example"],
            "applicationProtocols": ["istio-peer-exchange", "istio"],
            "destinationPort": 9080,
            "prefixRanges": [{"addressPrefix": "10.0.0.0", "prefixLen": 8}],
        },
        "filters": [{"name": "envoy.filters.network.tcp_proxy",
                     "typedConfig": {"cluster": "PassthroughCluster"}}],
    }  # fmt: skip
    listener = {"address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15006}},
                "filterChains": [chain], "defaultFilterChain": {"filters": []}}  # fmt: skip
    assert listener_rows([listener]) == [
        ["0.0.0.0", "15006", "SNI: a.example; App: TCP TLS; Addr: 10.0.0.0/8:9080",
         "PassthroughCluster"],
        ["0.0.0.0", "15006", "ALL", "Non-HTTP/Non-TCP"],
    ]  # fmt: skip


def test_routes_show_every_virtual_host_route(dump: dict[str, Any]) -> None:
    table = route_rows(resources(dump, "rds"))
    assert ["80", "frontend.default.svc.cluster.local:80", "frontend, frontend.default", "/*",
            "-"] in table  # fmt: skip
    assert [r[0] for r in table] == ["80", "9080", "9080", "9090"]  # numeric order
    vs = "/apis/networking.istio.io/v1alpha3/namespaces/shop/virtual-service/reviews"
    config = {
        "name": "9080",
        "virtualHosts": [
            {"name": "r:9080", "domains": ["r.shop.svc.cluster.local", "r.shop", "r:9080"],
             "routes": [{"match": {"path": "/exact"},
                         "metadata": {"filterMetadata": {"istio": {"config": vs}}}},
                        {"match": {"safeRegex": {"regex": "/v[0-9]+"}}}]},
            {"name": "empty", "domains": ["*"]},
        ],
    }  # fmt: skip
    assert route_rows([config]) == [
        ["9080", "r:9080", "r.shop", "/exact", "reviews.shop"],
        ["9080", "r:9080", "r.shop", "regex /v[0-9]+", "-"],
        ["9080", "empty", "*", "/*", "404"],
    ]


def test_endpoints_cover_eds_and_inline_assignments(dump: dict[str, Any]) -> None:
    table = endpoint_rows(resources(dump, "eds"), resources(dump, "cds"))
    assert [
        "127.0.1.1:8080",
        "HEALTHY",
        "-",
        "outbound|9080||backend.default.svc.cluster.local",
    ] in (table)
    assert ["api.example.com:443", "HEALTHY", "-", "outbound|443||api.example.com"] in table
    assert any(r[3] == "inbound|8000||" for r in table)  # a STATIC cluster's own endpoint
    address = {"socketAddress": {"address": "10.0.0.1", "portValue": 80}}
    lb = {"healthStatus": "DRAINING", "endpoint": {"address": address}}
    draining = {"clusterName": "c", "endpoints": [{"lbEndpoints": [lb]}]}
    assert endpoint_rows([draining]) == [["10.0.0.1:80", "DRAINING", "-", "c"]]


def test_secrets_show_serial_and_validity_never_a_key(
    dump: dict[str, Any], issued: WorkloadCert
) -> None:
    sds = resources(dump, "sds")
    assert REDACTED in json.dumps(sds) and "PRIVATE KEY" not in json.dumps(sds)
    leaf = x509.load_pem_x509_certificates(issued.chain_pem)[0]
    root = x509.load_pem_x509_certificates(issued.root_pem)[0]
    by_name = {r[0]: r for r in secret_rows(sds, NOW, "ACTIVE")}
    assert by_name["default"] == [
        "default", "Cert Chain", "ACTIVE", "true", f"{leaf.serial_number:x}",
        leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        leaf.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]  # fmt: skip
    assert by_name["ROOTCA"][1:5] == ["CA", "ACTIVE", "true", f"{root.serial_number:x}"]
    later = {r[0]: r[3] for r in secret_rows(sds, NOW + timedelta(days=2))}
    assert later == {"default": "false", "ROOTCA": "true"}  # the leaf lives a day
    text = columns([["NAME", "TYPE", "STATUS", "VALID", "SERIAL", "AFTER", "BEFORE"],
                    *secret_rows(sds, NOW)])  # fmt: skip
    assert "PRIVATE" not in text and REDACTED not in text


def test_rows_take_the_secret_status_from_syncz(dump: dict[str, Any]) -> None:
    sent = {"sent": {"version": "v2"}, "synced": False, "acked": "v1"}
    nacked = sent | {"nack": {"version": "v2", "message": "bad"}}
    for sync, status in (
        ({"sds": sent | {"synced": True, "acked": "v2"}}, "ACTIVE"),
        ({"sds": sent}, "WARMING"),
        ({"sds": nacked}, "NACKED"),
        ({}, "NOT SENT"),
    ):
        table = rows("secrets", dump, {"proxy": NODE, "types": sync}, NOW)
        assert {r[2] for r in table} == {status}
    assert rows("clusters", dump, None, NOW) == cluster_rows(resources(dump, "cds"))


def test_resolve_takes_the_node_id_or_istioctls_pod_namespace() -> None:
    gw = "router~10.0.0.9~gw-1.istio-system~istio-system.svc.cluster.local"
    twin = "sidecar~127.0.1.9~frontend-1.default~default.svc.cluster.local"
    assert resolve(NODE, [NODE, gw]) == NODE
    assert resolve("frontend-1.default", [NODE, gw, NODE]) == NODE
    assert resolve("frontend-1", [NODE, gw]) == NODE  # namespace default, as istioctl's
    assert resolve("gw-1.istio-system", [NODE, gw]) == gw
    with pytest.raises(UnknownProxy) as none:
        resolve("backend-1.default", [NODE, gw])
    assert str(none.value) == (
        "no connected proxy is 'backend-1.default'; "
        "connected: frontend-1.default, gw-1.istio-system"
    )
    with pytest.raises(UnknownProxy) as several:
        resolve("frontend-1.default", [NODE, twin])
    assert str(several.value) == (
        f"'frontend-1.default' matches 2 proxies: {NODE}, {twin}; give the full node ID"
    )
    with pytest.raises(UnknownProxy, match="connected: none"):
        resolve("a.b", [])


def test_cli_help_gives_the_defaults(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from pyistiod.cli import main

    with pytest.raises(SystemExit):
        main(["proxy-config", "secrets", "--help"])
    out = capsys.readouterr().out
    assert "127.0.0.1:15014" in out and "short" in out and "POD.NAMESPACE" in out
