"""EDS: the endpoints of every outbound EDS cluster.

One ``ClusterLoadAssignment`` per service port whose service resolution is
STATIC (the clusters ``build_clusters`` makes with type EDS), holding the
ready endpoints of that port. The output depends on the model alone, never on
the proxy, so every sidecar can be sent the same bytes (Istio's EDS cache is
shared across proxies for the same reason).
"""

from __future__ import annotations

from envoy.config.endpoint.v3 import endpoint_pb2

from translators.clusters import (
    load_assignment,
    outbound_cluster_name,
    outbound_ports,
    ready_addresses,
)
from translators.model import MeshModel, Resolution
from translators.proxy import Proxy


def build_endpoints(model: MeshModel, proxy: Proxy) -> list[endpoint_pb2.ClusterLoadAssignment]:
    """A CLA for every outbound EDS cluster, sorted by cluster name.

    ``proxy`` is taken for the builders' uniform signature only: the result is
    the same for every proxy. A port without ready endpoints still gets an
    (empty) CLA, so the cluster finishes warming instead of waiting for one.
    """
    del proxy  # endpoints are proxy-independent by design
    assignments = [
        load_assignment(
            outbound_cluster_name(port.port, service.hostname),
            ready_addresses(model, service, port.port),
        )
        for service, port in outbound_ports(model)
        if service.resolution is Resolution.STATIC
    ]
    return sorted(assignments, key=lambda cla: str(cla.cluster_name))
