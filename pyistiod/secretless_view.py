"""What a proxy on an unauthenticated stream is served: its snapshot without secret references.

Such a stream is never sent secrets (``xds_server.protocol.gate``), so its clusters and
listeners must not wait for any (``translators.envoy.tls.secretless`` says how each resource
changes). Invariants:

1. Each shared ``Part`` is converted once, while it lives, and the converted part is shared by
   every such proxy (the same object, so ``changed_since`` still skips unchanged parts); a part
   that needs no change is returned itself, as is a set none of whose parts changed.
2. A converted set's version is derived from the original's: a new original, a new version.
3. The memo never keeps an original alive: it is keyed weakly, and an original that needs no
   change is remembered as ``None``, not as itself (a weak dictionary whose value is its own
   key never lets the entry go). Memory follows the snapshots being served, not every part
   ever seen: each reconnect and each config change makes new parts.
4. A new large part converts only the resources no recent large part held: their
   conversions are also kept per resource (by type, name and version, so by content), for
   two generations of at most ``RESOURCE_MEMO`` entries each. A config change makes a new
   outbound part whose thousand clusters are mostly the ones before; only the changed ones
   are parsed and converted again. Parts of fewer than ``MEMO_PART_MIN`` resources (a
   proxy's own) are converted as before: the memo holds what the shared parts hold.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Final

from google.protobuf import any_pb2

from translators.envoy.tls.secretless import secretless_cluster, secretless_listener
from xds_server import types
from xds_server.snapshot import Part, Resource, ResourceSet, Snapshot

_CONVERT: dict[str, Callable[[bytes], bytes | None]] = {
    types.CLUSTER: secretless_cluster,
    types.LISTENER: secretless_listener,
}


_UNSEEN: Any = object()
_SAME: Any = object()
"""A resource served as it is."""
RESOURCE_MEMO: Final = 20_000
"""Entries per generation of the per-resource memo (invariant 4)."""
MEMO_PART_MIN: Final = 64
"""Parts with fewer resources are not remembered per resource (invariant 4)."""


class SecretlessView:
    """Memoized conversion of snapshots for proxies without certificates."""

    def __init__(self) -> None:
        # A value of None: the original itself is served (invariant 3).
        self._sets: weakref.WeakKeyDictionary[ResourceSet, ResourceSet | None] = (
            weakref.WeakKeyDictionary()
        )
        self._parts: weakref.WeakKeyDictionary[Part, Part | None] = weakref.WeakKeyDictionary()
        # Per resource (invariant 4): the converted resource, None (dropped) or _SAME.
        self._recent: dict[tuple[str, str, str], Any] = {}
        self._older: dict[tuple[str, str, str], Any] = {}

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` as a proxy without certificates is served it (no secrets either)."""
        sets = [self._set(s) for t, s in snapshot.sets.items() if t != types.SECRET]
        return Snapshot.of(sets)

    def _set(self, original: ResourceSet) -> ResourceSet:
        convert = _CONVERT.get(original.type_url)
        if convert is None:
            return original
        known = self._sets.get(original, _UNSEEN)
        if known is not _UNSEEN:
            return original if known is None else known
        parts = tuple(self._part(p, convert) for p in original.parts)
        if all(a is b for a, b in zip(parts, original.parts, strict=True)):
            self._sets[original] = None
            return original
        version = hashlib.blake2b(f"secretless {original.version}".encode(), digest_size=8)
        found = ResourceSet(original.type_url, version.hexdigest(), parts)
        self._sets[original] = found
        return found

    def _resource(
        self, resource: Resource, convert: Callable[[bytes], bytes | None]
    ) -> Resource | None:
        """``resource`` as served without secrets; None: not served at all (invariant 4)."""
        key = (resource.type_url, resource.name, resource.version)
        known = self._recent.get(key, _UNSEEN)
        if known is _UNSEEN:
            known = self._older.get(key, _UNSEEN)
        if known is _UNSEEN:
            converted = _converted(resource, convert)
            known = _SAME if converted is resource else converted
        if len(self._recent) >= RESOURCE_MEMO:
            self._older, self._recent = self._recent, {}
        self._recent[key] = known
        return resource if known is _SAME else known

    def _part(self, part: Part, convert: Callable[[bytes], bytes | None]) -> Part:
        known = self._parts.get(part, _UNSEEN)
        if known is not _UNSEEN:
            return part if known is None else known
        converted: dict[str, Resource] = {}
        remember = len(part) >= MEMO_PART_MIN
        for name, resource in part.resources.items():
            new = self._resource(resource, convert) if remember else _converted(resource, convert)
            if new is not None:
                converted[name] = new
        if len(converted) == len(part) and all(
            converted[n] is r for n, r in part.resources.items()
        ):
            self._parts[part] = None
            return part
        found = Part(MappingProxyType(converted))
        self._parts[part] = found
        return found


def _converted(resource: Resource, convert: Callable[[bytes], bytes | None]) -> Resource | None:
    """``resource`` converted: itself if nothing changes, None if it is not served."""
    body = _body(resource)
    new = convert(body)
    if new is body:
        return resource
    return None if new is None else Resource.from_bytes(resource.type_url, resource.name, new)


def _body(resource: Resource) -> bytes:
    """The message bytes inside the resource's encoded ``Any``."""
    body: bytes = any_pb2.Any.FromString(resource.any_bytes).value
    return body
