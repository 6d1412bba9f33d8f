"""RDS: the outbound route configurations, one per HTTP port number.

As in Istio, the outbound HTTP listener on port P asks for the route
configuration named ``"P"``; it holds one virtual host per service with an
HTTP-family port P, named ``HOSTNAME:P``, matching the names a client may put
in ``Host``: the FQDN, Kubernetes short forms, and the service addresses. As
Istio does for sidecars (``SidecarIgnorePort``), the domains carry no port and
the configuration sets ``ignore_port_in_host_matching``, so ``Host: name:P``
matches ``name``; that halves the domains of every virtual host. The bare
service name is only offered to proxies of the service's own namespace (that
is where it resolves), so a route configuration depends only on the model and
the proxy's namespace, and proxies of one namespace share its bytes.

Envoy rejects a route configuration in which two virtual hosts claim one
domain, so when services collide the first by hostname keeps the domain.

A service's routes come from the VirtualService that applies to it for this
proxy (``selection.virtual_services``), else Istio's default route (``virtual_service``). Route
names, ``validate_clusters: false`` (a route may name a cluster that does
not exist: Envoy answers 503), the default retry policy and
``include_request_attempt_count`` on every virtual host (upstream requests carry
``x-envoy-attempt-count``) are Istio's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from envoy.config.route.v3 import route_components_pb2, route_pb2
from google.protobuf import duration_pb2, wrappers_pb2

from translators.envoy.clusters import outbound_ports
from translators.envoy.routes.retry import default_retry_policy as default_retry_policy  # re-export
from translators.envoy.routes.virtual_service import RoutingView, service_routes
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy
from translators.mesh.model.routing import VirtualService
from translators.mesh.model.services import Service
from translators.mesh.selection.virtual_services import mesh_virtual_services, virtual_service_for


def build_routes(model: MeshModel, proxy: Proxy) -> list[route_pb2.RouteConfiguration]:
    """One route configuration per HTTP-family service port number, sorted by port.

    Reads ``proxy.namespace`` and, through VirtualService ``sourceLabels``,
    ``proxy.labels`` (``selection.virtual_services.source_label_key`` says how far).
    """
    by_port: dict[int, list[Service]] = {}
    for service, port in outbound_ports(model):
        if port.protocol.is_http:
            by_port.setdefault(port.port, []).append(service)
    view = RoutingView.of(model, proxy.labels, proxy.namespace)
    vss = mesh_virtual_services(model.virtual_services, proxy.namespace)
    return [
        _route_configuration(view, vss, port, services)
        for port, services in sorted(by_port.items())
    ]


def _route_configuration(
    view: RoutingView,
    vss: Sequence[VirtualService],
    port: int,
    services: Iterable[Service],
) -> route_pb2.RouteConfiguration:
    taken: set[str] = set()
    virtual_hosts = []
    for service in sorted(services, key=lambda s: (s.hostname, s.namespace)):
        domains = [d for d in virtual_host_domains(service, view.proxy_namespace) if d not in taken]
        if not domains:
            continue  # every name is claimed by earlier services; Envoy needs at least one
        taken.update(domains)
        vs = virtual_service_for(vss, service.hostname)
        virtual_hosts.append(
            route_components_pb2.VirtualHost(
                name=f"{service.hostname}:{port}",
                domains=domains,
                routes=service_routes(view, service, port, vs),
                include_request_attempt_count=True,  # x-envoy-attempt-count, as Istio sets
            )
        )
    return route_pb2.RouteConfiguration(
        name=str(port),
        virtual_hosts=virtual_hosts,
        validate_clusters=wrappers_pb2.BoolValue(value=False),
        ignore_port_in_host_matching=True,
    )


def virtual_host_domains(service: Service, namespace: str) -> list[str]:
    """The ``Host`` values that reach a service, as Istio's ``generateVirtualHostDomains``
    for a sidecar (no ``:port`` forms: the route configuration ignores the port).

    The FQDN; for a Kubernetes service, the bare ``name``, ``name.ns.svc`` and
    ``name.ns`` for proxies in its namespace, else ``name.ns`` and ``name.ns.svc``
    (Istio's order); then the service addresses, an IPv6 one in brackets as in a
    ``Host`` header (Envoy strips the port after them). Without duplicates.
    """
    hosts = [service.hostname]
    if service.is_kubernetes:
        name, ns = service.name, service.namespace
        if ns == namespace:
            hosts += [name, f"{name}.{ns}.svc", f"{name}.{ns}"]
        else:
            hosts += [f"{name}.{ns}", f"{name}.{ns}.svc"]
    hosts += (f"[{a}]" if ":" in a else a for a in service.addresses)
    return list(dict.fromkeys(hosts))


def catch_all_route(
    cluster: str, retry_policy: route_components_pb2.RetryPolicy | None = None
) -> route_components_pb2.Route:
    """A route sending every path to ``cluster``, with Istio's disabled route timeout (0s)."""
    action = route_components_pb2.RouteAction(
        cluster=cluster, timeout=duration_pb2.Duration(seconds=0)
    )
    action.max_grpc_timeout.CopyFrom(action.timeout)  # Istio's choice; see invariant 5
    if retry_policy is not None:
        action.retry_policy.CopyFrom(retry_policy)
    return route_components_pb2.Route(
        name="default",
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=action,
    )
