"""The snapshot cache: the current snapshot of every connected proxy, and its watchers.

Invariants:

1. One owner: only ``set_snapshot`` changes what a proxy is served; publishing
   swaps a reference, so a stream never sees a half-built snapshot.
2. A watcher is a plain callback, called synchronously when its proxy's
   snapshot changes; the transport turns it into a wake-up of the stream. The
   cache holds no asyncio or grpc objects.
3. When the last watcher of a proxy goes away, its snapshot is dropped: a
   disconnected proxy leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from xds_server.snapshot import Snapshot

Watcher = Callable[[], None]


@dataclass(slots=True)
class NodeStatus:
    """What the cache knows of one proxy, for debugging (go-control-plane's StatusInfo)."""

    snapshot: Snapshot
    changed_at: float | None = None
    """Monotonic time of the change this snapshot reflects, for convergence metrics."""
    watchers: list[Watcher] = field(default_factory=list)


class SnapshotCache:
    """Snapshots keyed by node ID, with change notification."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeStatus] = {}

    def set_snapshot(
        self, node_id: str, snapshot: Snapshot, changed_at: float | None = None
    ) -> None:
        """Publish ``snapshot`` for ``node_id`` and wake its watchers if it changed."""
        status = self._nodes.get(node_id)
        if status is None:
            self._nodes[node_id] = NodeStatus(snapshot, changed_at)
            return
        if status.snapshot is snapshot:
            return
        status.snapshot = snapshot
        status.changed_at = changed_at
        for watcher in list(status.watchers):
            watcher()

    def changed_at(self, node_id: str) -> float | None:
        """When the change behind ``node_id``'s current snapshot happened, if known."""
        status = self._nodes.get(node_id)
        return status.changed_at if status else None

    def snapshot(self, node_id: str) -> Snapshot | None:
        """The current snapshot of ``node_id``, if any."""
        status = self._nodes.get(node_id)
        return status.snapshot if status else None

    def watch(self, node_id: str, watcher: Watcher) -> Callable[[], None]:
        """Call ``watcher`` on every change of ``node_id``'s snapshot; returns the cancel."""
        status = self._nodes[node_id]
        status.watchers.append(watcher)

        def cancel() -> None:
            status.watchers.remove(watcher)
            if not status.watchers and self._nodes.get(node_id) is status:
                del self._nodes[node_id]

        return cancel

    def node_ids(self) -> list[str]:
        """Every node with a snapshot."""
        return list(self._nodes)

    def watch_count(self) -> int:
        """How many streams are watching, across all nodes."""
        return sum(len(s.watchers) for s in self._nodes.values())
