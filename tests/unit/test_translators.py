"""CDS, EDS, LDS and RDS translators over the sample mesh (see ``sample_mesh``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from sample_mesh import (
    API,
    BACKEND,
    BACKEND_PROXY,
    BACKEND_SE,
    DATA_PROXY,
    DB,
    FRONTEND,
    FRONTEND_PROXY,
    LEGACY,
    PASSTHROUGH,
    ROUTER,
    kube_service,
    sample_model,
    sidecar,
)

from translators.envoy.clusters import HTTP_PROTOCOL_OPTIONS, build_clusters
from translators.envoy.endpoints import build_endpoints
from translators.envoy.listeners.sidecar import build_listeners, listener_conflicts
from translators.envoy.resources import build_resources
from translators.envoy.routes.sidecar import build_routes, virtual_host_domains
from translators.mesh.model.proxy import Proxy
from translators.mesh.model.services import Protocol, ServicePort
from xds_server import types

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for xds_invariants
from xds_invariants import violations

ALL_PROXIES = [BACKEND_PROXY, FRONTEND_PROXY, DATA_PROXY, ROUTER]


def by_name(resources: list[Any]) -> dict[str, Any]:
    return {str(getattr(r, "cluster_name", "") or r.name): r for r in resources}


def serialized(resources: dict[str, list[Any]]) -> dict[str, list[bytes]]:
    return {k: [r.SerializeToString(deterministic=True) for r in v] for k, v in resources.items()}


# --- CDS ---------------------------------------------------------------------------------


def test_outbound_cluster_names_and_types() -> None:
    clusters = by_name(build_clusters(sample_model(), ROUTER))
    assert list(clusters) == sorted(clusters)
    assert set(clusters) == {
        f"outbound|80||{FRONTEND}",
        f"outbound|9080||{BACKEND}",
        f"outbound|9090||{BACKEND}",
        f"outbound|9080||{LEGACY}",
        f"outbound|9080||{BACKEND_SE}",
        f"outbound|5432||{DB}",
        f"outbound|443||{API}",
        f"outbound|8443||{PASSTHROUGH}",
    }
    eds = clusters[f"outbound|9080||{BACKEND}"]
    assert eds.type == cluster_pb2.Cluster.EDS
    assert eds.eds_cluster_config.service_name == eds.name
    assert eds.eds_cluster_config.eds_config.HasField("ads")
    assert eds.connect_timeout.seconds == 10
    dns = clusters[f"outbound|443||{API}"]
    assert dns.type == cluster_pb2.Cluster.STRICT_DNS
    address = dns.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (address.address, address.port_value) == (API, 443)
    original = clusters[f"outbound|8443||{PASSTHROUGH}"]
    assert original.type == cluster_pb2.Cluster.ORIGINAL_DST
    assert original.lb_policy == cluster_pb2.Cluster.CLUSTER_PROVIDED


def test_http2_only_for_grpc_and_http2_ports() -> None:
    clusters = by_name(build_clusters(sample_model(), ROUTER))
    options = http_protocol_options_pb2.HttpProtocolOptions()
    grpc = clusters[f"outbound|9090||{BACKEND}"]
    assert grpc.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Unpack(options)
    assert options.explicit_http_config.HasField("http2_protocol_options")
    assert not clusters[f"outbound|9080||{BACKEND}"].typed_extension_protocol_options


def test_inbound_clusters_follow_label_selection() -> None:
    model = sample_model()
    backend = by_name(build_clusters(model, BACKEND_PROXY))
    inbound = {name: c for name, c in backend.items() if name.startswith("inbound")}
    # 9080 targets 8080; 9090 targets the pod's named port "grpc" = 7070.
    assert set(inbound) == {"inbound|8080||", "inbound|7070||"}
    address = inbound["inbound|8080||"].load_assignment.endpoints[0].lb_endpoints[0]
    socket = address.endpoint.address.socket_address
    assert (socket.address, socket.port_value) == ("127.1.1.1", 8080)
    assert inbound["inbound|7070||"].typed_extension_protocol_options
    frontend = by_name(build_clusters(model, FRONTEND_PROXY))
    assert [n for n in frontend if n.startswith("inbound")] == ["inbound|8000||"]
    for proxy in (ROUTER, DATA_PROXY):  # routers have no inbound; nothing selects client
        assert not [n for n in by_name(build_clusters(model, proxy)) if n.startswith("inbound")]


def test_named_target_port_without_workload_falls_back_to_the_service_port() -> None:
    stranger = sidecar("backend-9", "127.0.1.9", app="backend")
    names = by_name(build_clusters(sample_model(), stranger))
    assert {n for n in names if n.startswith("inbound")} == {"inbound|8080||", "inbound|9090||"}


# --- EDS ---------------------------------------------------------------------------------


def test_endpoints_one_cla_per_eds_cluster_with_ready_endpoints() -> None:
    model = sample_model()
    assignments = by_name(build_endpoints(model, BACKEND_PROXY))
    eds_clusters = [
        c.name for c in build_clusters(model, ROUTER) if c.type == cluster_pb2.Cluster.EDS
    ]
    assert list(assignments) == eds_clusters
    lb = assignments[f"outbound|9080||{BACKEND}"].endpoints[0].lb_endpoints
    sockets = [
        (e.endpoint.address.socket_address.address, e.endpoint.address.socket_address.port_value)
        for e in lb
    ]
    assert sockets == [("127.0.1.1", 8080)]  # 127.0.1.3 is not ready
    assert not assignments[f"outbound|9080||{BACKEND_SE}"].endpoints[0].lb_endpoints


def test_endpoints_are_proxy_independent() -> None:
    model = sample_model()
    first = serialized({"eds": build_endpoints(model, BACKEND_PROXY)})
    assert all(serialized({"eds": build_endpoints(model, p)}) == first for p in ALL_PROXIES)


# --- RDS ---------------------------------------------------------------------------------


def test_route_configs_per_http_port() -> None:
    routes = by_name(build_routes(sample_model(), FRONTEND_PROXY))
    assert list(routes) == ["80", "9080", "9090"]
    vhosts = {v.name: v for v in routes["9080"].virtual_hosts}
    assert list(vhosts) == [f"{BACKEND_SE}:9080", f"{BACKEND}:9080"]
    assert routes["9080"].validate_clusters.value is False
    assert all(v.include_request_attempt_count for r in routes.values() for v in r.virtual_hosts)
    route = vhosts[f"{BACKEND}:9080"].routes[0]
    assert route.match.prefix == "/"
    assert route.route.cluster == f"outbound|9080||{BACKEND}"
    assert route.route.HasField("timeout") and route.route.timeout.ToSeconds() == 0
    retry = route.route.retry_policy
    assert retry.retry_on == (
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    )
    assert retry.num_retries.value == 2
    assert retry.host_selection_retry_max_attempts == 5
    assert [p.name for p in retry.retry_host_predicate] == [
        "envoy.retry_host_predicates.previous_hosts"
    ]


def test_domains_short_names_only_in_own_namespace_and_no_duplicates() -> None:
    model = sample_model()
    own = {
        v.name: list(v.domains)
        for v in by_name(build_routes(model, FRONTEND_PROXY))["9080"].virtual_hosts
    }
    # backend.default belongs to the earlier ServiceEntry host. No ":9080" forms: the
    # configuration ignores the port in Host, as Istio's does for sidecars.
    assert own[f"{BACKEND}:9080"] == [BACKEND, "backend", "backend.default.svc", "10.96.0.10"]
    assert own[f"{BACKEND_SE}:9080"] == [BACKEND_SE]
    assert by_name(build_routes(model, FRONTEND_PROXY))["9080"].ignore_port_in_host_matching
    other = {
        v.name: list(v.domains)
        for v in by_name(build_routes(model, DATA_PROXY))["9080"].virtual_hosts
    }
    assert "backend" not in other[f"{BACKEND}:9080"]
    assert other[f"{BACKEND}:9080"] == [BACKEND, "backend.default.svc", "10.96.0.10"]
    for route_config in build_routes(model, FRONTEND_PROXY):
        domains = [d for v in route_config.virtual_hosts for d in v.domains]
        assert len(domains) == len(set(domains))


def test_an_ipv6_service_address_is_a_bracketed_domain() -> None:
    # Envoy strips the port after the brackets of "Host: [fd00::10]:9080" (RFC 3986).
    svc = kube_service(
        "v6", "default", [ServicePort("http", 9080, Protocol.HTTP)], "v6", ("fd00::10",)
    )
    assert virtual_host_domains(svc, "default")[-1] == "[fd00::10]"


def test_routes_depend_only_on_namespace() -> None:
    model = sample_model()
    assert serialized({"r": build_routes(model, BACKEND_PROXY)}) == serialized(
        {"r": build_routes(model, FRONTEND_PROXY)}
    )
    assert serialized({"r": build_routes(model, BACKEND_PROXY)}) != serialized(
        {"r": build_routes(model, DATA_PROXY)}
    )


# --- LDS ---------------------------------------------------------------------------------


def hcm_of(listener: Any) -> Any:
    hcm = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    return hcm


def test_outbound_listeners_bind_the_outbound_address() -> None:
    listeners = by_name(build_listeners(sample_model(), FRONTEND_PROXY))
    outbound = {n: v for n, v in listeners.items() if v.traffic_direction == base_pb2.OUTBOUND}
    assert set(outbound) == {f"127.2.1.2_{p}" for p in (80, 443, 5432, 8443, 9080, 9090)}
    http = outbound["127.2.1.2_9080"]
    assert http.address.socket_address.address == "127.2.1.2"
    hcm = hcm_of(http)
    assert hcm.stat_prefix == "outbound_127.2.1.2_9080"
    assert hcm.rds.route_config_name == "9080"
    assert hcm.rds.config_source.HasField("ads")
    assert [f.name for f in hcm.http_filters] == [
        "envoy.filters.http.fault",
        "envoy.filters.http.cors",
        "envoy.filters.http.router",
    ]
    tcp = tcp_proxy_pb2.TcpProxy()
    assert outbound["127.2.1.2_5432"].filter_chains[0].filters[0].typed_config.Unpack(tcp)
    assert tcp.cluster == f"outbound|5432||{DB}"


def test_port_conflicts_http_wins_and_are_reported() -> None:
    conflicts = listener_conflicts(sample_model())
    assert len(conflicts) == 1
    assert LEGACY in conflicts[0] and "port 9080" in conflicts[0] and BACKEND in conflicts[0]


def test_inbound_listeners_bind_the_pod_ip() -> None:
    listeners = by_name(build_listeners(sample_model(), BACKEND_PROXY))
    inbound = {n: v for n, v in listeners.items() if v.traffic_direction == base_pb2.INBOUND}
    assert set(inbound) == {"127.0.1.1_8080", "127.0.1.1_7070"}
    route_config = hcm_of(inbound["127.0.1.1_8080"]).route_config
    assert route_config.name == "inbound|8080||"
    vhost = route_config.virtual_hosts[0]
    assert (vhost.name, list(vhost.domains)) == ("inbound|http|8080", ["*"])
    assert vhost.routes[0].route.cluster == "inbound|8080||"
    assert not any(
        v.traffic_direction == base_pb2.INBOUND for v in build_listeners(sample_model(), ROUTER)
    )


# --- whole snapshot ----------------------------------------------------------------------


@pytest.mark.parametrize("proxy", ALL_PROXIES, ids=lambda p: p.pod_name)
def test_resources_are_consistent(proxy: Proxy) -> None:
    resources = build_resources(sample_model(), proxy)
    assert list(resources) == [types.CLUSTER, types.ENDPOINT, types.LISTENER, types.ROUTE]
    assert violations(resources) == []
    for items in resources.values():
        names = list(by_name(items))
        assert names == sorted(names)


def test_invariant_checker_catches_breakage() -> None:
    resources = build_resources(sample_model(), BACKEND_PROXY)
    broken = {**resources, types.ROUTE: resources[types.ROUTE][1:], types.ENDPOINT: []}
    broken[types.CLUSTER] = [*resources[types.CLUSTER], resources[types.CLUSTER][0]]
    found = violations(broken)
    assert any("duplicate cds name" in v for v in found)
    assert any("missing route configuration '80'" in v for v in found)
    assert any("has no ClusterLoadAssignment" in v for v in found)


@pytest.mark.parametrize("proxy", ALL_PROXIES, ids=lambda p: p.pod_name)
def test_deterministic_bytes_whatever_the_input_order(proxy: Proxy) -> None:
    first = serialized(build_resources(sample_model(), proxy))
    assert serialized(build_resources(sample_model(), proxy)) == first
    assert serialized(build_resources(sample_model(shuffle_seed=7), proxy)) == first


def test_endpoint_only_change_touches_only_eds() -> None:
    before = serialized(build_resources(sample_model(), BACKEND_PROXY))
    after = serialized(build_resources(sample_model(extra_backend=True), BACKEND_PROXY))
    for type_url in (types.CLUSTER, types.LISTENER, types.ROUTE):
        assert after[type_url] == before[type_url]
    assert after[types.ENDPOINT] != before[types.ENDPOINT]
