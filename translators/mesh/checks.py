"""Cross-object checks: rules no single document can break alone.

Invariants:

1. Objects are visited in the order given, and the first to hold a name keeps
   it: each later claimant is a ``Conflict``, refused with an error naming
   where the first lives. ``check_objects`` visits in ``Origin`` order (file,
   then document); ``in_force`` puts the objects already in force first, as
   Istio lets the older object win.
2. Refused, one check after the other (an object refused by one check no
   longer holds anything in the next):
   - two objects of one kind with one namespace/name;
   - a Pod and a WorkloadEntry with one namespace/name, since proxies find
     their workload by namespace/name.
3. Allowed, as Kubernetes allows them: an EndpointSlice for a Service that
   does not exist, and a ``targetRef`` to a Pod that does not exist.
4. Allowed, as Istio allows them: several objects declaring one hostname (two
   ServiceEntries, or a ServiceEntry repeating a Kubernetes Service's
   hostname; two Kubernetes Services cannot share one). The first by
   ``host_precedence`` owns it (``host_owners``): a Kubernetes Service
   before any ServiceEntry (Istio's guard against "domain squatting"), then
   the older ``creationTimestamp`` (file objects count as newer), the
   earlier origin, the key. Each other declaration is a ``SharedHost``,
   reported as a warning, never refused. The order the objects come in does
   not matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from translators.mesh.documents.kinds import SourceObject
from translators.mesh.documents.kubernetes.objects import PodObject, ServiceObject
from translators.mesh.documents.meta import Meta, Origin
from translators.mesh.documents.networking.service_entries import (
    ServiceEntryObject,
    WorkloadEntryObject,
)
from translators.mesh.model.services import DEFAULT_DOMAIN_SUFFIX, ObjectKey
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
    for check in (_duplicates, _workload_clashes):
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


ServiceLike = ServiceObject | ServiceEntryObject
"""An object that declares services: a Kubernetes Service or a ServiceEntry."""

_NOT_CREATED = "\uffff"
"""Sorts after every creation time: a file object counts as newer than an API object."""


def host_precedence(obj: ServiceLike) -> tuple[bool, str, Origin, ObjectKey]:
    """Which declaration of a hostname wins: the smallest (invariant 4)."""
    meta = obj.meta
    return (not isinstance(obj, ServiceObject), meta.created or _NOT_CREATED, meta.origin, meta.key)


@dataclass(frozen=True, slots=True)
class SharedHost:
    """A hostname ``other`` declares (at ``field``) though ``owner`` defines its service."""

    hostname: str
    owner: ServiceLike
    other: ServiceEntryObject
    field: str

    @property
    def merged(self) -> bool:
        """Whether ``other``'s endpoints join the owner's: only within one namespace, as in
        Istio, which keeps a service per (hostname, namespace)."""
        return self.owner.meta.namespace == self.other.meta.namespace

    def warning(self) -> str:
        """The warning naming both objects and where they are."""
        owner, other = self.owner.meta, self.other.meta
        said = (
            f"{other.origin}: {other.key}: {self.field} host {self.hostname!r} is also declared "
            f"by {owner.key} in {owner.origin}, which defines its service (ports, resolution, "
            "location)"
        )
        if self.merged:
            return f"{said}; this object's endpoints join it where their port names match"
        return (
            f"{said}; Istio keeps the two apart (one service per namespace), pyistiod's model "
            "holds one service per hostname, so this object's endpoints for it are not served"
        )


def host_owners(
    objects: Iterable[SourceObject], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX
) -> dict[str, ObjectKey]:
    """The object that defines the service of each hostname (invariant 4)."""
    return {host: claims[0][0].meta.key for host, claims in _claims(objects, domain_suffix).items()}


def shared_hosts(
    objects: Iterable[SourceObject], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX
) -> tuple[SharedHost, ...]:
    """Every declaration of a hostname another object owns, by hostname then precedence."""
    found: list[SharedHost] = []
    for host, claims in sorted(_claims(objects, domain_suffix).items()):
        (owner, _), *others = claims
        found.extend(
            SharedHost(host, owner, other, field)
            for other, field in others
            if isinstance(other, ServiceEntryObject)  # two Services never share a hostname
        )
    return tuple(found)


def _claims(
    objects: Iterable[SourceObject], domain_suffix: str
) -> dict[str, list[tuple[ServiceLike, str]]]:
    """Each hostname's declarations, first by precedence; an object declares a host once."""
    declaring = sorted(
        (o for o in objects if isinstance(o, ServiceObject | ServiceEntryObject)),
        key=host_precedence,
    )
    claims: dict[str, list[tuple[ServiceLike, str]]] = {}
    for obj in declaring:
        for host, field in _hostnames(obj, domain_suffix):
            found = claims.setdefault(host, [])
            if not any(o is obj for o, _ in found):
                found.append((obj, field))
    return claims


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
