"""Which version of each object is in force after a read: a bad object is refused alone.

Istio refuses a bad object at admission and never lets it block the others;
for an object that slipped past admission it keeps the object's last valid
version. Sources read every document again and again; this module decides,
from what a read found and what was in force before it, what is in force
now. Invariants:

1. A valid object read now is in force, unless it loses a cross-object rule
   (``checks``) to an older object.
2. A refused object (invalid, or losing a cross-object rule) keeps its last
   valid version in force when it had one and that version conflicts with
   nothing in force now; otherwise it is not in force. Either way it is
   reported as a ``Refusal`` saying which, and nothing else is held back.
3. An object no longer read is gone (deleted), except the objects of a file
   that could not be read whole (unreadable, or broken YAML): they keep their
   last valid versions, since nobody can tell what that file now holds.
4. The older object wins a conflict, as Istio lets the oldest by creation
   time win: an object unchanged since the last read first, then one that
   was in force in another version, then a new one; among equals the older
   ``creationTimestamp`` (objects from the API server; file objects count as
   newer), then the earlier origin (file, then document), then the key.
5. Pure and deterministic: the same reads and previous objects give the same
   result, in whatever order the reads come.
6. A hostname declared by several objects in force refuses none of them
   (``checks`` invariant 4): each declaration after the owner's is one of
   ``InForce.warnings``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from translators.mesh.checks import Conflict, conflicts, shared_hosts
from translators.mesh.documents.kinds import ParseResult, Skipped, SourceObject
from translators.mesh.documents.meta import Origin
from translators.mesh.model.services import DEFAULT_DOMAIN_SUFFIX, ObjectKey
from xds_server.errors import ConfigError

Objects = Mapping[ObjectKey, SourceObject]
"""Objects by (kind, namespace, name): what is in force."""

NOTHING: Objects = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Refusal:
    """One object (or document) this read refused, and what stays in force for it."""

    errors: tuple[ConfigError, ...]
    key: ObjectKey | None
    """The object refused, when its document named one."""
    kept: bool
    """Whether the object's last valid version stays in force."""
    in_force: Origin | None = None
    """Where the version of the object in force now comes from (None: it is not in force):
    its last valid version's place, or another document defining the same object."""

    def standing(self) -> str:
        """What stays in force for the object, in words for a log line."""
        if self.kept:
            return "its last valid version"
        return f"the definition in {self.in_force}" if self.in_force else "nothing"


@dataclass(frozen=True, slots=True)
class InForce:
    """The objects in force after a read, and the refusals of that read."""

    objects: Objects
    refusals: tuple[Refusal, ...]
    warnings: tuple[str, ...] = ()
    """Hostnames declared by more than one object in force (invariant 6)."""


def in_force(
    results: Iterable[ParseResult],
    previous: Objects = NOTHING,
    *,
    unreadable: Collection[str] = (),
    domain_suffix: str = DEFAULT_DOMAIN_SUFFIX,
) -> InForce:
    """What is in force after a read of ``results``, given what was in force before.

    ``unreadable`` names the origins (files) that could not be read whole.
    """
    results = list(results)
    read = [r.obj for r in results if r.obj is not None and not isinstance(r.obj, Skipped)]
    invalid = [r for r in results if r.obj is None]
    fallback = _last_valid(read, invalid, previous, unreadable)
    rank = _rank(previous)
    candidates = sorted([*read, *(previous[k] for k in fallback)], key=rank)
    # A loser never has a version of its own to fall back to: the objects in force before
    # rank first and held their names together then, so only a newcomer or a second
    # definition of one key can lose, and the key's other definition holds it.
    lost = conflicts(candidates, domain_suffix)
    objects = {o.meta.key: o for o in _without(candidates, lost)}
    refused = [(r.errors, r.key) for r in invalid]
    refused += [((c.error,), c.obj.meta.key) for c in lost]
    refusals = sorted((_refusal(e, k, objects, previous) for e, k in refused), key=_where)
    warnings = tuple(s.warning() for s in shared_hosts(objects.values(), domain_suffix))
    return InForce(MappingProxyType(dict(sorted(objects.items()))), tuple(refusals), warnings)


def _refusal(
    errors: tuple[ConfigError, ...], key: ObjectKey | None, objects: Objects, previous: Objects
) -> Refusal:
    now = objects.get(key) if key is not None else None
    if now is None:
        return Refusal(errors, key, kept=False)
    before = previous.get(now.meta.key)
    return Refusal(errors, key, before is now or before == now, now.meta.origin)


def _last_valid(
    read: list[SourceObject],
    invalid: list[ParseResult],
    previous: Objects,
    unreadable: Collection[str],
) -> set[ObjectKey]:
    """The keys whose previous version stands in for what this read could not give:
    refused documents, and the objects of files that could not be read whole."""
    read_now = {o.meta.key: o for o in read}
    wanted = {r.key for r in invalid if r.key is not None}
    wanted.update(k for k, o in previous.items() if o.meta.origin.path in unreadable)
    return {k for k in wanted if k in previous and read_now.get(k) != previous[k]}


def _without(objects: list[SourceObject], lost: tuple[Conflict, ...]) -> list[SourceObject]:
    losers = {id(c.obj) for c in lost}
    return [o for o in objects if id(o) not in losers]


Rank = tuple[int, str, str, int, str, str, str]

_NOT_CREATED = "\uffff"
"""Sorts after every creation time: an object of a file (no creationTimestamp) counts as newer
than one the API server created."""


def _rank(previous: Objects) -> Callable[[SourceObject], Rank]:
    """Older first: unchanged, then in force in another version, then new; then the older
    creation time (API objects), the earlier origin, the key (invariant 4)."""

    def rank(obj: SourceObject) -> Rank:
        meta = obj.meta
        before = previous.get(meta.key)
        age = 0 if before is obj or before == obj else 1 if before is not None else 2
        key = meta.key
        created = meta.created or _NOT_CREATED
        origin = meta.origin
        return (age, created, origin.path, origin.document, key.kind, key.namespace, key.name)

    return rank


def _where(refusal: Refusal) -> tuple[str, int, str]:
    first = refusal.errors[0]  # a refusal always has its reason
    return (first.path, first.document, str(refusal.key or ""))


def endpoint_slices_only(
    results: Iterable[ParseResult], previous: Objects, unreadable: Collection[str] = ()
) -> tuple[Objects, list[SourceObject]] | None:
    """The objects in force and the EndpointSlices that changed (old and new versions), if this
    read differs from ``previous`` only by edited EndpointSlices; else None.

    Then nothing is refused and no conflict can move (a slice claims no name or
    hostname but its own key), so the result is what ``in_force`` would give, at
    the cost of one identity check per object.
    """
    if unreadable:
        return None
    now: dict[ObjectKey, SourceObject] = {}
    changed: list[SourceObject] = []
    for r in results:
        obj = r.obj
        if obj is None:
            return None  # a refusal: the full settling says what stays
        if isinstance(obj, Skipped):
            continue
        key = obj.meta.key
        before = previous.get(key)
        if before is None or key in now:
            return None
        if before is not obj and before != obj:
            if key.kind != "EndpointSlice":
                return None
            changed += (before, obj)
        now[key] = obj
    if len(now) != len(previous):
        return None
    return MappingProxyType({key: now[key] for key in previous}), changed  # same keys, same order
