"""Snapshots for proxies from one mesh model, serializing each shared resource once.

Invariants:

1. A ``SnapshotBuilder`` belongs to one immutable ``MeshModel``; a new model
   gets a new builder, so nothing here is ever invalidated by hand.
2. Each part of a snapshot is memoized on exactly the inputs its translator
   reads: outbound clusters and endpoints on nothing (the model), routes on
   the proxy's namespace, outbound listeners on the bind address, inbound
   clusters and listeners on the proxy. Proxies with equal inputs get the very
   same ``Resource`` objects, hence the same bytes, serialized once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from translators.clusters import build_inbound_clusters, build_outbound_clusters
from translators.endpoints import build_endpoints
from translators.listeners import build_inbound_listeners, build_outbound_listeners
from translators.model import MeshModel
from translators.proxy import Proxy
from translators.routes import build_routes
from xds_server import types
from xds_server.snapshot import Resource, ResourceSet, Snapshot, resource_name


class SnapshotBuilder:
    """Builds and memoizes per-proxy snapshots of one model."""

    def __init__(self, model: MeshModel) -> None:
        self.model = model
        self._parts: dict[tuple[str, Hashable], tuple[Resource, ...]] = {}

    def snapshot(self, proxy: Proxy) -> Snapshot:
        """The snapshot for ``proxy``: every type, sharing resources with other proxies."""
        m = self.model
        clusters = self._part(types.CLUSTER, "outbound", lambda: build_outbound_clusters(m))
        clusters += self._part(types.CLUSTER, proxy, lambda: build_inbound_clusters(m, proxy))
        endpoints = self._part(types.ENDPOINT, "all", lambda: build_endpoints(m, proxy))
        listeners = self._part(
            types.LISTENER,
            proxy.outbound_address,
            lambda: build_outbound_listeners(m, proxy.outbound_address),
        )
        listeners += self._part(types.LISTENER, proxy, lambda: build_inbound_listeners(m, proxy))
        routes = self._part(types.ROUTE, proxy.namespace, lambda: build_routes(m, proxy))
        return Snapshot.of(
            ResourceSet.of(t, rs)
            for t, rs in (
                (types.CLUSTER, clusters),
                (types.ENDPOINT, endpoints),
                (types.LISTENER, listeners),
                (types.ROUTE, routes),
            )
        )

    def _part(
        self, type_url: str, key: Hashable, build: Callable[[], Sequence[Any]]
    ) -> tuple[Resource, ...]:
        found = self._parts.get((type_url, key))
        if found is None:
            found = tuple(Resource.of(type_url, resource_name(m), m) for m in build())
            self._parts[(type_url, key)] = found
        return found
