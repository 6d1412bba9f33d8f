"""Connected proxies and the model they are served from: the one owner of both.

Invariants:

1. Every connected node has exactly one snapshot in the cache, built from
   the current model by the current ``SnapshotBuilder``.
2. ``apply_model`` builds every connected node's snapshot first and
   publishes only if all were built, in one synchronous step: no stream sees
   a mix of two models, and a model that fails to translate changes nothing.
   A node whose snapshot versions did not change is not republished (nor its
   stream woken): a change does work only for the proxies it affects.
3. A node is forgotten when its last stream ends.
4. A node's SDS secrets are added only for a stream authenticated as the
   very identity (namespace and service account) the node claims; a claim
   for another identity is refused before anything is published.
5. A node whose stream is not authenticated (plain text) is served its
   snapshot without references to secrets (``secretless_view``): it never
   waits for a certificate it cannot get. Said once per node, when it connects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ca.spiffe import SpiffeId
from pyistiod.secret_store import SecretStore
from pyistiod.secretless_view import SecretlessView
from pyistiod.snapshot_builder import SnapshotBuilder
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy, proxy_from_node
from xds_server.cache import SnapshotCache
from xds_server.snapshot import ResourceSet, Snapshot
from xds_server.transport.convert import NodeInfo
from xds_server.types import SECRET

log = structlog.get_logger("xds")


@dataclass(slots=True)
class _Connected:
    metadata: dict[str, Any]
    proxy: Proxy
    streams: int
    authenticated: bool


class ProxyRegistry:
    """Implements the transport's ``NodeRegistry`` over a mesh model."""

    def __init__(
        self,
        cache: SnapshotCache,
        model: MeshModel,
        secrets: SecretStore | None = None,
        builder_factory: Callable[[MeshModel, SnapshotBuilder | None], SnapshotBuilder] = (
            SnapshotBuilder
        ),
    ) -> None:
        self.cache = cache
        self.secrets = secrets
        if secrets is not None:
            secrets.on_rotated = self._republish
        self.builder_factory = builder_factory
        self.builder = builder_factory(model, None)
        self.nodes: dict[str, _Connected] = {}
        self._nodes_of: Counter[Proxy] = Counter()
        """How many connected nodes are each proxy (node IDs that differ only in metadata
        may be one proxy): its parts are forgotten with the last of them, found in O(1)
        (a scan of every node per disconnect made a mass disconnect quadratic)."""
        self.secretless = SecretlessView()

    async def connect(self, node: NodeInfo, identity: SpiffeId | None = None) -> None:
        """A stream opened for ``node``: publish its snapshot.

        ``identity`` is what the stream authenticated as (None if it did not).
        Raises ValueError for a malformed node and PermissionError when the
        node claims another identity than the one it authenticated as.
        """
        known = self.nodes.get(node.id)
        proxy = known.proxy if known else proxy_from_node(node.id, node.metadata, self.model)
        if identity is not None:
            _check_claim(node.id, proxy, identity)
            if self.secrets is not None:
                await self.secrets.ensure(node.id, identity)
        known = self.nodes.get(node.id)  # the await may have let another stream in
        authenticated = identity is not None
        if known is not None:
            known.streams += 1
            if authenticated and not known.authenticated:
                known.authenticated = True  # certificates now reach it on this stream
        else:
            self.nodes[node.id] = _Connected(node.metadata, proxy, 1, authenticated)
            self._nodes_of[proxy] += 1
            if not authenticated:
                log.info(
                    "xds.plaintext_proxy",
                    node=node.id,
                    why="its stream is not authenticated (plain-text xDS), so it gets no "
                    "certificates: its mesh traffic is plain text and ports that require "
                    "mTLS (STRICT) are not opened for it; bootstrap it for TLS xDS (15012)",
                )
        self._republish(node.id)

    def disconnect(self, node_id: str) -> None:
        """A stream of ``node_id`` ended; forget the node after its last one."""
        known = self.nodes.get(node_id)
        if known is None:
            return
        known.streams -= 1
        if known.streams <= 0:
            del self.nodes[node_id]
            if self.secrets is not None:
                self.secrets.forget(node_id)
            if self._drop(known.proxy):
                self.builder.forget(known.proxy)

    def apply_model(self, model: MeshModel, changed_at: float | None = None) -> None:
        """Serve ``model`` from now on, to every connected proxy.

        ``changed_at`` is the monotonic time of the change behind ``model``,
        for the convergence metric.

        Raises whatever translation raised, having published nothing.
        """
        builder = self.builder_factory(model, self.builder)
        same_workloads = builder.workloads is self.builder.workloads  # identities unchanged
        built: dict[str, tuple[Proxy, Snapshot]] = {}
        for node_id, known in self.nodes.items():
            proxy = (
                known.proxy if same_workloads else proxy_from_node(node_id, known.metadata, model)
            )
            built[node_id] = (proxy, self._served(node_id, builder.snapshot(proxy)))
        builder.seal()
        self.builder = builder
        for node_id, (proxy, snapshot) in built.items():
            known = self.nodes[node_id]
            if proxy is not known.proxy:  # the workloads changed: recount
                self._drop(known.proxy)
                self._nodes_of[proxy] += 1
                known.proxy = proxy
            if not _same_versions(self.cache.snapshot(node_id), snapshot):
                self.cache.set_snapshot(node_id, snapshot, changed_at)

    def _drop(self, proxy: Proxy) -> bool:
        """One node fewer is ``proxy``; whether it was the last."""
        left = self._nodes_of[proxy] - 1
        if left:
            self._nodes_of[proxy] = left
        else:
            del self._nodes_of[proxy]
        return not left

    def _republish(self, node_id: str) -> None:
        known = self.nodes.get(node_id)
        if known is not None:
            snapshot = self._served(node_id, self.builder.snapshot(known.proxy))
            self.cache.set_snapshot(node_id, snapshot)

    def _served(self, node_id: str, snapshot: Snapshot) -> Snapshot:
        """What ``node_id`` is sent of ``snapshot``: with its secrets (invariant 4), or
        without secret references if it is not authenticated (invariant 5)."""
        if not self.nodes[node_id].authenticated:
            return self.secretless.snapshot(snapshot)
        found = self.secrets.secret_set(node_id) if self.secrets is not None else None
        if found is None:
            return snapshot
        # A gateway's own snapshot may hold its credentials: keep them beside its workload's.
        return snapshot.with_set(ResourceSet.combine(SECRET, (snapshot.get(SECRET), found)))

    @property
    def model(self) -> MeshModel:
        """The model being served."""
        return self.builder.model


def _same_versions(old: Snapshot | None, new: Snapshot) -> bool:
    """Whether a proxy would receive nothing new: then it is not even woken."""
    if old is None or old.sets.keys() != new.sets.keys():
        return False
    return all(old.sets[t].version == s.version for t, s in new.sets.items())


def _check_claim(node_id: str, proxy: Proxy, identity: SpiffeId) -> None:
    if (proxy.namespace, proxy.service_account) != (identity.namespace, identity.service_account):
        raise PermissionError(
            f"node {node_id} claims namespace {proxy.namespace!r} and service account "
            f"{proxy.service_account!r} but authenticated as {identity}"
        )
