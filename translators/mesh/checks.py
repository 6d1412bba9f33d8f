"""Cross-object checks: rules no single document can break alone.

Invariants:

1. Objects are visited in ``Origin`` order (file, then document), so "the
   first" definition is the one in the earlier file and the error lands on
   the later one, naming where the first lives.
2. Refused:
   - two objects of one kind with one namespace/name;
   - two services with one hostname (a Service and a ServiceEntry host, or
     two ServiceEntries), since the model keys endpoints by hostname;
   - a Pod and a WorkloadEntry with one namespace/name, since proxies find
     their workload by namespace/name.
3. Allowed, as Kubernetes allows them: an EndpointSlice for a Service that
   does not exist, and a ``targetRef`` to a Pod that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from translators.mesh.documents.kinds import SourceObject
from translators.mesh.documents.kubernetes import PodObject, ServiceObject
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.service_entries import ServiceEntryObject, WorkloadEntryObject
from translators.mesh.model.services import DEFAULT_DOMAIN_SUFFIX
from xds_server.errors import ConfigError


def kubernetes_hostname(namespace: str, name: str, domain_suffix: str) -> str:
    """A Kubernetes Service's FQDN: ``name.namespace.svc.<domain_suffix>``."""
    return f"{name}.{namespace}.svc.{domain_suffix}"


def check_objects(
    objects: Iterable[SourceObject], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX
) -> tuple[ConfigError, ...]:
    """Every cross-object error among ``objects``, in file order (empty when consistent)."""
    ordered = sorted(objects, key=lambda o: (o.meta.origin, o.meta.key))
    return (
        *_duplicates(ordered),
        *_hostname_clashes(ordered, domain_suffix),
        *_workload_clashes(ordered),
    )


def _error(meta: Meta, field: str, reason: str) -> ConfigError:
    return ConfigError(meta.origin.path, meta.origin.document, field, reason, str(meta.key))


def _duplicates(objects: list[SourceObject]) -> Iterator[ConfigError]:
    seen: dict[object, Meta] = {}
    for obj in objects:
        first = seen.setdefault(obj.meta.key, obj.meta)
        if first is not obj.meta:
            yield _error(
                obj.meta,
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


def _hostname_clashes(objects: list[SourceObject], domain_suffix: str) -> Iterator[ConfigError]:
    owners: dict[str, Meta] = {}
    for obj in objects:
        for host, field in _hostnames(obj, domain_suffix):
            first = owners.setdefault(host, obj.meta)
            if first.key != obj.meta.key:
                yield _error(
                    obj.meta,
                    field,
                    f"host {host!r} is already defined by {first.key} in {first.origin}; "
                    "a hostname may belong to one service only",
                )


def _workload_clashes(objects: list[SourceObject]) -> Iterator[ConfigError]:
    owners: dict[tuple[str, str], Meta] = {}
    for obj in objects:
        if not isinstance(obj, PodObject | WorkloadEntryObject):
            continue
        first = owners.setdefault((obj.meta.namespace, obj.meta.name), obj.meta)
        if first.key.kind != obj.meta.key.kind:
            yield _error(
                obj.meta,
                "metadata.name",
                f"same namespace/name as {first.key} in {first.origin}; proxies find their "
                "workload by namespace/name, so a Pod and a WorkloadEntry must differ",
            )
