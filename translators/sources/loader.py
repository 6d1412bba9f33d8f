"""From what the sources read to one model: the step every read of every source goes through.

A source (``FileSource``, ``KubernetesSource``) only reads: it hands over
``Documents``, every document of a supported kind it holds, valid or not.
``load`` puts the documents of all sources together, settles which version of
each object is in force (``mesh.in_force``: a bad object is refused alone)
and builds the model. Invariants:

1. Sources are equal: their documents are settled together, so a Service
   from a file and a VirtualService from the API server meet in one model,
   and a conflict between them is resolved like any other.
2. ``Loader`` is the one owner of what is in force: it reads every source,
   and only remembers a read once ``commit`` says it was applied, so a read
   the caller refuses (an emptied directory, a translator bug) changes
   nothing.
3. A read that differs from the last applied one only by edited
   EndpointSlices (``in_force.endpoint_slices_only``) updates the endpoints
   of the Services they name (``builder.update_endpoints``) instead of
   settling and building every object again: the model is the same one a
   full build would give, at the cost of one service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from translators.mesh.builder import build_model, update_endpoints
from translators.mesh.documents.kinds import ParseResult, Skipped
from translators.mesh.documents.kubernetes.objects import EndpointSliceObject
from translators.mesh.in_force import NOTHING, Objects, Refusal, endpoint_slices_only, in_force
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import DEFAULT_DOMAIN_SUFFIX
from xds_server.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Documents:
    """One read of one source: its documents of supported kinds, valid or not."""

    results: tuple[ParseResult, ...]
    warnings: tuple[str, ...] = ()
    unreadable: frozenset[str] = frozenset()
    """Origins (files) that could not be read whole: their objects keep their last versions."""
    files: int = 0
    """Files read, for a file source."""
    lines: Mapping[tuple[str, int], int] = field(default_factory=dict)
    """The line each document starts on, by (file, document index), where known."""
    skipped: tuple[Skipped, ...] = ()
    """Documents of kinds pyistiod does not read (not applied; said in ``warnings`` too)."""


class Source(Protocol):
    """Anything that can read its documents now."""

    def read(self) -> Documents:
        """Every document the source holds now (may raise ``ConfigInvalid`` if it cannot)."""
        ...


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded config.

    ``files`` counts the YAML files read; ``objects`` the objects in force (in
    the model); ``documents`` the documents of supported kinds read, valid or
    not. ``in_force`` is what the next read starts from, once this one is
    applied.
    """

    model: MeshModel
    warnings: tuple[str, ...]
    files: int
    objects: int
    refusals: tuple[Refusal, ...] = ()
    in_force: Objects = field(default_factory=lambda: NOTHING)
    documents: int = 0
    endpoints_only: bool = False
    """Only EndpointSlices changed since the last applied read (invariant 3): everything
    derived from services, routing and policies is as it was."""
    skipped: tuple[Skipped, ...] = ()
    """Documents of kinds pyistiod does not read: not applied (EnvoyFilter, Telemetry, ...)."""

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Every error of every refused object, in file order."""
        return tuple(e for r in self.refusals for e in r.errors)


def load(
    reads: Iterable[Documents],
    previous: Objects = NOTHING,
    domain_suffix: str = DEFAULT_DOMAIN_SUFFIX,
    previous_model: MeshModel | None = None,
) -> LoadResult:
    """The model of every source's documents, given what was in force before (invariant 1).

    With ``previous_model`` (built from ``previous``), a read that only edited
    EndpointSlices updates that model's endpoints instead of building it again
    (invariant 3).
    """
    reads = list(reads)
    results = [r for read in reads for r in read.results]
    unreadable = frozenset().union(*(read.unreadable for read in reads))
    warnings = tuple(w for read in reads for w in read.warnings)
    skipped = tuple(s for read in reads for s in read.skipped)
    files = sum(read.files for read in reads)
    if previous_model is not None and (
        quick := endpoint_slices_only(results, previous, unreadable)
    ):
        objects, slices = quick
        model = update_endpoints(
            previous_model,
            objects.values(),
            [s for s in slices if isinstance(s, EndpointSliceObject)],
        )
        return LoadResult(
            model,
            warnings,
            files,
            len(objects),
            (),
            objects,
            len(results),
            endpoints_only=True,
            skipped=skipped,
        )
    settled = in_force(results, previous, unreadable=unreadable, domain_suffix=domain_suffix)
    return LoadResult(
        build_model(settled.objects.values(), domain_suffix),
        (*warnings, *settled.warnings),
        files,
        len(settled.objects),
        settled.refusals,
        settled.objects,
        len(results),
        skipped=skipped,
    )


class Loader:
    """Reads every source and settles what is in force; the one owner of that memory."""

    def __init__(self, sources: Sequence[Source], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX):
        self.sources = tuple(sources)
        self.domain_suffix = domain_suffix
        self._in_force: Objects = NOTHING
        self._model: MeshModel | None = None
        self._refusals: tuple[Refusal, ...] = ()

    def read(self) -> LoadResult:
        """Read every source now and settle against what is in force; nothing is remembered."""
        reads = (s.read() for s in self.sources)
        return load(reads, self._in_force, self.domain_suffix, self._model)

    def commit(self, result: LoadResult) -> None:
        """``result`` is now served: its objects are what the next read starts from."""
        self._in_force = result.in_force
        self._model = result.model
        if not result.endpoints_only:  # an EndpointSlice edit settles nothing else
            self._refusals = result.refusals

    @property
    def in_force(self) -> Objects:
        """The objects in force after the last committed read."""
        return self._in_force

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        """What the last committed read refused (and what stands in for each)."""
        return self._refusals

    @property
    def model(self) -> MeshModel | None:
        """The model of the last committed read (None before the first)."""
        return self._model
