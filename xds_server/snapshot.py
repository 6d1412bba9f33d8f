"""Immutable, versioned snapshots of Envoy resources.

Invariants:

1. A ``Resource`` is serialized exactly once, when it is made; every proxy that
   receives it is sent the same bytes.
2. Versions are derived from content: a resource's version is a hash of its
   bytes, a ``ResourceSet``'s version a hash of its (name, version) pairs. An
   unchanged type keeps its version across snapshots, so it is not re-sent.
3. Nothing here is mutated after construction; publishing a new snapshot is
   swapping a reference.
"""

from __future__ import annotations

import functools
import hashlib
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from xds_server import wire


class Message(Protocol):
    """What pyistiod needs of a protobuf message."""

    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Resource:
    """One named Envoy resource, serialized once and shared by every stream."""

    name: str
    type_url: str
    version: str
    """Hash of the serialized bytes: equal bytes, equal version."""
    any_bytes: bytes
    """The resource wrapped in an encoded ``google.protobuf.Any``."""
    sotw_header: bytes = field(repr=False)
    delta_header: bytes = field(repr=False)

    @staticmethod
    def of(type_url: str, name: str, message: Message) -> Resource:
        """Serialize ``message`` (deterministically) into a shareable resource."""
        return Resource.from_bytes(type_url, name, message.SerializeToString(deterministic=True))

    @staticmethod
    def from_bytes(type_url: str, name: str, body: bytes) -> Resource:
        """A resource from already-serialized message bytes."""
        version = _digest(body)
        any_bytes = wire.encode_any(type_url, body)
        return Resource(
            name=name,
            type_url=type_url,
            version=version,
            any_bytes=any_bytes,
            sotw_header=wire.sotw_entry_header(any_bytes),
            delta_header=wire.delta_entry_header(name, version, any_bytes),
        )


def _version(resource: Resource | None) -> str | None:
    return resource.version if resource is not None else None


def _set_version(resources: Mapping[str, Resource]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for name in sorted(resources):
        h.update(name.encode())
        h.update(b"\0")
        h.update(resources[name].version.encode())
        h.update(b"\n")
    return h.hexdigest()


class Part:
    """Resources that travel together: a read-only mapping by name, plus its encoding.

    The state-of-the-world encoding of a whole part (every entry's header and
    ``Any`` bytes, concatenated) is made once, on first use, and shared by every
    response that carries the part whole: the outbound clusters of a mesh are
    joined once, not once per proxy.
    """

    __slots__ = ("__weakref__", "_sotw", "_versions", "resources")

    def __init__(self, resources: Mapping[str, Resource]) -> None:
        self.resources = resources
        self._sotw: bytes | None = None
        self._versions: dict[str, str] | None = None

    def __len__(self) -> int:
        return len(self.resources)

    def versions(self) -> Mapping[str, str]:
        """Each resource's version by name, made once (what a delta stream that was sent
        the whole part then knows)."""
        if self._versions is None:
            self._versions = {name: r.version for name, r in self.resources.items()}
        return self._versions

    def sotw_bytes(self) -> bytes:
        """Every resource as encoded ``DiscoveryResponse.resources`` entries."""
        if self._sotw is None:
            self._sotw = b"".join(
                b for r in self.resources.values() for b in (r.sotw_header, r.any_bytes)
            )
        return self._sotw


@dataclass(frozen=True, slots=True)
class Selection:
    """Some resources of a set, with their names and versions: what a stream that holds
    nothing yet is sent, shared by every stream that asks for the same names."""

    resources: tuple[Resource, ...]
    names: frozenset[str]
    versions: Mapping[str, str]
    """Each resource's version by name (what a delta stream then knows)."""

    @staticmethod
    def of(resources: tuple[Resource, ...], names: frozenset[str] | None = None) -> Selection:
        """``resources``; ``names``, if given, must be exactly theirs."""
        versions = {r.name: r.version for r in resources}
        return Selection(resources, frozenset(versions) if names is None else names, versions)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ResourceSet:
    """All resources of one type in a snapshot, with a version derived from them.

    A set is made of *parts* with disjoint names: a proxy's clusters are the
    outbound part every proxy shares plus its own inbound part. Combining sets
    copies no entries, so per-proxy memory grows with what is the proxy's own,
    not with the size of the mesh. ``changed_since`` is memoized per basis, so
    a thousand streams holding the same basis share one comparison.
    """

    type_url: str
    version: str
    parts: tuple[Part, ...]
    _diffs: dict[int, tuple[weakref.ref[ResourceSet], frozenset[str], frozenset[str]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _selections: dict[int, tuple[frozenset[str], Selection]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """``select`` by the id of its name set."""

    @staticmethod
    def of(type_url: str, resources: Iterable[Resource]) -> ResourceSet:
        """A set of resources; names must be unique."""
        by_name: dict[str, Resource] = {}
        for r in resources:
            if r.type_url != type_url:
                raise ValueError(f"resource {r.name!r} is a {r.type_url}, not a {type_url}")
            if r.name in by_name:
                raise ValueError(f"duplicate {type_url} resource name {r.name!r}")
            by_name[r.name] = r
        return ResourceSet(type_url, _set_version(by_name), (Part(MappingProxyType(by_name)),))

    @staticmethod
    def combine(type_url: str, sets: Iterable[ResourceSet]) -> ResourceSet:
        """The union of sets whose names are disjoint (the caller guarantees it)."""
        chosen = [s for s in sets if len(s)]
        if len(chosen) == 1:
            return chosen[0]
        h = hashlib.blake2b(digest_size=8)
        for s in chosen:
            h.update(s.version.encode())
        parts = tuple(p for s in chosen for p in s.parts)
        return ResourceSet(type_url, h.hexdigest() if chosen else _set_version({}), parts)

    def __len__(self) -> int:
        if len(self.parts) == 1:
            return len(self.parts[0].resources)
        return sum(len(p.resources) for p in self.parts)

    def __iter__(self) -> Iterator[Resource]:
        for part in self.parts:
            yield from part.resources.values()

    def __contains__(self, name: object) -> bool:
        for part in self.parts:  # noqa: SIM110 (a loop: no generator on this hot path)
            if name in part.resources:
                return True
        return False

    def get(self, name: str) -> Resource | None:
        """The resource with this name, if present."""
        for part in self.parts:
            found = part.resources.get(name)
            if found is not None:
                return found
        return None

    def changed_since(self, basis: ResourceSet) -> tuple[frozenset[str], frozenset[str]]:
        """(names new or changed since ``basis``, names of ``basis`` gone from this set)."""
        memo = self._diffs.get(id(basis))
        if memo is not None and memo[0]() is basis:
            return memo[1], memo[2]
        same = {id(p) for p in basis.parts}
        changed = frozenset(
            name
            for part in self.parts
            if id(part) not in same
            for name, r in part.resources.items()
            if _version(basis.get(name)) != r.version
        )
        mine = {id(p) for p in self.parts}
        gone = frozenset(
            name
            for part in basis.parts
            if id(part) not in mine
            for name in part.resources
            if name not in self
        )
        if len(self._diffs) > 64:
            self._diffs.clear()
        self._diffs[id(basis)] = (weakref.ref(basis), changed, gone)
        return changed, gone

    def select(self, names: frozenset[str]) -> Selection:
        """The resources named in ``names``, sorted by name.

        Memoized per ``names`` object: the streams subscribed with one shared name set
        (``protocol.names``) share one selection, as they do one ``changed_since``.
        """
        memo = self._selections.get(id(names))
        if memo is not None and memo[0] is names:
            return memo[1]
        found = tuple(r for n in sorted(names) if (r := self.get(n)) is not None)
        chosen = Selection.of(found, names if len(found) == len(names) else None)
        if len(self._selections) > 64:
            self._selections.clear()
        self._selections[id(names)] = (names, chosen)
        return chosen

    def names(self) -> list[str]:
        """Every resource name."""
        return [n for p in self.parts for n in p.resources]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every type's resources for one proxy view, at one instant."""

    sets: Mapping[str, ResourceSet]

    @staticmethod
    def of(sets: Iterable[ResourceSet]) -> Snapshot:
        """A snapshot from one set per type."""
        by_type = {s.type_url: s for s in sets}
        return Snapshot(MappingProxyType(by_type))

    @staticmethod
    def from_messages(messages: Mapping[str, Iterable[Any]]) -> Snapshot:
        """Serialize protobuf messages (each with a ``name`` or ``cluster_name``) by type."""
        return Snapshot.of(
            ResourceSet.of(t, (Resource.of(t, resource_name(m), m) for m in msgs))
            for t, msgs in messages.items()
        )

    def with_set(self, resource_set: ResourceSet) -> Snapshot:
        """This snapshot with ``resource_set`` added or replacing its type's set."""
        return Snapshot(MappingProxyType({**self.sets, resource_set.type_url: resource_set}))

    def get(self, type_url: str) -> ResourceSet:
        """The set of this type; an empty set if the snapshot has none."""
        found = self.sets.get(type_url)
        return found if found is not None else _empty(type_url)

    def version(self, type_url: str) -> str:
        """The version of one type's set."""
        return self.get(type_url).version


def resource_name(message: Any) -> str:
    """The xDS name of an Envoy resource (``cluster_name`` for a ClusterLoadAssignment)."""
    name = getattr(message, "cluster_name", "") or getattr(message, "name", "")
    if not name:
        raise ValueError(f"{type(message).__name__} has no name")
    return str(name)


@functools.cache
def _empty(type_url: str) -> ResourceSet:
    return ResourceSet.of(type_url, ())
