"""Consistency checks over a set of xDS resources, like Istio's ``xdstest``.

``violations(resources)`` returns every broken invariant as a sentence, so a
failing test names them all at once:

1. Names are unique within each type.
2. Every route configuration an HTTP connection manager asks RDS for exists.
3. Every EDS cluster has a ClusterLoadAssignment (by ``service_name`` or name).
4. Every cluster a route or ``tcp_proxy`` sends to exists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from xds_server import types

Resources = Mapping[str, Sequence[Any]]


def resource_name(resource: Any) -> str:
    """A resource's name (``cluster_name`` for a ClusterLoadAssignment)."""
    return str(getattr(resource, "cluster_name", "") or resource.name)


def http_connection_managers(listeners: Iterable[Any]) -> Iterator[Any]:
    """Every HttpConnectionManager in the listeners' filter chains."""
    for listener in listeners:
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                hcm = hcm_pb2.HttpConnectionManager()
                if network_filter.typed_config.Unpack(hcm):
                    yield hcm


def tcp_proxy_clusters(listeners: Iterable[Any]) -> Iterator[str]:
    """The clusters of every ``tcp_proxy`` in the listeners' filter chains."""
    for listener in listeners:
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                proxy = tcp_proxy_pb2.TcpProxy()
                if network_filter.typed_config.Unpack(proxy):
                    yield str(proxy.cluster)


def route_clusters(route_configs: Iterable[Any]) -> Iterator[str]:
    """The clusters every route of these route configurations sends to."""
    for config in route_configs:
        for vhost in config.virtual_hosts:
            for route in vhost.routes:
                if route.route.cluster:
                    yield str(route.route.cluster)
                for weighted in route.route.weighted_clusters.clusters:
                    yield str(weighted.name)


def violations(resources: Resources) -> list[str]:
    """Every broken invariant of the module docstring, described."""
    found = [
        f"duplicate {types.short_name(type_url)} name {name!r}"
        for type_url, items in sorted(resources.items())
        for name, count in sorted(Counter(map(resource_name, items)).items())
        if count > 1
    ]
    clusters = {resource_name(c) for c in resources.get(types.CLUSTER, ())}
    assignments = {resource_name(c) for c in resources.get(types.ENDPOINT, ())}
    routes = {resource_name(r) for r in resources.get(types.ROUTE, ())}
    listeners = resources.get(types.LISTENER, ())
    hcms = list(http_connection_managers(listeners))
    found += [
        f"listener asks RDS for missing route configuration {hcm.rds.route_config_name!r}"
        for hcm in hcms
        if hcm.HasField("rds") and hcm.rds.route_config_name not in routes
    ]
    for cluster in resources.get(types.CLUSTER, ()):
        wanted = cluster.eds_cluster_config.service_name or cluster.name
        if cluster.type == cluster_pb2.Cluster.EDS and wanted not in assignments:
            found.append(f"EDS cluster {cluster.name!r} has no ClusterLoadAssignment {wanted!r}")
    inline = [hcm.route_config for hcm in hcms if hcm.HasField("route_config")]
    referenced = [
        *route_clusters([*resources.get(types.ROUTE, ()), *inline]),
        *tcp_proxy_clusters(listeners),
    ]
    found += [
        f"missing cluster {name!r} is referenced" for name in referenced if name not in clusters
    ]
    return found
