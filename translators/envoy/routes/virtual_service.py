"""The routes of one service's virtual host on one port, from its VirtualService (or default).

Invariants, following Istio's ``BuildHTTPRoutesForVirtualService`` and
``translateRoute``:

1. HTTP routes are tried in order and the first match wins: each ``match``
   of an ``http[]`` entry becomes one Envoy route (named ``name`` or
   ``name.matchName``); a route without ``match`` matches everything and
   ends the list, as does any catch-all match. Matches that cannot apply to
   this proxy or port (``selection.virtual_services.http_match_applies``) are left out.
2. A VirtualService none of whose routes applies leaves the service with
   Istio's default route (cluster ``outbound|PORT||HOST``, default retries).
3. One destination routes to its cluster; several become
   ``weighted_clusters``, leaving out those of weight 0. A destination
   without ``port`` uses the service's only port, else the listener port.
   An unknown host or subset still gets its cluster name: Envoy answers
   503 (no cluster) as with Istio; ``mesh.analysis`` warns about it.
4. Each destination's DestinationRule consistent hash becomes a hash
   policy (``traffic_policy.consistent_hash``); a single hashed destination
   makes retries keep the host (Istio's ``DefaultConsistentHashPolicy``).
5. The route timeout is the VirtualService's, else 0s (disabled), as Istio; a gRPC
   request's ``grpc-timeout`` header may set a shorter one, capped by the same value
   (``max_grpc_timeout``; 0: no cap). Istio sets this deprecated field, not its replacement
   ``max_stream_duration``, and so must pyistiod: a route with ``max_stream_duration`` set
   uses Envoy's "new timeouts", which ignore the route ``timeout`` altogether.
6. Each route carries Istio's tracing decorator: ``HOST:PORT/PATH`` of its one cluster
   (``PATH``: the match's prefix followed by ``*``, its exact path or regex; ``/*``
   without), else ``VIRTUALSERVICE:PORT/PATH`` when it splits traffic or does not route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.matcher.v3 import regex_pb2
from google.protobuf import duration_pb2

from translators.envoy.cluster_policy import duration
from translators.envoy.clusters import outbound_cluster_name
from translators.envoy.routes import route_parts as parts
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import Policies
from translators.mesh.model.routing import (
    Destination,
    HeaderOperations,
    HttpMatch,
    HttpRoute,
    RouteDestination,
    VirtualService,
)
from translators.mesh.model.services import Labels, Service
from translators.mesh.selection.destination_rules import destination_rule_for
from translators.mesh.selection.traffic_policy import consistent_hash
from translators.mesh.selection.virtual_services import http_match_applies

FAULT_FILTER = "envoy.filters.http.fault"
CORS_FILTER = "envoy.filters.http.cors"


@dataclass(frozen=True, slots=True)
class RoutingView:
    """What route building reads: services by hostname, policies, and the proxy's side."""

    services: Mapping[str, Service]
    policies: Policies
    proxy_labels: Labels
    proxy_namespace: str

    @staticmethod
    def of(model: MeshModel, labels: Labels, namespace: str) -> RoutingView:
        """The view of ``model`` for a proxy with these labels in ``namespace``."""
        return RoutingView(_by_host(model.services), model.policies, labels, namespace)


_BY_HOST: dict[int, tuple[tuple[Service, ...], Mapping[str, Service]]] = {}
"""Services by hostname, memoized on the identity of the (immutable) services tuple: every
proxy's view of one model shares one index instead of rebuilding it per proxy."""


def _by_host(services: tuple[Service, ...]) -> Mapping[str, Service]:
    hit = _BY_HOST.get(id(services))
    if hit is not None and hit[0] is services:
        return hit[1]
    by_host: dict[str, Service] = {}
    for service in services:
        by_host.setdefault(service.hostname, service)
    if len(_BY_HOST) >= 8:
        _BY_HOST.clear()
    _BY_HOST[id(services)] = (services, MappingProxyType(by_host))
    return _BY_HOST[id(services)][1]


def destination_cluster(view: RoutingView, dest: Destination, listen_port: int) -> str:
    """Istio's ``GetDestinationCluster`` (invariant 3)."""
    service = view.services.get(dest.host)
    port = dest.port
    if port is None:
        port = service.ports[0].port if service is not None and len(service.ports) == 1 else None
    return outbound_cluster_name(port or listen_port, dest.host, dest.subset)


def _hash_for(view: RoutingView, dest: Destination) -> rc.RouteAction.HashPolicy | None:
    service = view.services.get(dest.host)
    if service is None:
        return None
    ch = consistent_hash(destination_rule_for(view.policies, service), dest.subset, dest.port)
    return parts.hash_policy(ch) if ch is not None else None


def default_route(view: RoutingView, service: Service, port: int) -> rc.Route:
    """Istio's default outbound route, with the DestinationRule's hash policy (invariant 2)."""
    rule = destination_rule_for(view.policies, service)
    ch = consistent_hash(rule, "", port)
    action = rc.RouteAction(
        cluster=outbound_cluster_name(port, service.hostname),
        timeout=duration_pb2.Duration(seconds=0),
    )
    action.max_grpc_timeout.CopyFrom(action.timeout)  # Istio's choice; see invariant 5
    retry = parts.retry_policy(None, ch is not None)
    if retry is not None:
        action.retry_policy.CopyFrom(retry)
    if ch is not None:
        action.hash_policy.append(parts.hash_policy(ch))
    return rc.Route(
        name="default",
        match=rc.RouteMatch(prefix="/"),
        route=action,
        decorator=rc.Decorator(operation=f"{service.hostname}:{port}/*"),
    )


def service_routes(
    view: RoutingView, service: Service, port: int, vs: VirtualService | None
) -> list[rc.Route]:
    """The routes of ``service``'s virtual host on ``port`` (invariants 1, 2)."""
    routes = virtual_service_routes(view, vs, port) if vs is not None else []
    return routes or [default_route(view, service, port)]


def virtual_service_routes(view: RoutingView, vs: VirtualService, port: int) -> list[rc.Route]:
    """The Envoy routes of ``vs`` for this proxy and listener port (invariant 1)."""
    out: list[rc.Route] = []
    for http in vs.http:
        matches: Sequence[HttpMatch | None] = http.matches or (None,)
        for match in matches:
            if not http_match_applies(match, port, view.proxy_labels, view.proxy_namespace):
                continue
            route = translate_route(view, http, match, port, vs.name)
            out.append(route)
            if parts.is_catch_all(route):
                return out
        if not http.matches:
            return out
    return out


def translate_route(
    view: RoutingView, http: HttpRoute, match: HttpMatch | None, port: int, vs_name: str = ""
) -> rc.Route:
    """Istio's ``translateRoute``: one Envoy route for one match of an ``http[]`` entry of the
    VirtualService ``vs_name``."""
    name = f"{http.name}.{match.name}" if match is not None and match.name else http.name
    out = rc.Route(name=name, match=parts.route_match(match))
    if http.headers is not None:
        _add_headers(out, http.headers)
    if http.redirect is not None:
        out.redirect.CopyFrom(parts.redirect_action(http.redirect, port))
    elif http.direct_response is not None:
        out.direct_response.status = http.direct_response.status
        if http.direct_response.body:
            out.direct_response.body.inline_string = http.direct_response.body
    else:
        out.route.CopyFrom(_route_action(view, http, port, out))
    if http.fault is not None:
        out.typed_per_filter_config[FAULT_FILTER].Pack(parts.http_fault(http.fault))
    if http.cors is not None:
        out.typed_per_filter_config[CORS_FILTER].Pack(parts.cors_policy(http.cors))
    out.decorator.operation = route_operation(out, vs_name, port)
    return out


def route_operation(route: rc.Route, vs_name: str, port: int) -> str:
    """Istio's ``getRouteOperation``: the tracing name of a route (invariant 6)."""
    m = route.match
    which = m.WhichOneof("path_specifier")
    path = {"prefix": m.prefix + "*", "path": m.path, "safe_regex": m.safe_regex.regex}.get(
        which or "", "/*"
    )
    cluster = route.route.cluster if route.HasField("route") else ""
    direction, cluster_port, _, host = [*cluster.split("|"), "", "", "", ""][:4]
    if direction == "outbound" and cluster_port.isdigit() and host:
        return f"{host}:{cluster_port}{path}"
    return f"{vs_name}:{port}{path}"


def _route_action(view: RoutingView, http: HttpRoute, port: int, out: rc.Route) -> rc.RouteAction:
    action = rc.RouteAction()
    action.timeout.CopyFrom(duration(http.timeout or 0))
    action.max_grpc_timeout.CopyFrom(action.timeout)  # Istio's choice; see invariant 5
    authority = parts.authority_of(http.headers)
    if http.rewrite is not None:
        if http.rewrite.regex_match:
            action.regex_rewrite.pattern.CopyFrom(
                regex_pb2.RegexMatcher(regex=http.rewrite.regex_match)
            )
            action.regex_rewrite.substitution = http.rewrite.regex_rewrite
        elif http.rewrite.uri:
            action.prefix_rewrite = http.rewrite.uri
        authority = http.rewrite.authority or authority
    if authority:
        action.host_rewrite_literal = authority
    if http.mirror is not None:
        action.request_mirror_policies.add(
            cluster=destination_cluster(view, http.mirror.destination, port),
            runtime_fraction={"default_value": parts.fractional_percent(http.mirror.percent)},
            trace_sampled={"value": False},
        )
    hashed = _set_destinations(view, action, http.route, port, out)
    retry = parts.retry_policy(http.retries, hashed)
    if retry is not None:
        action.retry_policy.CopyFrom(retry)
    return action


def _set_destinations(
    view: RoutingView,
    action: rc.RouteAction,
    route: tuple[RouteDestination, ...],
    port: int,
    out: rc.Route,
) -> bool:
    """Cluster or weighted clusters (invariant 3), hash policies (invariant 4)."""
    if len(route) == 1:
        dest = route[0]
        action.cluster = destination_cluster(view, dest.destination, port)
        if dest.headers is not None:
            _add_headers(out, dest.headers)
        hashing = _hash_for(view, dest.destination)
        if hashing is not None:
            action.hash_policy.append(hashing)
        return hashing is not None
    for dest in route:
        if not dest.weight:
            continue
        weighted = action.weighted_clusters.clusters.add(
            name=destination_cluster(view, dest.destination, port)
        )
        weighted.weight.value = dest.weight
        if dest.headers is not None:
            _add_headers(weighted, dest.headers)
        hashing = _hash_for(view, dest.destination)
        if hashing is not None:
            action.hash_policy.append(hashing)
    return False


def _add_headers(
    target: rc.Route | rc.WeightedCluster.ClusterWeight, ops: HeaderOperations
) -> None:
    """Append Istio's header operations to a route or a weighted cluster (same four fields)."""
    req_add, req_remove, resp_add, resp_remove = parts.header_mutations(ops)
    target.request_headers_to_add.extend(req_add)
    target.request_headers_to_remove.extend(req_remove)
    target.response_headers_to_add.extend(resp_add)
    target.response_headers_to_remove.extend(resp_remove)
