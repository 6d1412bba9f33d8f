"""CDS: the clusters a proxy sends traffic to.

Outbound, one cluster per service port, named as Istio names them
(``outbound|PORT||HOSTNAME``); the service's resolution picks the discovery
type (EDS over ADS, STRICT_DNS, ORIGINAL_DST), and ``translators.envoy.tls.mtls`` its
transport socket (Istio's auto mTLS or the DestinationRule's TLS mode). Each
DestinationRule subset adds a cluster per port, ``outbound|PORT|SUBSET|HOST``;
the rule's merged policy (``translators.mesh.selection.traffic_policy``) sets load
balancing, circuit breakers and outlier detection (``cluster_policy``).
Inbound, for sidecars only, one STATIC cluster per target port of the
services selecting the proxy, named ``inbound|PORT||`` and pointing at the
pod's app address (see ``translators.mesh.model.loopback``).

This module also owns what the other builders share about clusters: their
names, the ADS config source, and which inbound ports a proxy serves. Routes,
listeners and endpoints import these, so a name is spelled in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, protocol_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import duration_pb2

from translators.envoy.cluster_policy import apply_traffic_policy
from translators.envoy.config_source import ads_config_source
from translators.envoy.tls.mtls import apply_upstream_tls
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import Subset
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.services import (
    Protocol,
    Resolution,
    Service,
    ServicePort,
    selector_matches,
)
from translators.mesh.selection.destination_rules import destination_rule_for
from translators.mesh.selection.subsets import subset_endpoints, subsets_of
from translators.mesh.selection.traffic_policy import effective_policy

CONNECT_TIMEOUT_SECONDS = 10
"""Istio's default ``connectTimeout`` (MeshConfig)."""

HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
"""The ``typed_extension_protocol_options`` key for upstream HTTP options."""

_H2_PROTOCOLS = frozenset({Protocol.HTTP2, Protocol.GRPC})


def outbound_cluster_name(port: int, hostname: str, subset: str = "") -> str:
    """Istio's outbound cluster name: ``outbound|PORT|SUBSET|HOSTNAME`` (SUBSET may be empty)."""
    return f"outbound|{port}|{subset}|{hostname}"


def inbound_cluster_name(port: int) -> str:
    """Istio's inbound cluster name: ``inbound|PORT||``, PORT being the target port."""
    return f"inbound|{port}||"


def socket_address(address: str, port: int) -> address_pb2.Address:
    """A TCP socket address."""
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address, port_value=port)
    )


def load_assignment(
    cluster_name: str, addresses: Iterable[tuple[str, int]]
) -> endpoint_pb2.ClusterLoadAssignment:
    """A CLA with one locality holding these ``(address, port)`` endpoints, in order."""
    lb_endpoints = [
        endpoint_components_pb2.LbEndpoint(
            endpoint=endpoint_components_pb2.Endpoint(address=socket_address(addr, port))
        )
        for addr, port in addresses
    ]
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=cluster_name,
        endpoints=[endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=lb_endpoints)],
    )


def ready_addresses(
    model: MeshModel, service: Service, port: int, subset: Subset | None = None
) -> list[tuple[str, int]]:
    """The sorted, distinct ``(address, target port)`` of the ready endpoints of a service port.

    With a ``subset``, only the endpoints it selects (``translators.mesh.selection.subsets``).
    """
    return sorted(
        {
            (ep.address, ep.port)
            for ep in subset_endpoints(model.endpoints_of(service.hostname), subset)
            if ep.ready and ep.service_port == port
        }
    )


def outbound_ports(model: MeshModel) -> Iterator[tuple[Service, ServicePort]]:
    """Every service port with a distinct outbound cluster name, in model order.

    Two services with one hostname (a ServiceEntry host declared in two
    namespaces) would give duplicate names: the first, by namespace, wins.
    """
    seen: set[str] = set()
    for service in model.services:
        for port in service.ports:
            name = outbound_cluster_name(port.port, service.hostname)
            if name not in seen:
                seen.add(name)
                yield service, port


@dataclass(frozen=True, slots=True, order=True)
class InboundPort:
    """A workload port a sidecar accepts traffic on, for the services selecting it.

    Several services (or ports) may target one workload port; ``protocol`` is
    the first HTTP-family protocol among them by hostname, else the first one.
    """

    port: int
    protocol: Protocol


def inbound_ports(model: MeshModel, proxy: Proxy) -> tuple[InboundPort, ...]:
    """The target ports of the services in the proxy's namespace that select it, sorted.

    Routers get none: gateways have no inbound side.
    """
    if proxy.type is not ProxyType.SIDECAR:
        return ()
    found: dict[int, Protocol] = {}
    for service in _selecting(model, proxy):
        for sp in service.ports:
            target = _target_port(model, proxy, sp)
            current = found.get(target)
            if current is None or (sp.protocol.is_http and not current.is_http):
                found[target] = sp.protocol
    return tuple(sorted(InboundPort(p, proto) for p, proto in found.items()))


def _selecting(model: MeshModel, proxy: Proxy) -> Iterator[Service]:
    if not proxy.labels:
        return  # an empty selector selects nothing, so no labels: no service (and no scan)
    for service in model.services:
        if service.namespace == proxy.namespace and selector_matches(
            service.selector, proxy.labels
        ):
            yield service


def _target_port(model: MeshModel, proxy: Proxy, sp: ServicePort) -> int:
    """The numeric target port, else the named container port of the proxy's pod, else the port."""
    if isinstance(sp.target_port, int):
        return sp.target_port
    if isinstance(sp.target_port, str):
        workload = model.workload(proxy.namespace, proxy.pod_name)
        named = dict(workload.ports) if workload else {}
        if sp.target_port in named:
            return named[sp.target_port]
    return sp.port


def build_clusters(model: MeshModel, proxy: Proxy) -> list[cluster_pb2.Cluster]:
    """All clusters for a proxy: outbound for every service port, inbound for sidecars.

    Sorted by name; names are unique.
    """
    clusters = build_outbound_clusters(model) + build_inbound_clusters(model, proxy)
    return sorted(clusters, key=lambda c: str(c.name))


def build_outbound_clusters(model: MeshModel) -> list[cluster_pb2.Cluster]:
    """The outbound clusters, one per service port and DestinationRule subset.

    The same for every proxy, so they can be shared.
    """
    return [
        cluster
        for service, ports in outbound_ports_by_service(model)
        for cluster in build_service_clusters(model, service, ports)
    ]


def outbound_ports_by_service(model: MeshModel) -> list[tuple[Service, tuple[ServicePort, ...]]]:
    """``outbound_ports`` grouped by service, in model order."""
    grouped: dict[int, tuple[Service, list[ServicePort]]] = {}
    for service, port in outbound_ports(model):
        grouped.setdefault(id(service), (service, []))[1].append(port)
    return [(service, tuple(ports)) for service, ports in grouped.values()]


def build_service_clusters(
    model: MeshModel, service: Service, ports: Sequence[ServicePort]
) -> list[cluster_pb2.Cluster]:
    """The outbound clusters of one service: each of ``ports``, and each DestinationRule subset.

    Reads only ``service``, its endpoints (``model.endpoints_of``) and
    ``model.policies``, so a caller may memoize the result on those.
    """
    return [
        _outbound_cluster(model, service, port, subset)
        for port in ports
        for subset in (None, *subsets_of(model, service))
    ]


def build_inbound_clusters(model: MeshModel, proxy: Proxy) -> list[cluster_pb2.Cluster]:
    """The inbound clusters of one proxy (none for a gateway)."""
    return [_inbound_cluster(proxy, inbound) for inbound in inbound_ports(model, proxy)]


def _outbound_cluster(
    model: MeshModel, service: Service, port: ServicePort, subset: Subset | None = None
) -> cluster_pb2.Cluster:
    subset_name = subset.name if subset is not None else ""
    name = outbound_cluster_name(port.port, service.hostname, subset_name)
    cluster = _base_cluster(name, port.protocol)
    _set_istio_metadata(cluster, service, port.port, subset_name)
    if service.resolution is Resolution.STATIC:
        cluster.type = cluster_pb2.Cluster.EDS
        cluster.eds_cluster_config.eds_config.CopyFrom(ads_config_source())
        cluster.eds_cluster_config.service_name = name
    elif service.resolution is Resolution.DNS:
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_ONLY
        # Istio's DNS ServiceEntry without endpoints resolves the host itself.
        addresses = ready_addresses(model, service, port.port, subset) or [
            (service.hostname, port.port)
        ]
        cluster.load_assignment.CopyFrom(load_assignment(name, addresses))
    else:
        cluster.type = cluster_pb2.Cluster.ORIGINAL_DST
        cluster.lb_policy = cluster_pb2.Cluster.CLUSTER_PROVIDED
    apply_upstream_tls(cluster, model, service, port, subset_name)
    rule = destination_rule_for(model.policies, service)
    policy = effective_policy(rule, subset_name, port.port)
    apply_traffic_policy(cluster, policy, port.protocol.is_http)
    return cluster


def _inbound_cluster(proxy: Proxy, inbound: InboundPort) -> cluster_pb2.Cluster:
    name = inbound_cluster_name(inbound.port)
    cluster = _base_cluster(name, inbound.protocol)
    cluster.type = cluster_pb2.Cluster.STATIC
    cluster.load_assignment.CopyFrom(load_assignment(name, [(proxy.app_address, inbound.port)]))
    return cluster


def _base_cluster(name: str, protocol: Protocol) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(
        name=name, connect_timeout=duration_pb2.Duration(seconds=CONNECT_TIMEOUT_SECONDS)
    )
    if protocol in _H2_PROTOCOLS:
        cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Pack(_h2_options())
    return cluster


def _h2_options() -> http_protocol_options_pb2.HttpProtocolOptions:
    options = http_protocol_options_pb2.HttpProtocolOptions
    return options(
        explicit_http_config=options.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()
        )
    )


def _set_istio_metadata(
    cluster: cluster_pb2.Cluster, service: Service, port: int, subset: str = ""
) -> None:
    """Istio's ``filter_metadata.istio``: which service a cluster stands for (for debugging)."""
    metadata: dict[str, object] = {
        "services": [
            {"host": service.hostname, "name": service.name, "namespace": service.namespace}
        ],
        "default_original_port": port,
    }
    if subset:
        metadata["subset"] = subset
    cluster.metadata.filter_metadata["istio"].update(metadata)
