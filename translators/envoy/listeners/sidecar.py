"""LDS: where a proxy accepts traffic.

Outbound, one listener per service port number, bound at the proxy's outbound
address (``127.2.X.Y``, see ``translators.mesh.model.loopback``) and named
``{address}_{port}`` as Istio names its listeners. An HTTP-family port gets an
HTTP connection manager that asks RDS for route configuration ``"PORT"``; a
TCP-family port gets a ``tcp_proxy`` to the service's cluster, or where a
VirtualService routes it, to its ``tcp`` destinations, with a filter chain
per ``tls`` route's SNI names (``l4_routes``). The HTTP connection manager
carries Istio's CORS and fault filters before the router. One port number
can serve only one of these, so when services share it, HTTP wins (all HTTP
services share the route configuration), then the first TCP service by
hostname; ``listener_conflicts`` names what lost, for callers to log.

Inbound (sidecars only), one listener per target port of the services that
select the proxy, bound at the pod IP, sending to ``inbound|PORT||`` through
an inline route configuration (HTTP) or ``tcp_proxy`` (TCP). Its filter
chains follow the port's PeerAuthentication mode (``translators.envoy.tls.mtls``:
TLS only, plaintext only, or both behind the TLS inspector); an HTTP chain
forwards the client's identity to the app in ``x-forwarded-client-cert``,
as Istio's sidecars do. The AuthorizationPolicies that apply to the proxy
become RBAC filters in every inbound chain (``translators.envoy.listeners.authz``),
preceded on HTTP chains by the ``jwt_authn`` filter of the RequestAuthentications
that apply to it (``translators.envoy.listeners.jwt_authn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import message

from translators.envoy.clusters import (
    InboundPort,
    inbound_cluster_name,
    inbound_ports,
    outbound_cluster_name,
    outbound_ports,
    socket_address,
)
from translators.envoy.config_source import ads_config_source
from translators.envoy.listeners.authz import (
    applicable_policies,
    http_rbac_filters,
    network_rbac_filters,
)
from translators.envoy.listeners.jwt_authn import jwt_authn_filters
from translators.envoy.listeners.l4_routes import TLS_INSPECTOR, outbound_tcp_chains
from translators.envoy.routes.sidecar import catch_all_route
from translators.envoy.routes.virtual_service import CORS_FILTER, FAULT_FILTER, RoutingView
from translators.envoy.tls.mtls import inbound_chains
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import AuthorizationPolicy
from translators.mesh.model.proxy import Proxy
from translators.mesh.model.routing import VirtualService
from translators.mesh.model.services import Protocol, Service
from translators.mesh.selection.peer_authentication import effective_mode
from translators.mesh.selection.request_authentication import jwt_rules_for
from translators.mesh.selection.virtual_services import mesh_virtual_services

HCM_FILTER = "envoy.filters.network.http_connection_manager"
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
ROUTER_FILTER = "envoy.filters.http.router"


@dataclass(frozen=True, slots=True)
class OutboundPort:
    """What the outbound listener on one port number serves.

    ``tcp_hostname`` is empty for an HTTP listener (routed by RDS ``"PORT"``),
    else the hostname of the TCP service that got the port. ``sni_hostnames`` are the TLS
    (and HTTPS) services that share that port with it: each gets a filter chain matching
    its host as SNI, as Istio serves several TLS ServiceEntries on one port.
    """

    port: int
    tcp_hostname: str = ""
    sni_hostnames: tuple[str, ...] = ()


def outbound_listener_ports(model: MeshModel) -> tuple[list[OutboundPort], list[str]]:
    """The outbound port plan, sorted by port, and a description of every service port dropped."""
    http: dict[int, list[Service]] = {}
    tcp: dict[int, list[Service]] = {}
    sni: set[tuple[int, str]] = set()
    for service, sp in outbound_ports(model):
        (http if sp.protocol.is_http else tcp).setdefault(sp.port, []).append(service)
        if sp.protocol in (Protocol.TLS, Protocol.HTTPS) and service.hostname != "*":
            sni.add((sp.port, service.hostname))
    plan: list[OutboundPort] = []
    dropped: list[str] = []
    for port in sorted(http.keys() | tcp.keys()):
        losers = tcp.get(port, [])
        if port in http:
            winner = "HTTP services " + ", ".join(s.hostname for s in http[port])
            plan.append(OutboundPort(port))
        else:
            first, rest = losers[0], losers[1:]
            winner = f"TCP service {first.hostname}"
            sharing = tuple(s.hostname for s in rest if (port, s.hostname) in sni)
            losers = [s for s in rest if (port, s.hostname) not in sni]
            plan.append(OutboundPort(port, first.hostname, sharing))
        dropped += [
            f"port {port}: TCP service {s.hostname} gets no outbound listener; "
            f"the port is taken by {winner}"
            for s in losers
        ]
    return plan, dropped


def listener_conflicts(model: MeshModel) -> list[str]:
    """Service ports that share a port number and lost their outbound listener, described."""
    return outbound_listener_ports(model)[1]


def build_listeners(model: MeshModel, proxy: Proxy) -> list[listener_pb2.Listener]:
    """Outbound listeners for every service port number, inbound ones for sidecars; by name."""
    listeners = build_outbound_listeners(model, proxy.outbound_address, proxy=proxy)
    listeners += build_inbound_listeners(model, proxy)
    return sorted(listeners, key=lambda listener: str(listener.name))


def build_outbound_listeners(
    model: MeshModel,
    address: str,
    plan: Sequence[OutboundPort] | None = None,
    *,
    proxy: Proxy | None = None,
) -> list[listener_pb2.Listener]:
    """Outbound listeners bound at ``address``: shared by proxies with that bind address.

    ``plan`` is ``outbound_listener_ports(model)[0]``, if the caller already has it
    (it depends on the services alone, while the listeners depend on the address).
    With ``proxy``, TCP listeners follow the VirtualService ``tcp``/``tls``
    routes that apply to it (``l4_routes``; reads the proxy's namespace and, via
    ``sourceLabels``, labels); without, every TCP port goes to its service.
    """
    ports = plan if plan is not None else outbound_listener_ports(model)[0]
    routing = _L4Routing.of(model, proxy) if proxy is not None else None
    return [_outbound_listener(address, port, routing) for port in ports]


def build_inbound_listeners(model: MeshModel, proxy: Proxy) -> list[listener_pb2.Listener]:
    """The inbound listeners of one proxy, at its pod IP (none for a gateway)."""
    inbound = inbound_ports(model, proxy)
    if not inbound:
        return []
    applicable = applicable_policies(model.policies, proxy.namespace, proxy.labels)
    rules = jwt_rules_for(model.policies, proxy.namespace, proxy.labels)
    http_filters = [*jwt_authn_filters(rules), *http_rbac_filters(applicable)]
    return [_inbound_listener(model, proxy, port, applicable, http_filters) for port in inbound]


@dataclass(frozen=True, slots=True)
class _L4Routing:
    """What TCP/TLS VirtualService routing reads for one proxy."""

    view: RoutingView
    virtual_services: tuple[VirtualService, ...]

    @staticmethod
    def of(model: MeshModel, proxy: Proxy) -> _L4Routing:
        view = RoutingView.of(model, proxy.labels, proxy.namespace)
        return _L4Routing(view, mesh_virtual_services(model.virtual_services, proxy.namespace))


def _outbound_listener(
    address: str, port: OutboundPort, routing: _L4Routing | None = None
) -> listener_pb2.Listener:
    listener = _listener(address, port.port, base_pb2.OUTBOUND)
    service = routing.view.services.get(port.tcp_hostname) if routing is not None else None
    if routing is not None and service is not None:
        sharing = [routing.view.services.get(h) for h in port.sni_hostnames]
        listener_filters, chains = outbound_tcp_chains(
            routing.view,
            routing.virtual_services,
            service,
            port.port,
            [s for s in sharing if s is not None],
        )
        listener.listener_filters.extend(listener_filters)
        listener.filter_chains.extend(chains)
        return listener
    if port.tcp_hostname:
        cluster = outbound_cluster_name(port.port, port.tcp_hostname)
        network_filter = _tcp_proxy(cluster)
        if port.sni_hostnames:
            listener.listener_filters.add(name=TLS_INSPECTOR).typed_config.Pack(
                tls_inspector_pb2.TlsInspector()
            )
        for host in port.sni_hostnames:
            listener.filter_chains.add(
                filter_chain_match=listener_components_pb2.FilterChainMatch(server_names=[host]),
                filters=[_tcp_proxy(outbound_cluster_name(port.port, host))],
            )
    else:
        hcm = _hcm(f"outbound_{address}_{port.port}", outbound_http_filters())
        hcm.rds.config_source.CopyFrom(ads_config_source())
        hcm.rds.route_config_name = str(port.port)
        network_filter = _filter(HCM_FILTER, hcm)
    listener.filter_chains.add(filters=[network_filter])
    return listener


def outbound_http_filters() -> list[hcm_pb2.HttpFilter]:
    """Istio's outbound (and gateway) HTTP filters before the router, in Istio's order: fault
    injection, then CORS (so a fault answers before CORS would).

    Both do nothing unless a route carries their ``typed_per_filter_config``
    (a VirtualService ``fault`` or ``corsPolicy``, see ``routes.virtual_service``).
    """
    fault = hcm_pb2.HttpFilter(name=FAULT_FILTER)
    fault.typed_config.Pack(fault_pb2.HTTPFault())
    cors = hcm_pb2.HttpFilter(name=CORS_FILTER)
    cors.typed_config.Pack(cors_pb2.Cors())
    return [fault, cors]


def _inbound_listener(
    model: MeshModel,
    proxy: Proxy,
    inbound: InboundPort,
    applicable: tuple[AuthorizationPolicy, ...],
    http_filters: Sequence[hcm_pb2.HttpFilter],
) -> listener_pb2.Listener:
    address, cluster = proxy.ip, inbound_cluster_name(inbound.port)
    if inbound.protocol.is_http:
        hcm = _hcm(f"inbound_{address}_{inbound.port}", http_filters)
        hcm.route_config.CopyFrom(_inbound_route_configuration(inbound.port))
        hcm.forward_client_cert_details = hcm_pb2.HttpConnectionManager.APPEND_FORWARD
        details = hcm.set_current_client_cert_details
        details.subject.value, details.uri, details.dns = True, True, True
        filters = [_filter(HCM_FILTER, hcm)]
    else:
        filters = [*network_rbac_filters(applicable), _tcp_proxy(cluster)]
    mode = effective_mode(model.policies, proxy.namespace, proxy.labels, inbound.port)
    listener_filters, chains = inbound_chains(mode, filters)
    listener = _listener(address, inbound.port, base_pb2.INBOUND)
    listener.listener_filters.extend(listener_filters)
    listener.filter_chains.extend(chains)
    return listener


def _inbound_route_configuration(port: int) -> route_pb2.RouteConfiguration:
    cluster = inbound_cluster_name(port)
    return route_pb2.RouteConfiguration(
        name=cluster,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=f"inbound|http|{port}", domains=["*"], routes=[catch_all_route(cluster)]
            )
        ],
    )


def _listener(address: str, port: int, direction: int) -> listener_pb2.Listener:
    return listener_pb2.Listener(
        name=f"{address}_{port}",
        address=socket_address(address, port),
        traffic_direction=direction,
    )


def _hcm(
    stat_prefix: str, filters: Sequence[hcm_pb2.HttpFilter] = ()
) -> hcm_pb2.HttpConnectionManager:
    """An HTTP connection manager ending in the router; websocket upgrades are allowed, as
    Istio allows them on every HTTP listener (``upgrade_configs``)."""
    router = hcm_pb2.HttpFilter(name=ROUTER_FILTER)
    router.typed_config.Pack(router_pb2.Router())
    return hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        http_filters=[*filters, router],
        upgrade_configs=[hcm_pb2.HttpConnectionManager.UpgradeConfig(upgrade_type="websocket")],
    )


def _tcp_proxy(cluster: str) -> listener_components_pb2.Filter:
    return _filter(TCP_PROXY_FILTER, tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster))


def _filter(name: str, config: message.Message) -> listener_components_pb2.Filter:
    network_filter = listener_components_pb2.Filter(name=name)
    network_filter.typed_config.Pack(config)
    return network_filter
