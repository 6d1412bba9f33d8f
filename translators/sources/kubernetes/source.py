"""The Kubernetes config source: what the API server holds, read as documents.

One ``Reflector`` per watched resource (``resources.RESOURCES``) follows the
API server (``watch.follow``); ``read`` hands every stored object to the mesh
stage as a document, as ``FileSource`` hands over files. Invariants:

1. ``start`` returns once every resource has been listed once (or found not
   served), so the first model is whole: never a mesh without the objects
   the API server already had.
2. Each object is parsed once per ``metadata.resourceVersion``: a read after
   one EndpointSlice changed re-parses that one.
3. Documents are named ``kubernetes``, with no document index: errors read
   ``kubernetes VirtualService ns/name: field ... reason``.
4. After ``start``, every change a watch brings is one ``Changes.record``,
   as every edit is for ``DirectoryWatch``: one debounce for all sources.
5. The reflectors' stores are only written on the event loop; ``read`` (which
   may run in a worker thread) takes a copy of each store first.
6. With discovery selectors (Istio's ``meshConfig.discoverySelectors``) only
   the objects of namespaces whose labels match one of them count, and those
   of the system namespace (mesh-wide policies live there); without, every
   namespace counts. A namespace relabelled in or out is a change like any
   other: its objects come or go at the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence

from kubernetes_asyncio.client import ApiClient

from translators.mesh.documents.kinds import ParseResult, parse_object
from translators.sources.changes import Changes
from translators.sources.kubernetes.reflector import Key, Reflector, resource_version_of
from translators.sources.kubernetes.resources import NAMESPACES, RESOURCES
from translators.sources.kubernetes.selectors import Selector
from translators.sources.kubernetes.watch import follow
from translators.sources.loader import Documents

ORIGIN = "kubernetes"
"""The origin every API object's errors name (invariant 3)."""

NO_DOCUMENT = -1
"""The document index of an API object: it is not one of several in a file."""


class KubernetesSource:
    """The API server's objects, kept current by one reflector per resource."""

    def __init__(
        self,
        api: ApiClient,
        changes: Changes,
        *,
        discovery: Sequence[Selector] = (),
        system_namespace: str = "istio-system",
        on_missing: Callable[[str], None] = lambda _detail: None,
        on_error: Callable[[str], None] = lambda _detail: None,
        missing_retry: float = 10.0,
    ) -> None:
        self.api = api
        self.changes = changes
        self.discovery = tuple(discovery)
        self.system_namespace = system_namespace
        self.reflectors = [Reflector(r) for r in RESOURCES]
        self.on_missing = on_missing
        self.on_error = on_error
        self.missing_retry = missing_retry
        self._tasks: list[asyncio.Task[None]] = []
        self._parsed: dict[tuple[str, Key, str], ParseResult] = {}
        self._started = False

    async def start(self, timeout: float = 60.0) -> None:
        """Follow every resource; return once each was listed once (invariant 1).

        Raises ``TimeoutError`` if the API server cannot be listed in ``timeout``.
        """
        self._tasks = [
            asyncio.create_task(
                follow(
                    self.api,
                    r,
                    self._changed,
                    self.on_missing,
                    self.on_error,
                    self.missing_retry,
                ),
                name=f"watch {r.resource.kind}",
            )
            for r in self.reflectors
        ]
        async with asyncio.timeout(timeout):
            while not all(r.synced for r in self.reflectors):
                await asyncio.sleep(0.05)
        self._started = True  # from here on, what the reflectors see is a change

    async def stop(self) -> None:
        """Stop following the API server."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def read(self) -> Documents:
        """Every object the API server holds now, as documents (invariants 2, 3, 5)."""
        parsed: dict[tuple[str, Key, str], ParseResult] = {}
        discovered = self._discovered()
        for reflector in self.reflectors:
            kind = reflector.resource.kind
            if reflector.resource is NAMESPACES:
                continue
            for key, doc in dict(reflector.objects).items():
                if discovered is not None and key[0] not in discovered:
                    continue
                memo = (kind, key, resource_version_of(doc))
                parsed[memo] = self._parsed.get(memo) or parse_object(
                    doc, path=ORIGIN, document=NO_DOCUMENT
                )
        self._parsed = parsed
        return Documents(tuple(parsed[k] for k in sorted(parsed)))

    def _discovered(self) -> set[str] | None:
        """The namespaces whose objects count (invariant 6); None: every namespace."""
        if not self.discovery:
            return None
        namespaces = next(r for r in self.reflectors if r.resource is NAMESPACES).objects
        found = {self.system_namespace}
        for (_, name), doc in dict(namespaces).items():
            if any(s.matches(_labels(doc)) for s in self.discovery):
                found.add(name)
        return found

    def _changed(self, _keys: set[Key]) -> None:
        """What a reflector saw changed: a change, once the first lists are done."""
        if self._started:
            self.changes.record()


def _labels(doc: Mapping[str, object]) -> Mapping[str, str]:
    metadata = doc.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    if not isinstance(labels, Mapping):
        return {}
    return {str(k): str(v) for k, v in labels.items()}
