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
        self._parts: dict[tuple[str, Hashable], ResourceSet] = {}

    def snapshot(self, proxy: Proxy) -> Snapshot:
        """The snapshot for ``proxy``: every type, sharing resources with other proxies."""
        m = self.model
        out = proxy.outbound_address
        return Snapshot.of(
            (
                self._combine(
                    self._part(types.CLUSTER, "outbound", lambda: build_outbound_clusters(m)),
                    self._part(types.CLUSTER, proxy, lambda: build_inbound_clusters(m, proxy)),
                ),
                self._part(types.ENDPOINT, "all", lambda: build_endpoints(m, proxy)),
                self._combine(
                    self._part(types.LISTENER, out, lambda: build_outbound_listeners(m, out)),
                    self._part(types.LISTENER, proxy, lambda: build_inbound_listeners(m, proxy)),
                ),
                self._part(types.ROUTE, proxy.namespace, lambda: build_routes(m, proxy)),
            )
        )

    @staticmethod
    def _combine(shared: ResourceSet, own: ResourceSet) -> ResourceSet:
        return ResourceSet.combine(shared.type_url, (shared, own))

    def _part(
        self, type_url: str, key: Hashable, build: Callable[[], Sequence[Any]]
    ) -> ResourceSet:
        found = self._parts.get((type_url, key))
        if found is None:
            found = ResourceSet.of(
                type_url, (Resource.of(type_url, resource_name(m), m) for m in build())
            )
            self._parts[(type_url, key)] = found
        return found
