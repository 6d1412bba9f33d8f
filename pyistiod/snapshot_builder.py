"""Snapshots for proxies from a mesh model, serializing each shared resource once.

Invariants:

1. Each part of a snapshot is memoized on the inputs its translator reads:
   outbound clusters and endpoints on the services, endpoints and security
   policies; routes on the services and the proxy's namespace; outbound
   listeners on the services and the bind address; inbound clusters on the
   services, the workloads and the proxy; inbound listeners on those and the
   policies. Proxies with equal inputs get the very same
   ``ResourceSet`` objects, hence the same bytes, serialized once.
2. An input is represented in memo keys by a *token*: a new model whose
   services (endpoints, workloads) equal the previous model's keeps the
   previous token, so the parts built from them are reused across models.
   An endpoint-only change therefore rebuilds EDS and nothing else, and no
   invalidation is written by hand: a stale token simply matches nothing.
3. Memory follows the connected proxies: a predecessor's parts are only
   candidates, adopted when asked for and dropped by ``seal``; ``forget``
   drops a disconnected proxy's own parts.
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


class _Token:
    """Stands for one value of one model input in memo keys (compared by identity)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} token {id(self):x}>"


class SnapshotBuilder:
    """Builds and memoizes per-proxy snapshots of one model, reusing a predecessor's parts."""

    def __init__(self, model: MeshModel, previous: SnapshotBuilder | None = None) -> None:
        self.model = model
        self.services = _carry(previous, "services", model, lambda m: m.services)
        self.endpoints = _carry(previous, "endpoints", model, lambda m: m.endpoints)
        self.workloads = _carry(previous, "workloads", model, lambda m: m.workloads)
        self.policies = _carry(previous, "policies", model, lambda m: m.policies)
        self._parts: dict[tuple[Hashable, ...], ResourceSet] = {}
        self._owned: dict[Proxy, list[tuple[Hashable, ...]]] = {}
        self._candidates = previous._parts if previous is not None else {}

    def seal(self) -> None:
        """Drop the predecessor's parts that were not adopted (call after a full rebuild)."""
        self._candidates = {}

    def forget(self, proxy: Proxy) -> None:
        """Drop the parts built for ``proxy`` (it disconnected).

        That includes its outbound listeners, keyed by bind address; another
        proxy sharing the address keeps its snapshot and rebuilds the part if
        it needs it again.
        """
        for key in self._owned.pop(proxy, ()):
            self._parts.pop(key, None)

    def snapshot(self, proxy: Proxy) -> Snapshot:
        """The snapshot for ``proxy``: every type, sharing resources with other proxies."""
        m, svc, eps, wls, pol = (
            self.model,
            self.services,
            self.endpoints,
            self.workloads,
            self.policies,
        )
        out = proxy.outbound_address
        clusters = self._combine(
            self._part(types.CLUSTER, (svc, eps, pol), lambda: build_outbound_clusters(m)),
            self._part(
                types.CLUSTER, (svc, wls, proxy), lambda: build_inbound_clusters(m, proxy), proxy
            ),
        )
        listeners = self._combine(
            self._part(types.LISTENER, (svc, out), lambda: build_outbound_listeners(m, out), proxy),
            self._part(
                types.LISTENER,
                (svc, wls, pol, proxy),
                lambda: build_inbound_listeners(m, proxy),
                proxy,
            ),
        )
        endpoints = self._part(types.ENDPOINT, (svc, eps, pol), lambda: build_endpoints(m, proxy))
        routes = self._part(types.ROUTE, (svc, proxy.namespace), lambda: build_routes(m, proxy))
        return Snapshot.of((clusters, endpoints, listeners, routes))

    @staticmethod
    def _combine(shared: ResourceSet, own: ResourceSet) -> ResourceSet:
        return ResourceSet.combine(shared.type_url, (shared, own))

    def _part(
        self,
        type_url: str,
        inputs: tuple[Hashable, ...],
        build: Callable[[], Sequence[Any]],
        owner: Proxy | None = None,
    ) -> ResourceSet:
        """The memoized part; with an ``owner``, ``forget(owner)`` drops it."""
        key = (type_url, *inputs)
        if owner is not None and key not in self._parts:
            self._owned.setdefault(owner, []).append(key)
        found = self._parts.get(key) or self._candidates.get(key)
        if found is None:
            found = ResourceSet.of(
                type_url, (Resource.of(type_url, resource_name(m), m) for m in build())
            )
        self._parts[key] = found
        return found


def _carry(
    previous: SnapshotBuilder | None, name: str, model: MeshModel, part: Callable[[MeshModel], Any]
) -> _Token:
    if previous is not None and part(previous.model) == part(model):
        token: _Token = getattr(previous, name)
        return token
    return _Token(name)
