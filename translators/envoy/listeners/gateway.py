"""LDS for gateways: one listener per (address, port) of the servers a router runs.

A listener binds the server's ``bind`` address, else the router's pod IP
(here every pod shares the loopback, so Istio's ``0.0.0.0`` would collide),
and is named ``ADDRESS_PORT``: Istio's rule for listener names, which gives
``0.0.0.0_8080`` when it binds the wildcard address. Filter chains, in order:

1. Terminated TLS servers (HTTPS, or TLS not PASSTHROUGH): one chain per
   server, matched by SNI on the server's hosts (no SNI match for ``*``),
   with the server's ``DownstreamTlsContext`` (``tls.gateway``); HTTPS gets
   an HTTP connection manager on RDS ``https.PORT...``, TLS a ``tcp_proxy``
   to the bound VirtualService's ``tcp`` destination.
2. PASSTHROUGH servers: one chain per bound VirtualService ``tls`` route,
   matched by its SNI hosts (narrowed to the server's), ``tcp_proxy`` to its
   first destination; without a bound VirtualService, one chain per
   concrete server host that names a service, to that service's port.
3. Plain HTTP servers: one chain without match, HCM on RDS ``http.PORT``;
   else TCP servers: ``tcp_proxy`` to the bound ``tcp`` destination.
   The chain without a match catches connections no SNI chain took.

A chain whose match repeats an earlier one is dropped (Envoy refuses
duplicates); the TLS inspector is added when any chain matches on SNI or
terminates TLS. Every HTTP connection manager starts with the ``jwt_authn``
filter of the RequestAuthentications selecting the gateway pod, if any
(``jwt_authn``, invariant 5), then the RBAC filters of the AuthorizationPolicies
selecting it (``authz``, as on a sidecar's inbound chains); TCP chains get the
network RBAC filters before ``tcp_proxy``. Pure: reads the model's gateways,
VirtualServices, services, RequestAuthentications and AuthorizationPolicies and
the proxy's namespace, labels and IP.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import wrappers_pb2

from translators.envoy.clusters import outbound_cluster_name, socket_address
from translators.envoy.config_source import ads_config_source
from translators.envoy.listeners.authz import (
    applicable_policies,
    http_rbac_filters,
    network_rbac_filters,
)
from translators.envoy.listeners.jwt_authn import jwt_authn_filters
from translators.envoy.listeners.sidecar import (
    HCM_FILTER,
    TCP_PROXY_FILTER,
    _filter,
    _hcm,
    _tcp_proxy,
    outbound_http_filters,
)
from translators.envoy.routes.gateway import destination_cluster, route_name
from translators.envoy.tls.gateway import downstream_context
from translators.envoy.tls.mtls import TLS_INSPECTOR, TLS_SOCKET, transport_socket
from translators.mesh.model.gateways import Gateway, GatewayServer, ServerProtocol
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy
from translators.mesh.selection.gateway_binding import (
    L4RouteView,
    VirtualServiceView,
    bindings,
    gateways_for,
    intersect,
    virtual_services_of,
)
from translators.mesh.selection.request_authentication import jwt_rules_for

Chain = listener_components_pb2.FilterChain
"""Constructor alias; annotations spell ``listener_components_pb2.FilterChain``."""
Servers = list[tuple[Gateway, GatewayServer]]
HttpFilters = Sequence[hcm_pb2.HttpFilter]


def build_gateway_listeners(
    model: MeshModel, proxy: Proxy, virtual_services: Sequence[VirtualServiceView] | None = None
) -> list[listener_pb2.Listener]:
    """The listeners of a router's gateway servers, sorted by name (none for sidecars).

    ``virtual_services`` defaults to the model's (``virtual_services_of``).
    """
    vss = virtual_services_of(model) if virtual_services is None else virtual_services
    plan: dict[tuple[str, int], Servers] = {}
    for gateway in gateways_for(model, proxy):
        for server in gateway.servers:
            plan.setdefault((server.bind or proxy.ip, server.port), []).append((gateway, server))
    rules = jwt_rules_for(model.policies, proxy.namespace, proxy.labels)
    applicable = applicable_policies(model.policies, proxy.namespace, proxy.labels)
    filters = [
        *jwt_authn_filters(rules, clear_route_cache=True),
        *http_rbac_filters(applicable),
        *outbound_http_filters(),
    ]
    tcp_rbac = network_rbac_filters(applicable)
    listeners = [
        _listener(model, vss, address, port, servers, filters, tcp_rbac)
        for (address, port), servers in plan.items()
    ]
    return sorted(listeners, key=lambda listener: str(listener.name))


def _listener(
    model: MeshModel,
    vss: Sequence[VirtualServiceView],
    address: str,
    port: int,
    servers: Servers,
    filters: HttpFilters,
    tcp_rbac: Sequence[listener_components_pb2.Filter] = (),
) -> listener_pb2.Listener:
    listener = listener_pb2.Listener(
        name=f"{address}_{port}",
        address=socket_address(address, port),
        traffic_direction=base_pb2.OUTBOUND,
    )
    chains: list[listener_components_pb2.FilterChain] = []
    keys: set[bytes] = set()
    for chain in _chains(model, vss, servers, filters):
        key = chain.filter_chain_match.SerializeToString(deterministic=True)
        if key not in keys:
            keys.add(key)
            if tcp_rbac and chain.filters and chain.filters[0].name == TCP_PROXY_FILTER:
                proxy_filter = list(chain.filters)
                del chain.filters[:]
                chain.filters.extend([*tcp_rbac, *proxy_filter])
            chains.append(chain)
    listener.filter_chains.extend(chains)
    if any(c.HasField("transport_socket") or c.filter_chain_match.server_names for c in chains):
        inspector = listener_components_pb2.ListenerFilter(name=TLS_INSPECTOR)
        inspector.typed_config.Pack(tls_inspector_pb2.TlsInspector())
        listener.listener_filters.append(inspector)
    return listener


def _chains(
    model: MeshModel, vss: Sequence[VirtualServiceView], servers: Servers, filters: HttpFilters
) -> Iterator[listener_components_pb2.FilterChain]:
    for gateway, server in servers:
        if server.tls is not None and server.tls.mode.terminates and not server.protocol.is_http:
            yield _terminating_chain(model, vss, gateway, server, filters)
    for gateway, server in servers:
        if server.passthrough:
            yield from _passthrough_chains(model, vss, gateway, server)
    for gateway, server in servers:
        if server.protocol.is_http:
            yield Chain(filters=[_http_filter(gateway, server, filters)])
            return
    for gateway, server in servers:
        if server.protocol is ServerProtocol.TCP:
            cluster = _tcp_cluster(model, vss, gateway, server)
            if cluster:
                yield Chain(filters=[_tcp_proxy(cluster)])
                return


def _http_filter(
    gateway: Gateway, server: GatewayServer, filters: HttpFilters
) -> listener_components_pb2.Filter:
    hcm = _hcm(f"outbound_{server.bind or '0.0.0.0'}_{server.port}", filters)
    hcm.rds.config_source.CopyFrom(ads_config_source())
    hcm.rds.route_config_name = route_name(gateway, server) or ""
    hcm.strip_any_host_port = True
    hcm.use_remote_address.CopyFrom(wrappers_pb2.BoolValue(value=True))
    hcm.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
    return _filter(HCM_FILTER, hcm)


def _server_names(server: GatewayServer) -> list[str]:
    hosts = [h.host for h in server.hosts]
    return [] if "*" in hosts else sorted(set(hosts))


def _terminating_chain(
    model: MeshModel,
    vss: Sequence[VirtualServiceView],
    gateway: Gateway,
    server: GatewayServer,
    http_filters: HttpFilters,
) -> listener_components_pb2.FilterChain:
    if server.protocol is ServerProtocol.HTTPS:
        filters = [_http_filter(gateway, server, http_filters)]
    else:
        cluster = _tcp_cluster(model, vss, gateway, server)
        filters = [_tcp_proxy(cluster)] if cluster else []
    socket = transport_socket(TLS_SOCKET, downstream_context(server))
    match = listener_components_pb2.FilterChainMatch(server_names=_server_names(server))
    return Chain(filter_chain_match=match, filters=filters, transport_socket=socket)


def _passthrough_chains(
    model: MeshModel, vss: Sequence[VirtualServiceView], gateway: Gateway, server: GatewayServer
) -> Iterator[listener_components_pb2.FilterChain]:
    routes = [
        route
        for binding in _unique_vs(vss, gateway, server)
        for route in binding.tls
        if _port_ok(route, server.port)
    ]
    allowed = [h.host for h in server.hosts]
    for route in routes:
        names = sorted(
            {
                n
                for m in route.matches
                for sni in m.sni_hosts
                for a in allowed
                if (n := intersect(sni, a))
            }
        )
        if names and route.route:
            cluster = destination_cluster(model, route.route[0].destination)
            match = listener_components_pb2.FilterChainMatch(server_names=names)
            yield Chain(filter_chain_match=match, filters=[_tcp_proxy(cluster)])
    if routes:
        return
    for service in model.services:
        if service.hostname in allowed and service.port(server.port) is not None:
            match = listener_components_pb2.FilterChainMatch(server_names=[service.hostname])
            cluster = outbound_cluster_name(server.port, service.hostname)
            yield Chain(filter_chain_match=match, filters=[_tcp_proxy(cluster)])


def _unique_vs(
    vss: Sequence[VirtualServiceView], gateway: Gateway, server: GatewayServer
) -> list[VirtualServiceView]:
    out: list[VirtualServiceView] = []
    for binding in bindings(vss, gateway, server):
        if all(binding.virtual_service is not vs for vs in out):
            out.append(binding.virtual_service)
    return out


def _port_ok(route: L4RouteView, port: int) -> bool:
    ports = [m.port for m in route.matches if m.port is not None]
    return not ports or port in ports


def _tcp_cluster(
    model: MeshModel, vss: Sequence[VirtualServiceView], gateway: Gateway, server: GatewayServer
) -> str:
    for vs in _unique_vs(vss, gateway, server):
        for route in vs.tcp:
            if _port_ok(route, server.port) and route.route:
                return destination_cluster(model, route.route[0].destination)
    return ""
