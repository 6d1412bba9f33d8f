"""One watched resource kept in step with the API server: the state of a list-then-watch.

client-go's Reflector and its store, without the I/O: it takes a list's
answer and a watch's events and says which objects changed. ``watch.py``
talks to the API server and feeds it. Invariants:

1. After a list the store holds exactly the listed items: an object missing
   from the list was deleted meanwhile. So a relist after 410 Gone (the
   resource version fell out of the API server's window) loses and
   duplicates nothing.
2. ``resource_version`` is where the next watch starts: the list's, then each
   event's or bookmark's (Kubernetes API concepts, "Efficient detection of
   changes"). ``None`` means the next step is a list.
3. A change is reported only when an object's ``metadata.resourceVersion``
   differs from the stored one, or it appears or goes: a relist that finds
   what the store holds reports nothing.
4. Stored objects carry ``apiVersion`` and ``kind`` (list items may omit
   them), so each is a whole document for the mesh stage.
5. An ``ERROR`` event raises: ``Expired`` for 410 (relist), ``WatchFailed``
   for any other status (watch again after a pause).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from translators.sources.kubernetes.resources import Resource

Key = tuple[str, str]
"""An object's (namespace, name) within its resource ("" namespace: cluster-scoped)."""

Document = Mapping[str, object]


class Expired(Exception):
    """The watch's resource version is too old (410 Gone): relist."""


class WatchFailed(Exception):
    """The API server ended a watch with an error status other than 410."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


@dataclass
class Reflector:
    """The objects of one resource as last seen, and where to watch from."""

    resource: Resource
    objects: dict[Key, Document] = field(default_factory=dict)
    resource_version: str | None = None
    synced: bool = False
    """True once a first list succeeded (or the resource was found missing, so empty)."""

    def listed(self, items: Iterable[Document], resource_version: str) -> set[Key]:
        """Replace the store with a list's items (invariant 1); the keys that changed."""
        fresh = {_key(item): self._whole(item) for item in items}
        changed = {k for k in self.objects.keys() - fresh.keys()}
        changed |= {
            k
            for k, doc in fresh.items()
            if resource_version_of(self.objects.get(k)) != resource_version_of(doc)
        }
        self.objects = fresh
        self.resource_version = resource_version
        self.synced = True
        return changed

    def missing(self) -> set[Key]:
        """The resource is not served (its CRD is absent): nothing of it is in force."""
        changed = set(self.objects)
        self.objects = {}
        self.resource_version = None
        self.synced = True
        return changed

    def event(self, event: Mapping[str, object]) -> set[Key]:
        """Apply one watch event; the keys that changed (invariants 2, 3, 5)."""
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, Mapping):
            raise WatchFailed(0, f"watch event without an object: {str(event)[:200]}")
        if kind == "ERROR":
            code = obj.get("code")
            message = str(obj.get("message", ""))
            if code == 410:
                raise Expired(message)
            raise WatchFailed(code if isinstance(code, int) else 0, message)
        version = resource_version_of(obj)
        if version:
            self.resource_version = version
        if kind == "BOOKMARK":
            return set()
        key = _key(obj)
        if kind == "DELETED":
            return {key} if self.objects.pop(key, None) is not None else set()
        if kind not in ("ADDED", "MODIFIED"):
            raise WatchFailed(0, f"unknown watch event type {kind!r}")
        if resource_version_of(self.objects.get(key)) == version and key in self.objects:
            return set()
        self.objects[key] = self._whole(obj)
        return {key}

    def _whole(self, item: Document) -> Document:
        if item.get("apiVersion") and item.get("kind"):
            return item
        return {**item, "apiVersion": self.resource.api_version, "kind": self.resource.kind}


def _metadata(doc: Document | None) -> Mapping[str, object]:
    md = doc.get("metadata") if doc is not None else None
    return md if isinstance(md, Mapping) else {}


def resource_version_of(doc: Document | None) -> str:
    """The object's ``metadata.resourceVersion``, "" if it has none."""
    version = _metadata(doc).get("resourceVersion")
    return version if isinstance(version, str) else ""


def _key(doc: Document) -> Key:
    md = _metadata(doc)
    namespace, name = md.get("namespace"), md.get("name")
    return (namespace if isinstance(namespace, str) else "", name if isinstance(name, str) else "")
