"""What each stream has sent its proxy and what the proxy said of it: istiod's ``/debug/syncz``.

The protocol core decides; this is the transport's record of the outcome, per
stream and per type: the version and nonce last sent, the version last
acknowledged, and the last rejection (NACK) with Envoy's message. Invariants:

1. One ``SyncStatus`` per stream, owned and written by that stream's task
   only; readers get ``as_dict()`` copies, taken on the event loop.
2. A proxy's text is clipped (``log_limit.clip``) before it is kept.
3. Times are wall-clock RFC 3339 (UTC), for people; nothing decides by them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from xds_server.transport.log_limit import clip
from xds_server.types import short_name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class TypeSync:
    """One type's exchange on a stream."""

    sent_version: str = ""
    sent_nonce: str = ""
    sent_at: str = ""
    acked_version: str = ""
    nacked_version: str = ""
    nack_message: str = ""
    nacked_at: str = ""


@dataclass(slots=True)
class SyncStatus:
    """A stream's record (invariant 1)."""

    node_id: str
    delta: bool
    connected_at: str = field(default_factory=_now)
    types: dict[str, TypeSync] = field(default_factory=dict)

    def sent(self, type_url: str, version: str, nonce: str) -> None:
        """A response of ``type_url`` went out."""
        sync = self.types.setdefault(type_url, TypeSync())
        sync.sent_version, sync.sent_nonce, sync.sent_at = version, nonce, _now()

    def acked(self, type_url: str, version: str) -> None:
        """The proxy applied ``version`` of ``type_url``."""
        self.types.setdefault(type_url, TypeSync()).acked_version = version

    def nacked(self, type_url: str, version: str, message: str) -> None:
        """The proxy refused ``version`` of ``type_url``, saying ``message``."""
        sync = self.types.setdefault(type_url, TypeSync())
        sync.nacked_version, sync.nack_message, sync.nacked_at = version, clip(message), _now()

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy: the proxy, since when, and per type what was sent and said."""
        return {
            "proxy": self.node_id,
            "connected_at": self.connected_at,
            "delta": self.delta,
            "types": {
                short_name(type_url): {
                    "sent": {"version": s.sent_version, "nonce": s.sent_nonce, "at": s.sent_at},
                    "acked": s.acked_version,
                    "synced": bool(s.sent_version) and s.acked_version == s.sent_version,
                    **(
                        {"nack": {"version": s.nacked_version, "message": s.nack_message,
                                  "at": s.nacked_at}}
                        if s.nacked_version or s.nack_message
                        else {}
                    ),
                }
                for type_url, s in sorted(self.types.items())
            },
        }  # fmt: skip
