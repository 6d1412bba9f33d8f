"""What each stream has sent its proxy and what the proxy said of it: istiod's ``/debug/syncz``;
and who is on the other end and what it watches: istiod's ``/debug/adsz``.

The protocol core decides; this is the transport's record of the outcome, per
stream and per type: the version and nonce last sent, the version last
acknowledged, and the last rejection (NACK) with Envoy's message; and, per
stream, its connection ID, peer address, whether it came over TLS and the
identity it authenticated as. Invariants:

1. One ``SyncStatus`` per stream, owned and written by that stream's task
   only; readers get ``as_dict()`` copies, taken on the event loop.
2. A proxy's text is clipped (``log_limit.clip``) before it is kept.
3. Times are wall-clock seconds, shown RFC 3339 (UTC), for people; nothing
   decides by them. Recording allocates nothing once a type is known: it runs
   for every response to every proxy.
4. ``ads_client`` shows no credential: the identity is the authenticated
   principal's name (a SPIFFE ID), never the token that proved it; a
   subscription's names are bounded (``MAX_WATCHED_NAMES``, each clipped).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from xds_server.protocol.subscription import Subscription
from xds_server.transport.log_limit import clip
from xds_server.types import short_name

MAX_WATCHED_NAMES = 100
"""Names shown per watched type in ``/debug/adsz`` (an EDS watch may list thousands)."""

MAX_NAME_SHOWN = 256
"""Characters shown of one watched name (the proxy chose it)."""


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
    connection_id: str = ""
    """The node ID and a per-server stream number, as istiod names connections."""
    peer: str = ""
    """The peer's address (``host:port``) as gRPC saw it."""
    tls: bool = False
    """The stream came over TLS (the secure port)."""
    identity: str = ""
    """Whom the stream authenticated as (a SPIFFE ID); "" when it did not."""
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


def ads_client(status: SyncStatus, watched: Mapping[str, Subscription]) -> dict[str, object]:
    """One stream as istiod's ``/debug/adsz`` shows a client (invariant 4).

    istiod's keys (``connectionId``, ``connectedAt``, ``address``, ``watches`` by
    type URL) plus the proxy, the variant and the stream's authentication. A
    watch is an object rather than istiod's bare list of names, so that a
    wildcard watch and a watch of nothing can be told apart.
    """
    return {
        "connectionId": status.connection_id,
        "proxy": status.node_id,
        "connectedAt": _shown(status.connected_at),
        "address": status.peer,
        "delta": status.delta,
        "tls": status.tls,
        "authenticated": bool(status.identity),
        "identity": status.identity or None,
        "watches": {t: _watch(sub) for t, sub in sorted(watched.items())},
    }


def _watch(sub: Subscription) -> dict[str, object]:
    shown = heapq.nsmallest(MAX_WATCHED_NAMES, sub.names)
    return {
        "wildcard": sub.wildcard,
        "names": [clip(n, MAX_NAME_SHOWN) for n in shown],
        "namesTotal": len(sub.names),
    }
