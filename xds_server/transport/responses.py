"""Responses with the same content, encoded once and sent as the same bytes by every stream.

A change reaches every proxy with the same view as the same response: the same version
and the same resources. Each stream used to encode it anew, joining the shared resource
bytes with its own nonce into a copy of its own (a 570 KB route configuration joined
2,000 times for one VirtualService edit at 2,000 proxies, and that many copies alive while
gRPC sends them). Here the nonce is the content's (``protocol.nonces`` says why that is
sound), so the response is one ``bytes`` object, encoded by the first stream that sends
it. Invariants:

1. A response's content is its kind (SotW or delta), type, version, resources, whole
   parts and removed names; resources and parts are compared by identity (they are
   immutable and shared by every snapshot holding them), and an entry holds them, so an
   identity is never reused while its entry lives.
2. Equal content gets the same nonce while its entry lives; different content never
   gets one already given (nonces are drawn from one counter).
3. Memory is bounded: at most ``max_entries`` contents, and the encodings held at most
   ``budget`` bytes, the least recently used dropped first. A dropped content seen again
   gets a new nonce and is encoded again: only sharing is lost, never correctness.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass

from xds_server.protocol.events import Send
from xds_server.snapshot import Part, Resource
from xds_server.transport.convert import encode

_Key = tuple[str, str, tuple[int, ...], tuple[int, ...], tuple[str, ...]]


@dataclass(slots=True)
class _Entry:
    nonce: str
    resources: tuple[Resource, ...]
    """Held so that the identities in the key stay theirs (invariant 1)."""
    whole: tuple[Part, ...]
    data: bytes | None = None


class SharedResponses:
    """Nonces by content, and each content's encoding, for the streams of one kind."""

    def __init__(
        self, control_plane: bytes, *, max_entries: int = 512, budget: int = 64 * 1024 * 1024
    ) -> None:
        self.control_plane = control_plane
        self.max_entries = max_entries
        self.budget = budget
        self.held = 0
        """Bytes of encodings held now."""
        self._numbers = itertools.count(1)
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._by_nonce: dict[str, _Key] = {}
        self._last: tuple[tuple[Resource, ...], object, str] | None = None
        """The last content asked for: its resources tuple, the rest of it, and its nonce.
        A push asks for one content once per stream, in the same tuple when the streams
        share a selection, so a 1,000-resource key is not rebuilt and hashed each time."""

    def nonce(
        self,
        type_url: str,
        version: str,
        resources: tuple[Resource, ...],
        whole: tuple[Part, ...],
        removed: tuple[str, ...],
    ) -> str:
        """The nonce of this content (a ``protocol.nonces.NonceSource``)."""
        last = self._last
        if (
            last is not None
            and last[0] is resources
            and last[1] == (type_url, version, whole, removed)
            and last[2] in self._by_nonce
        ):
            return last[2]  # the content just asked for, again (every stream of a push)
        key = (type_url, version, tuple(map(id, resources)), tuple(map(id, whole)), removed)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        else:
            entry = _Entry(str(next(self._numbers)), resources, whole)
            self._entries[key] = entry
            self._by_nonce[entry.nonce] = key
            if len(self._entries) > self.max_entries:
                self._drop_oldest()
        self._last = (resources, (type_url, version, whole, removed), entry.nonce)
        return entry.nonce

    def encode(self, send: Send) -> bytes:
        """The bytes of ``send``: encoded once per content while its entry lives."""
        key = self._by_nonce.get(send.nonce)
        if key is None:  # dropped meanwhile (invariant 3)
            return encode(send, self.control_plane)
        entry = self._entries[key]
        self._entries.move_to_end(key)
        if entry.data is None:
            entry.data = encode(send, self.control_plane)
            self.held += len(entry.data)
            while self.held > self.budget and len(self._entries) > 1:
                self._drop_oldest()
        return entry.data

    def __len__(self) -> int:
        return len(self._entries)

    def _drop_oldest(self) -> None:
        _, entry = self._entries.popitem(last=False)
        del self._by_nonce[entry.nonce]
        if entry.data is not None:
            self.held -= len(entry.data)
