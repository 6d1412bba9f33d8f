"""Build the typed ``MeshModel`` from parsed source objects, as Kubernetes and Istio would.

Invariants:

1. ``build_model`` is pure and order-independent: objects are sorted by
   (kind, namespace, name) first, and the model sorts its collections, so the
   same objects in any order give an equal model.
2. It refuses inconsistent input as a whole (``ConfigInvalid`` with every
   error from ``check_objects``); it never returns a partial model.
3. Endpoints of a Kubernetes Service come from its EndpointSlices (label
   ``kubernetes.io/service-name``, same namespace) and, when it has a
   selector, from the WorkloadEntries it selects, as Istio does. Pods alone
   give no endpoints; they become ``Workload``s, as WorkloadEntries do.
4. Endpoints that are not ready are kept with ``ready=False``: dropping them
   is the translators' choice. An address/port pair appears once per service
   port (overlapping EndpointSlices are merged, see ``dedupe``).
5. Security objects become ``MeshModel.policies``; a DestinationRule's short
   host (no dot) is resolved in the rule's namespace, as Istio's
   ``ResolveShortnameToFQDN`` does.
6. Gateways, Secrets holding TLS material and Sidecars go to their own
   model fields, unchanged; ``exportTo`` is carried onto each Service.
   VirtualServices too, with short hosts and destination hosts resolved in
   the VirtualService's namespace (``virtual_service.resolve_hosts``).
7. ``update_endpoints`` gives the model ``build_model`` would give when only
   EndpointSlices changed, recomputing just the endpoints of the Services
   those slices (old and new versions) name.
8. A hostname declared by several objects is one Service, defined by its
   owner (``checks.host_owners``: a Kubernetes Service first, then the
   oldest). The other ServiceEntries of the owner's namespace add their
   endpoints where their port names match the owner's
   (``service_endpoints.joined_endpoints``), as Istio merges the endpoints
   of one (hostname, namespace); those of other namespaces add none, since
   the model has one service per hostname where Istio has one per namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from translators.mesh.checks import check_objects, host_owners, kubernetes_hostname
from translators.mesh.documents.kinds import SourceObject
from translators.mesh.documents.kubernetes.objects import (
    EndpointSliceObject,
    PodObject,
    ServiceObject,
)
from translators.mesh.documents.networking.destination_rules import DestinationRuleObject
from translators.mesh.documents.networking.gateways import GatewayObject, SecretObject
from translators.mesh.documents.networking.service_entries import (
    ServiceEntryObject,
    WorkloadEntryObject,
)
from translators.mesh.documents.networking.sidecars import SidecarObject
from translators.mesh.documents.networking.virtual_services import (
    VirtualServiceObject,
    resolve_hosts,
)
from translators.mesh.documents.security.authorization import AuthorizationPolicyObject
from translators.mesh.documents.security.peer_authentication import PeerAuthenticationObject
from translators.mesh.documents.security.request_authentication import (
    RequestAuthenticationObject,
)
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import Policies
from translators.mesh.model.services import (
    DEFAULT_DOMAIN_SUFFIX,
    Endpoint,
    Location,
    ObjectKey,
    Resolution,
    Service,
    Workload,
)
from translators.mesh.service_endpoints import (
    dedupe,
    joined_endpoints,
    se_endpoints,
    slice_endpoints,
    workload_entry_endpoints,
)
from xds_server.errors import ConfigInvalid


@dataclass(frozen=True, slots=True)
class _Index:
    """The objects by kind, as the builder looks them up."""

    services: tuple[ServiceObject, ...]
    entries: tuple[ServiceEntryObject, ...]
    pods: Mapping[ObjectKey, PodObject]
    workload_entries: tuple[WorkloadEntryObject, ...]
    slices: Mapping[tuple[str, str], tuple[EndpointSliceObject, ...]]
    """EndpointSlices by (namespace, service name)."""
    entries_by_host: Mapping[tuple[str, str], tuple[ServiceEntryObject, ...]]
    """ServiceEntries by (namespace, host)."""


def build_model(
    objects: Iterable[SourceObject], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX
) -> MeshModel:
    """The mesh the objects describe; ``ConfigInvalid`` if they are inconsistent."""
    objs = sorted(objects, key=lambda o: o.meta.key)
    errors = check_objects(objs, domain_suffix)
    if errors:
        raise ConfigInvalid(list(errors))
    idx = _index(objs)
    services, endpoints = _services(idx, host_owners(objs, domain_suffix), domain_suffix)
    return MeshModel.build(
        services,
        endpoints,
        _workloads(idx),
        policies(objs, domain_suffix),
        gateways=(o.gateway for o in objs if isinstance(o, GatewayObject)),
        credentials=(o.credential for o in objs if isinstance(o, SecretObject) and o.credential),
        sidecars=(o.sidecar for o in objs if isinstance(o, SidecarObject)),
        virtual_services=(
            resolve_hosts(o.virtual_service, domain_suffix)
            for o in objs
            if isinstance(o, VirtualServiceObject)
        ),
    )


def _services(
    idx: _Index, owners: Mapping[str, ObjectKey], domain_suffix: str
) -> tuple[list[Service], dict[str, tuple[Endpoint, ...]]]:
    """One Service per hostname, from its owner, with its endpoints (invariants 3, 8)."""
    services: list[Service] = []
    endpoints: dict[str, tuple[Endpoint, ...]] = {}
    for svc in idx.services:
        model_svc = kubernetes_service(svc, domain_suffix)
        services.append(model_svc)
        endpoints[model_svc.hostname] = _kubernetes_endpoints(svc, model_svc, idx)
    for entry in idx.entries:
        for model_svc in service_entry_services(entry):
            host = model_svc.hostname
            if owners.get(host) != entry.meta.key or host in endpoints:
                continue  # another object owns the host, or the entry lists it twice
            services.append(model_svc)
            own = se_endpoints(entry, model_svc, idx.workload_entries, idx.pods.values())
            endpoints[host] = dedupe([*own, *_joined(model_svc, idx)])
    return services, endpoints


def update_endpoints(
    model: MeshModel, objects: Iterable[SourceObject], slices: Iterable[EndpointSliceObject]
) -> MeshModel:
    """``model`` with the endpoints of the Services ``slices`` name recomputed (invariant 7).

    ``objects`` are every object now in force, ``slices`` the EndpointSlices
    that changed (their old and new versions): everything else of ``model``
    is kept as it is, so an EndpointSlice edit costs one service's endpoints.
    """
    named = {(s.meta.namespace, s.service_name) for s in slices if s.service_name}
    if not named:
        return model
    idx = _index(list(objects))  # in any order: dedupe sorts each service's endpoints
    by_key = {s.meta.key: s for s in idx.services}
    endpoints = dict(model.endpoints)
    for service in model.services:
        if not service.is_kubernetes or (service.namespace, service.name) not in named:
            continue
        obj = by_key.get(service.source)
        if obj is not None:
            endpoints[service.hostname] = _kubernetes_endpoints(obj, service, idx)
    return replace(model, endpoints=MappingProxyType(endpoints))


def policies(
    objects: Iterable[SourceObject], domain_suffix: str = DEFAULT_DOMAIN_SUFFIX
) -> Policies:
    """The security policies among ``objects``, DestinationRule hosts resolved to FQDNs."""
    objs = list(objects)
    return Policies.build(
        tuple(o.policy for o in objs if isinstance(o, PeerAuthenticationObject)),
        tuple(o.policy for o in objs if isinstance(o, AuthorizationPolicyObject)),
        tuple(
            replace(o.rule, host=resolve_short_host(o.rule.host, o.meta.namespace, domain_suffix))
            for o in objs
            if isinstance(o, DestinationRuleObject)
        ),
        tuple(o.policy for o in objs if isinstance(o, RequestAuthenticationObject)),
    )


def resolve_short_host(host: str, namespace: str, domain_suffix: str) -> str:
    """``reviews`` in namespace ``ns`` is ``reviews.ns.svc.<suffix>``; other hosts stay."""
    if "." in host or host == "*":
        return host
    return kubernetes_hostname(namespace, host, domain_suffix)


def _index(objs: list[SourceObject]) -> _Index:
    slices: dict[tuple[str, str], list[EndpointSliceObject]] = {}
    by_host: dict[tuple[str, str], list[ServiceEntryObject]] = {}
    for o in objs:
        if isinstance(o, EndpointSliceObject) and o.service_name:
            slices.setdefault((o.meta.namespace, o.service_name), []).append(o)
        elif isinstance(o, ServiceEntryObject):
            for host in dict.fromkeys(o.hosts):
                by_host.setdefault((o.meta.namespace, host), []).append(o)
    return _Index(
        services=tuple(o for o in objs if isinstance(o, ServiceObject)),
        entries=tuple(o for o in objs if isinstance(o, ServiceEntryObject)),
        pods={o.meta.key: o for o in objs if isinstance(o, PodObject)},
        workload_entries=tuple(o for o in objs if isinstance(o, WorkloadEntryObject)),
        slices={k: tuple(v) for k, v in slices.items()},
        entries_by_host={k: tuple(v) for k, v in by_host.items()},
    )


def kubernetes_service(obj: ServiceObject, domain_suffix: str = DEFAULT_DOMAIN_SUFFIX) -> Service:
    """A Kubernetes Service as the model has it.

    As Istio's ``ConvertService``: a headless Service (``clusterIP: None``) is
    passthrough (resolution NONE), an ExternalName Service resolves its
    external name by DNS and is mesh-external.
    """
    resolution, location = Resolution.STATIC, Location.MESH_INTERNAL
    if obj.type == "ExternalName":
        resolution, location = Resolution.DNS, Location.MESH_EXTERNAL
    elif obj.cluster_ip == "None":
        resolution = Resolution.NONE
    return Service(
        hostname=kubernetes_hostname(obj.meta.namespace, obj.meta.name, domain_suffix),
        namespace=obj.meta.namespace,
        name=obj.meta.name,
        ports=obj.ports,
        source=obj.meta.key,
        selector=obj.selector,
        addresses=(obj.cluster_ip,) if obj.cluster_ip not in ("", "None") else (),
        resolution=resolution,
        location=location,
        is_kubernetes=True,
        export_to=obj.export_to,
    )


def service_entry_services(obj: ServiceEntryObject) -> tuple[Service, ...]:
    """One model Service per ServiceEntry host, the host as written being its hostname."""
    return tuple(service_entry_service(obj, host) for host in obj.hosts)


def service_entry_service(obj: ServiceEntryObject, host: str) -> Service:
    """The model Service of one ServiceEntry host."""
    return Service(
        hostname=host,
        namespace=obj.meta.namespace,
        name=obj.meta.name,
        ports=obj.ports,
        source=obj.meta.key,
        selector=obj.workload_selector,
        addresses=obj.addresses,
        resolution=obj.resolution,
        location=obj.location,
        is_kubernetes=False,
        export_to=obj.export_to,
    )


def _kubernetes_endpoints(obj: ServiceObject, svc: Service, idx: _Index) -> tuple[Endpoint, ...]:
    found: list[Endpoint] = []
    for sl in idx.slices.get((obj.meta.namespace, obj.meta.name), ()):
        found.extend(slice_endpoints(sl, svc, idx.pods))
    found.extend(workload_entry_endpoints(svc, idx.workload_entries))
    if obj.type == "ExternalName":
        found.extend(Endpoint(sp.port, obj.external_name, sp.port) for sp in svc.ports)
    found.extend(_joined(svc, idx))
    return dedupe(found)


def _joined(svc: Service, idx: _Index) -> Iterator[Endpoint]:
    """Endpoints the other ServiceEntries of ``svc``'s namespace give its hostname (inv. 8)."""
    for entry in idx.entries_by_host.get((svc.namespace, svc.hostname), ()):
        if entry.meta.key == svc.source:
            continue
        other = service_entry_service(entry, svc.hostname)
        found = se_endpoints(entry, other, idx.workload_entries, idx.pods.values())
        yield from joined_endpoints(svc, other, found)


def _workloads(idx: _Index) -> list[Workload]:
    pods = (
        Workload(
            p.meta.namespace,
            p.meta.name,
            p.pod_ip,
            p.meta.labels,
            p.service_account,
            p.meta.key,
            p.ports,
        )
        for p in idx.pods.values()
    )
    entries = (
        Workload(
            w.meta.namespace,
            w.meta.name,
            w.address,
            w.labels,
            w.service_account,
            w.meta.key,
            w.ports,
        )
        for w in idx.workload_entries
    )
    return [*pods, *entries]
