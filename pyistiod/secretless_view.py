"""What a proxy on an unauthenticated stream is served: its snapshot without secret references.

Such a stream is never sent secrets (``xds_server.protocol.gate``), so its clusters and
listeners must not wait for any (``translators.envoy.tls.secretless`` says how each resource
changes). Invariants:

1. Each shared ``Part`` is converted once, while it lives, and the converted part is shared by
   every such proxy (the same object, so ``changed_since`` still skips unchanged parts); a part
   that needs no change is returned itself, as is a set none of whose parts changed.
2. A converted set's version is derived from the original's: a new original, a new version.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from types import MappingProxyType

from google.protobuf import any_pb2

from translators.envoy.tls.secretless import secretless_cluster, secretless_listener
from xds_server import types
from xds_server.snapshot import Part, Resource, ResourceSet, Snapshot

_CONVERT: dict[str, Callable[[bytes], bytes | None]] = {
    types.CLUSTER: secretless_cluster,
    types.LISTENER: secretless_listener,
}


class SecretlessView:
    """Memoized conversion of snapshots for proxies without certificates."""

    def __init__(self) -> None:
        self._sets: weakref.WeakKeyDictionary[ResourceSet, ResourceSet] = (
            weakref.WeakKeyDictionary()
        )
        self._parts: weakref.WeakKeyDictionary[Part, Part] = weakref.WeakKeyDictionary()

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` as a proxy without certificates is served it (no secrets either)."""
        sets = [self._set(s) for t, s in snapshot.sets.items() if t != types.SECRET]
        return Snapshot.of(sets)

    def _set(self, original: ResourceSet) -> ResourceSet:
        convert = _CONVERT.get(original.type_url)
        if convert is None:
            return original
        found = self._sets.get(original)
        if found is None:
            parts = tuple(self._part(p, convert) for p in original.parts)
            if all(a is b for a, b in zip(parts, original.parts, strict=True)):
                found = original
            else:
                version = hashlib.blake2b(
                    f"secretless {original.version}".encode(), digest_size=8
                ).hexdigest()
                found = ResourceSet(original.type_url, version, parts)
            self._sets[original] = found
        return found

    def _part(self, part: Part, convert: Callable[[bytes], bytes | None]) -> Part:
        found = self._parts.get(part)
        if found is None:
            found = part
            converted: dict[str, Resource] = {}
            for name, resource in part.resources.items():
                body = _body(resource)
                new = convert(body)
                if new is body:
                    converted[name] = resource
                elif new is not None:
                    converted[name] = Resource.from_bytes(resource.type_url, name, new)
            if len(converted) != len(part) or any(
                converted[n] is not r for n, r in part.resources.items() if n in converted
            ):
                found = Part(MappingProxyType(converted))
            self._parts[part] = found
        return found


def _body(resource: Resource) -> bytes:
    """The message bytes inside the resource's encoded ``Any``."""
    body: bytes = any_pb2.Any.FromString(resource.any_bytes).value
    return body
