"""Cross-object checks: rules no single document can break alone.

Invariants:

1. Objects are visited in the order given, and the first to hold a name or a
   hostname keeps it: each later claimant is a ``Conflict``, refused with an
   error naming where the first lives. ``check_objects`` visits in
   ``Origin`` order (file, then document); ``in_force`` puts the objects
   already in force first, as Istio lets the older object win.
2. Refused, one check after the other (an object refused by one check no
   longer holds anything in the next):
   - two objects of one kind with one namespace/name;
   - two services with one hostname (a Service and a ServiceEntry host, or
     two ServiceEntries), since the model keys endpoints by hostname;
   - a Pod and a WorkloadEntry with one namespace/name, since proxies find
     their workload by namespace/name.
3. Allowed, as Kubernetes allows them: an EndpointSlice for a Service that
   does not exist, and a ``targetRef`` to a Pod that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from translators.mesh.documents.kinds import SourceObject
from translators.mesh.documents.kubernetes import PodObject, ServiceObject
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.service_entries import ServiceEntryObject, WorkloadEntryObject
from translators.mesh.model.services import DEFAULT_DOMAIN_SUFFIX
from xds_server.errors import ConfigError


def kubernetes_hostname(namespace: str, name: str, domain_suffix: str) -> str:
    """A Kubernetes Service's FQDN: ``name.namespace.svc.<domain_suffix>``."""
    return f"{name}.{namespace}.svc.{domain_suffix}"


@dataclass(frozen=True, slots=True)
class Conflict:
    """An object refused because an object visited before it holds what it claims."""

    obj: SourceObject
    error: ConfigError


def conflicts(
    objects: Sequence[SourceObject], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX
) -> tuple[Conflict, ...]:
    """Every object that loses a cross-object rule to one before it in ``objects``."""
    found: list[Conflict] = []
    held = list(objects)
    for check in (_duplicates, _hostname_clashes, _workload_clashes):
        lost = list(check(held, domain_suffix))
        found.extend(lost)
        losers = {id(c.obj) for c in lost}
        held = [o for o in held if id(o) not in losers]
    return tuple(found)


def check_objects(
    objects: Iterable[SourceObject], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX
) -> tuple[ConfigError, ...]:
    """Every cross-object error among ``objects``, in file order (empty when consistent)."""
    ordered = sorted(objects, key=lambda o: (o.meta.origin, o.meta.key))
    return tuple(c.error for c in conflicts(ordered, domain_suffix))


def _conflict(obj: SourceObject, field: str, reason: str) -> Conflict:
    meta = obj.meta
    error = ConfigError(meta.origin.path, meta.origin.document, field, reason, str(meta.key))
    return Conflict(obj, error)


def _duplicates(objects: list[SourceObject], _domain_suffix: str) -> Iterator[Conflict]:
    seen: dict[object, Meta] = {}
    for obj in objects:
        first = seen.setdefault(obj.meta.key, obj.meta)
        if first is not obj.meta:
            yield _conflict(
                obj,
                "metadata.name",
                f"duplicates {first.key} already defined in {first.origin}",
            )


def _hostnames(obj: SourceObject, domain_suffix: str) -> Iterator[tuple[str, str]]:
    """(hostname, field defining it) for each service ``obj`` defines."""
    if isinstance(obj, ServiceObject):
        yield kubernetes_hostname(obj.meta.namespace, obj.meta.name, domain_suffix), "metadata.name"
    elif isinstance(obj, ServiceEntryObject):
        for i, host in enumerate(obj.hosts):
            yield host, f"spec.hosts[{i}]"


def _hostname_clashes(objects: list[SourceObject], domain_suffix: str) -> Iterator[Conflict]:
    owners: dict[str, Meta] = {}
    for obj in objects:
        for host, field in _hostnames(obj, domain_suffix):
            first = owners.setdefault(host, obj.meta)
            if first.key != obj.meta.key:
                yield _conflict(
                    obj,
                    field,
                    f"host {host!r} is already defined by {first.key} in {first.origin}; "
                    "a hostname may belong to one service only",
                )


def _workload_clashes(objects: list[SourceObject], _domain_suffix: str) -> Iterator[Conflict]:
    owners: dict[tuple[str, str], Meta] = {}
    for obj in objects:
        if not isinstance(obj, PodObject | WorkloadEntryObject):
            continue
        first = owners.setdefault((obj.meta.namespace, obj.meta.name), obj.meta)
        if first.key.kind != obj.meta.key.kind:
            yield _conflict(
                obj,
                "metadata.name",
                f"same namespace/name as {first.key} in {first.origin}; proxies find their "
                "workload by namespace/name, so a Pod and a WorkloadEntry must differ",
            )
