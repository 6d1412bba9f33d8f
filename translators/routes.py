"""RDS: the outbound route configurations, one per HTTP port number.

As in Istio, the outbound HTTP listener on port P asks for the route
configuration named ``"P"``; it holds one virtual host per service with an
HTTP-family port P, named ``HOSTNAME:P``, matching the names a client may put
in ``Host``: the FQDN, Kubernetes short forms, and the service addresses, each
bare and with ``:P``. The bare service name is only offered to proxies of the
service's own namespace (that is where it resolves), so a route configuration
depends only on the model and the proxy's namespace, and proxies of one
namespace share its bytes.

Envoy rejects a route configuration in which two virtual hosts claim one
domain, so when services collide the first by hostname keeps the domain.
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from google.protobuf import duration_pb2, wrappers_pb2

from translators.clusters import outbound_cluster_name, outbound_ports
from translators.model import MeshModel, Service
from translators.proxy import Proxy

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
"""Istio's default ``retry_on`` (pilot/pkg/networking/core/route/retry ``DefaultPolicy``)."""

DEFAULT_RETRIABLE_STATUS_CODES = (503,)
"""Istio retries 503s by default unless ``EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`` is set."""

PREVIOUS_HOSTS_PREDICATE = "envoy.retry_host_predicates.previous_hosts"


def build_routes(model: MeshModel, proxy: Proxy) -> list[route_pb2.RouteConfiguration]:
    """One route configuration per HTTP-family service port number, sorted by port.

    Reads only ``proxy.namespace``.
    """
    by_port: dict[int, list[Service]] = {}
    for service, port in outbound_ports(model):
        if port.protocol.is_http:
            by_port.setdefault(port.port, []).append(service)
    return [
        _route_configuration(port, services, proxy.namespace)
        for port, services in sorted(by_port.items())
    ]


def _route_configuration(
    port: int, services: Iterable[Service], namespace: str
) -> route_pb2.RouteConfiguration:
    taken: set[str] = set()
    virtual_hosts = []
    for service in sorted(services, key=lambda s: (s.hostname, s.namespace)):
        domains = [d for d in virtual_host_domains(service, port, namespace) if d not in taken]
        if not domains:
            continue  # every name is claimed by earlier services; Envoy needs at least one
        taken.update(domains)
        virtual_hosts.append(
            route_components_pb2.VirtualHost(
                name=f"{service.hostname}:{port}",
                domains=domains,
                routes=[
                    catch_all_route(
                        outbound_cluster_name(port, service.hostname), default_retry_policy()
                    )
                ],
            )
        )
    return route_pb2.RouteConfiguration(
        name=str(port),
        virtual_hosts=virtual_hosts,
        validate_clusters=wrappers_pb2.BoolValue(value=False),
    )


def virtual_host_domains(service: Service, port: int, namespace: str) -> list[str]:
    """The ``Host`` values that reach a service port, as Istio's ``generateVirtualHostDomains``.

    The FQDN; for Kubernetes services ``name.ns.svc`` and ``name.ns``, and the
    bare ``name`` for proxies in ``namespace`` == the service's; then the
    service addresses. Each bare and with ``:port``, without duplicates.
    """
    hosts = [service.hostname]
    if service.is_kubernetes:
        name, ns = service.name, service.namespace
        hosts += [f"{name}.{ns}.svc", f"{name}.{ns}"]
        if ns == namespace:
            hosts.append(name)
    hosts += service.addresses
    domains: list[str] = []
    for host in hosts:
        for domain in (host, _with_port(host, port)):
            if domain not in domains:
                domains.append(domain)
    return domains


def _with_port(host: str, port: int) -> str:
    # An IPv6 address takes brackets before a port, as in a Host header.
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def catch_all_route(
    cluster: str, retry_policy: route_components_pb2.RetryPolicy | None = None
) -> route_components_pb2.Route:
    """A route sending every path to ``cluster``, with Istio's disabled route timeout (0s)."""
    action = route_components_pb2.RouteAction(
        cluster=cluster, timeout=duration_pb2.Duration(seconds=0)
    )
    if retry_policy is not None:
        action.retry_policy.CopyFrom(retry_policy)
    return route_components_pb2.Route(
        name="default",
        match=route_components_pb2.RouteMatch(prefix="/"),
        route=action,
    )


def default_retry_policy() -> route_components_pb2.RetryPolicy:
    """Istio's default retry policy: 2 retries on connection-level failures and 503s.

    Retries prefer hosts not yet tried (``previous_hosts``), picking up to 5
    times, as Istio's ``retry.DefaultPolicy``.
    """
    predicate = route_components_pb2.RetryPolicy.RetryHostPredicate(name=PREVIOUS_HOSTS_PREDICATE)
    predicate.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
    return route_components_pb2.RetryPolicy(
        retry_on=DEFAULT_RETRY_ON,
        num_retries=wrappers_pb2.UInt32Value(value=2),
        retriable_status_codes=DEFAULT_RETRIABLE_STATUS_CODES,
        retry_host_predicate=[predicate],
        host_selection_retry_max_attempts=5,
    )
