"""VirtualService ``tcp`` and ``tls`` routes on a sidecar's outbound TCP listener.

Invariants, following Istio's ``buildSidecarOutboundTCPTLSFilterChainOpts``:

1. TCP: the first ``tcp[]`` route with a match that applies to the proxy
   and port (or with no match) picks the destination: one cluster, or
   ``weighted_clusters`` without the 0-weight ones. None applies: the
   service's own cluster, as without a VirtualService.
2. TLS: each ``tls[]`` route with an applicable match becomes a filter
   chain matching its ``sniHosts`` (``server_names``, read by the TLS
   inspector), in order; a last chain without ``server_names`` sends the
   rest to the TCP choice above. SNI names already claimed by an earlier
   chain are dropped, since Envoy refuses duplicate filter chain matches.
3. Services sharing the port by SNI (TLS ServiceEntries on one port,
   ``OutboundPort.sni_hostnames``) add, each, the chains of their own ``tls[]`` routes and
   one matching their host, to their ``tcp`` choice (invariant 1); the default chain stays
   the port's first service's. A name is claimed once across all of them.
4. Cluster names follow ``routes.virtual_service.destination_cluster`` (unknown hosts
   and subsets give clusters that do not exist: the connection is closed).
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.listener.v3 import listener_components_pb2 as lc
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf import message

from translators.envoy.clusters import outbound_cluster_name
from translators.envoy.routes.virtual_service import RoutingView, destination_cluster
from translators.mesh.model.routing import L4Route, RouteDestination, VirtualService
from translators.mesh.model.services import Service
from translators.mesh.selection.virtual_services import l4_match_applies, virtual_service_for

TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"


def _applies(view: RoutingView, route: L4Route, port: int) -> list[str] | None:
    """``None`` if no match applies; else the SNI names of the applicable matches."""
    if not route.matches:
        return []
    names = [
        name
        for m in route.matches
        if l4_match_applies(m, port, view.proxy_labels, view.proxy_namespace)
        for name in m.sni_hosts
    ]
    applicable = any(
        l4_match_applies(m, port, view.proxy_labels, view.proxy_namespace) for m in route.matches
    )
    return names if applicable else None


def tcp_proxy(
    view: RoutingView, route: Sequence[RouteDestination], port: int, stat_prefix: str
) -> tcp_proxy_pb2.TcpProxy:
    """A ``tcp_proxy`` to one cluster, or weighted clusters (invariant 1)."""
    if len(route) == 1:
        cluster = destination_cluster(view, route[0].destination, port)
        return tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)
    out = tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix)
    for dest in route:
        if dest.weight:
            out.weighted_clusters.clusters.add(
                name=destination_cluster(view, dest.destination, port), weight=dest.weight
            )
    return out


def _tcp_choice(
    view: RoutingView, vs: VirtualService | None, service: Service, port: int
) -> tcp_proxy_pb2.TcpProxy:
    for route in vs.tcp if vs is not None else ():
        if _applies(view, route, port) is not None:
            return tcp_proxy(view, route.route, port, outbound_cluster_name(port, service.hostname))
    cluster = outbound_cluster_name(port, service.hostname)
    return tcp_proxy_pb2.TcpProxy(stat_prefix=cluster, cluster=cluster)


def outbound_tcp_chains(
    view: RoutingView,
    vss: Sequence[VirtualService],
    service: Service,
    port: int,
    sharing: Sequence[Service] = (),
) -> tuple[list[lc.ListenerFilter], list[lc.FilterChain]]:
    """Listener filters and filter chains of the outbound TCP listener (invariants 1-3)."""
    vs = virtual_service_for(vss, service.hostname)
    default = lc.FilterChain(
        filters=[_filter(TCP_PROXY_FILTER, _tcp_choice(view, vs, service, port))]
    )
    chains: list[lc.FilterChain] = []
    claimed: set[str] = set()

    def add(names: Sequence[str], config: tcp_proxy_pb2.TcpProxy) -> None:
        names = [n for n in names if n not in claimed]
        if names:
            claimed.update(names)
            chains.append(
                lc.FilterChain(
                    filter_chain_match=lc.FilterChainMatch(server_names=names),
                    filters=[_filter(TCP_PROXY_FILTER, config)],
                )
            )

    for owner in (service, *sharing):
        owned = vs if owner is service else virtual_service_for(vss, owner.hostname)
        stat_prefix = outbound_cluster_name(port, owner.hostname)
        for route in owned.tls if owned is not None else ():
            add(_applies(view, route, port) or [], tcp_proxy(view, route.route, port, stat_prefix))
        if owner is not service:
            add([owner.hostname], _tcp_choice(view, owned, owner, port))
    if not chains:
        return [], [default]
    inspector = lc.ListenerFilter(name=TLS_INSPECTOR)
    inspector.typed_config.Pack(tls_inspector_pb2.TlsInspector())
    return [inspector], [*chains, default]


def _filter(name: str, config: message.Message) -> lc.Filter:
    out = lc.Filter(name=name)
    out.typed_config.Pack(config)
    return out
