"""RDS for gateways: route configurations built from the VirtualServices bound to servers.

Names are Istio's (``gatewayRDSRouteName``): plain HTTP servers on a port
share ``http.PORT``; a terminated HTTPS server gets its own
``https.PORT.PORTNAME.GATEWAY.NAMESPACE``; a ``bind`` adds ``.BIND``.
Invariants:

1. One virtual host per bound host (``gateway_binding``), named
   ``HOST:PORT`` with the one domain ``HOST``; the listener strips the port
   from ``Host`` (``strip_any_host_port``, as Istio's gateways), so
   ``shop.example.com:8080`` matches too. A request for a host no
   VirtualService binds matches no virtual host: Envoy answers 404.
2. A server with ``tls.httpsRedirect`` marks its virtual hosts
   ``require_tls: ALL`` (Envoy redirects plain HTTP to https, 301); its
   hosts get a virtual host even when no VirtualService binds them.
3. The routes of a virtual host come from an ``HttpRoutesFn``, by default
   ``virtual_service_http_routes`` (the sidecar's VirtualService route
   translator, ``virtual_service``), so this module knows nothing of matches,
   rewrites or retries. Routes of several VirtualServices binding
   one host are appended in (namespace, name) order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from envoy.config.route.v3 import route_components_pb2, route_pb2
from google.protobuf import wrappers_pb2

from translators.envoy.clusters import outbound_cluster_name
from translators.envoy.routes.sidecar import catch_all_route, default_retry_policy
from translators.envoy.routes.virtual_service import RoutingView, virtual_service_routes
from translators.mesh.model.gateways import Gateway, GatewayServer, ServerProtocol
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy
from translators.mesh.model.routing import VirtualService
from translators.mesh.selection.gateway_binding import (
    DestinationView,
    VirtualServiceView,
    bindings,
    gateways_for,
    virtual_services_of,
)

HttpRoutesFn = Callable[[MeshModel, VirtualServiceView, int], Sequence[route_components_pb2.Route]]
"""Envoy routes for a VirtualService's ``http`` on a gateway server port."""


def http_route_name(port: int, bind: str = "") -> str:
    """Istio's RDS name for plain HTTP gateway servers: ``http.PORT[.BIND]``."""
    return f"http.{port}" + (f".{bind}" if bind else "")


def https_route_name(gateway: Gateway, server: GatewayServer) -> str:
    """Istio's RDS name for a terminated HTTPS server: ``https.PORT.NAME.GW.NS[.BIND]``."""
    name = f"https.{server.port}.{server.port_name}.{gateway.name}.{gateway.namespace}"
    return name + (f".{server.bind}" if server.bind else "")


def route_name(gateway: Gateway, server: GatewayServer) -> str | None:
    """The RDS name a server's HTTP connection manager asks for; None if it has none."""
    if server.protocol.is_http:
        return http_route_name(server.port, server.bind)
    if server.protocol is ServerProtocol.HTTPS and not server.passthrough:
        return https_route_name(gateway, server)
    return None


def destination_cluster(model: MeshModel, dest: DestinationView) -> str:
    """The outbound cluster of a destination: its port, else the service's only port."""
    port = dest.port
    if port is None:
        service = next((s for s in model.services if s.hostname == dest.host), None)
        port = service.ports[0].port if service is not None and len(service.ports) == 1 else 80
    if dest.subset:
        return f"outbound|{port}|{dest.subset}|{dest.host}"
    return outbound_cluster_name(port, dest.host)


def default_http_routes(
    model: MeshModel, vs: VirtualServiceView, port: int
) -> list[route_components_pb2.Route]:
    """Every path to the VirtualService's first HTTP destination (invariant 3)."""
    del port  # the destination names its own port
    for http in vs.http:
        for target in http.route:
            cluster = destination_cluster(model, target.destination)
            return [catch_all_route(cluster, default_retry_policy())]
    return []


def virtual_service_http_routes(
    model: MeshModel, vs: VirtualServiceView, port: int
) -> list[route_components_pb2.Route]:
    """The VirtualService's routes as the sidecar translator makes them (``virtual_service``).

    Matches naming gateways are Istio's per-match gateway scoping; the sidecar
    translator keeps only ``mesh`` ones, so such matches are left out here.
    """
    if not isinstance(vs, VirtualService):
        return default_http_routes(model, vs, port)
    view = RoutingView.of(model, frozenset(), vs.namespace)
    return virtual_service_routes(view, vs, port)


def build_gateway_routes(
    model: MeshModel,
    proxy: Proxy,
    http_routes: HttpRoutesFn = virtual_service_http_routes,
    virtual_services: Sequence[VirtualServiceView] | None = None,
) -> list[route_pb2.RouteConfiguration]:
    """The route configurations of a router's gateway servers, sorted by name.

    ``virtual_services`` defaults to the model's (``virtual_services_of``).
    """
    vss = virtual_services_of(model) if virtual_services is None else virtual_services
    groups: dict[str, list[tuple[Gateway, GatewayServer]]] = {}
    for gateway in gateways_for(model, proxy):
        for server in gateway.servers:
            name = route_name(gateway, server)
            if name is not None:
                groups.setdefault(name, []).append((gateway, server))
    return [
        _route_configuration(model, vss, name, group, http_routes)
        for name, group in sorted(groups.items())
    ]


def _route_configuration(
    model: MeshModel,
    virtual_services: Sequence[VirtualServiceView],
    name: str,
    group: list[tuple[Gateway, GatewayServer]],
    http_routes: HttpRoutesFn,
) -> route_pb2.RouteConfiguration:
    hosts: dict[str, route_components_pb2.VirtualHost] = {}
    seen: set[tuple[str, str, str]] = set()
    for gateway, server in group:
        redirect = server.tls is not None and server.tls.https_redirect
        for binding in bindings(virtual_services, gateway, server):
            vs = binding.virtual_service
            if not vs.http:
                continue  # a tls/tcp-only VirtualService makes no virtual host
            vhost = _virtual_host(hosts, binding.host, server.port, redirect)
            if (vs.namespace, vs.name, binding.host) not in seen:
                seen.add((vs.namespace, vs.name, binding.host))
                vhost.routes.extend(http_routes(model, vs, server.port))
        if redirect:
            for allowed in server.hosts:
                _virtual_host(hosts, allowed.host, server.port, redirect)
    kept = [vh for host, vh in sorted(hosts.items()) if vh.routes or vh.require_tls]
    return route_pb2.RouteConfiguration(
        name=name, virtual_hosts=kept, validate_clusters=wrappers_pb2.BoolValue(value=False)
    )


def _virtual_host(
    hosts: dict[str, route_components_pb2.VirtualHost], host: str, port: int, redirect: bool
) -> route_components_pb2.VirtualHost:
    vhost = hosts.get(host)
    if vhost is None:
        vhost = route_components_pb2.VirtualHost(
            name=f"{host}:{port}", domains=[host], include_request_attempt_count=True
        )
        hosts[host] = vhost
    if redirect:
        vhost.require_tls = route_components_pb2.VirtualHost.ALL
    return vhost
