"""EDS: the endpoints of every outbound EDS cluster.

One ``ClusterLoadAssignment`` per service port whose service resolution is
STATIC (the clusters ``build_clusters`` makes with type EDS), holding the
ready endpoints of that port, and one per DestinationRule subset of it
(``outbound|PORT|SUBSET|HOST``) holding those whose labels include the
subset's (``translators.mesh.selection.subsets``). An endpoint with a sidecar that accepts mTLS
carries Istio's ``envoy.transport_socket_match: {tlsMode: istio}`` metadata
(``translators.envoy.tls.mtls``), so auto mTLS picks its transport socket. The output
depends on the model alone, never on the proxy, so every sidecar can be sent
the same bytes (Istio's EDS cache is shared across proxies for the same
reason).
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.endpoint.v3 import endpoint_pb2

from translators.envoy.clusters import (
    load_assignment,
    outbound_cluster_name,
    outbound_ports_by_service,
)
from translators.envoy.tls.mtls import endpoint_uses_mtls, set_tls_mode_metadata
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import Subset
from translators.mesh.model.proxy import Proxy
from translators.mesh.model.services import Resolution, Service, ServicePort
from translators.mesh.selection.subsets import subset_endpoints, subsets_of


def build_endpoints(model: MeshModel, proxy: Proxy) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """A CLA for every outbound EDS cluster, sorted by cluster name.

    ``proxy`` is taken for the builders' uniform signature only: the result is
    the same for every proxy. A port without ready endpoints still gets an
    (empty) CLA, so the cluster finishes warming instead of waiting for one.
    """
    del proxy  # endpoints are proxy-independent by design
    assignments = [
        cla
        for service, ports in outbound_ports_by_service(model)
        for cla in build_service_endpoints(model, service, ports)
    ]
    return sorted(assignments, key=lambda cla: str(cla.cluster_name))


def build_service_endpoints(
    model: MeshModel, service: Service, ports: Sequence[ServicePort]
) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """The CLAs of one service's EDS clusters (none unless it resolves STATIC).

    Reads only ``service``, its endpoints and ``model.policies``, so a caller
    may memoize the result on those.
    """
    if service.resolution is not Resolution.STATIC:
        return []
    return [
        _assignment(model, service, port.port, subset)
        for port in ports
        for subset in (None, *subsets_of(model, service))
    ]


def _assignment(
    model: MeshModel, service: Service, port: int, subset: Subset | None = None
) -> endpoint_pb2.ClusterLoadAssignment:
    """The CLA of one service port (subset): ready endpoints by (address, port), marked for mTLS."""
    ready = sorted(
        (
            ep
            for ep in subset_endpoints(model.endpoints_of(service.hostname), subset)
            if ep.ready and ep.service_port == port
        ),
        key=lambda ep: (ep.address, ep.port),
    )
    name = outbound_cluster_name(port, service.hostname, subset.name if subset else "")
    cla = load_assignment(name, [(ep.address, ep.port) for ep in ready])
    for lb_endpoint, ep in zip(cla.endpoints[0].lb_endpoints, ready, strict=True):
        if endpoint_uses_mtls(model, service, ep):
            set_tls_mode_metadata(lb_endpoint.metadata)
    return cla
