"""What each stream has sent its proxy and what the proxy said of it: istiod's ``/debug/syncz``.

The protocol core decides; this is the transport's record of the outcome, per
stream and per type: the version and nonce last sent, the version last
acknowledged, and the last rejection (NACK) with Envoy's message. Invariants:

1. One ``SyncStatus`` per stream, owned and written by that stream's task
   only; readers get ``as_dict()`` copies, taken on the event loop.
2. A proxy's text is clipped (``log_limit.clip``) before it is kept.
3. Times are wall-clock seconds, shown RFC 3339 (UTC), for people; nothing
   decides by them. Recording allocates nothing once a type is known: it runs
   for every response to every proxy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from xds_server.transport.log_limit import clip
from xds_server.types import short_name


def _shown(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds") if seconds else ""


@dataclass(slots=True)
class TypeSync:
    """One type's exchange on a stream."""

    sent_version: str = ""
    sent_nonce: str = ""
    sent_at: float = 0.0
    acked_version: str = ""
    nacked_version: str = ""
    nack_message: str = ""
    nacked_at: float = 0.0


@dataclass(slots=True)
class SyncStatus:
    """A stream's record (invariant 1)."""

    node_id: str
    delta: bool
    connected_at: float = field(default_factory=time.time)
    types: dict[str, TypeSync] = field(default_factory=dict)

    def _of(self, type_url: str) -> TypeSync:
        sync = self.types.get(type_url)
        if sync is None:
            sync = self.types[type_url] = TypeSync()
        return sync

    def sent(self, type_url: str, version: str, nonce: str) -> None:
        """A response of ``type_url`` went out."""
        sync = self._of(type_url)
        sync.sent_version, sync.sent_nonce, sync.sent_at = version, nonce, time.time()

    def acked(self, type_url: str, version: str) -> None:
        """The proxy applied ``version`` of ``type_url``."""
        self._of(type_url).acked_version = version

    def nacked(self, type_url: str, version: str, message: str) -> None:
        """The proxy refused ``version`` of ``type_url``, saying ``message``."""
        sync = self._of(type_url)
        sync.nacked_version, sync.nack_message, sync.nacked_at = version, clip(message), time.time()

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy: the proxy, since when, and per type what was sent and said."""
        return {
            "proxy": self.node_id,
            "connected_at": _shown(self.connected_at),
            "delta": self.delta,
            "types": {short_name(t): _type_dict(s) for t, s in sorted(self.types.items())},
        }


def _type_dict(s: TypeSync) -> dict[str, object]:
    out: dict[str, object] = {
        "sent": {"version": s.sent_version, "nonce": s.sent_nonce, "at": _shown(s.sent_at)},
        "acked": s.acked_version,
        "synced": bool(s.sent_version) and s.acked_version == s.sent_version,
    }
    if s.nacked_version or s.nack_message:
        out["nack"] = {
            "version": s.nacked_version,
            "message": s.nack_message,
            "at": _shown(s.nacked_at),
        }
    return out
