"""Endpoints of one service, from EndpointSlices, WorkloadEntries, Pods or ServiceEntries.

Invariants (target port rules as Istio applies them):

1. An EndpointSlice port backs the service port with the same name ("" for the
   one unnamed port); ``Endpoint.port`` is the slice port, already resolved by
   Kubernetes. Labels, service account and workload name come from the
   ``targetRef`` Pod; a missing Pod leaves them empty.
2. A WorkloadEntry selected by a Kubernetes Service: its ``ports[<service port
   name>]``, else its ``ports[<named targetPort>]``, else a numeric
   ``targetPort``, else the service port.
3. A ServiceEntry endpoint, WorkloadEntry or Pod behind a ServiceEntry: its
   ``ports[<port name>]``, else the SE ``targetPort``, else the port number.
4. Selection is by labels within the service's namespace; a Pod without an IP
   gives no endpoint.
5. Endpoints another object gives a hostname it shares (``joined_endpoints``)
   back the owner's service port with the same name, as Istio's
   ``EndpointShards.CopyEndpoints`` keys them by port name; other endpoints
   are dropped, and so are host-name addresses when the owner is not resolved
   by DNS (EDS takes IP addresses only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

from translators.mesh.documents.kubernetes.objects import EndpointSliceObject, PodObject
from translators.mesh.documents.networking.service_entries import (
    ServiceEntryObject,
    WorkloadEntryObject,
)
from translators.mesh.model.addresses import is_ip
from translators.mesh.model.services import Endpoint, ObjectKey, Resolution, Service, ServicePort
from translators.mesh.model.services import selector_matches as matches


def slice_endpoints(
    sl: EndpointSliceObject, svc: Service, pods: Mapping[ObjectKey, PodObject]
) -> Iterator[Endpoint]:
    """The endpoints an EndpointSlice gives ``svc``, one per address and matching port."""
    by_name = {sp.name: sp for sp in svc.ports}
    for slice_port in sl.ports:
        sp = by_name.get(slice_port.name)
        if sp is None:
            continue
        for ep in sl.endpoints:
            pod = pods.get(ep.target) if ep.target is not None else None
            labels = pod.meta.labels if pod else frozenset()
            account = pod.service_account if pod else ""
            workload = ep.target.name if ep.target is not None else ""
            for address in ep.addresses:
                yield Endpoint(
                    sp.port, address, slice_port.port, labels, account, workload, ep.ready
                )


def workload_entry_endpoints(
    svc: Service, entries: Iterable[WorkloadEntryObject]
) -> Iterator[Endpoint]:
    """Endpoints of a Kubernetes Service from the WorkloadEntries its selector picks."""
    for we in entries:
        if we.meta.namespace != svc.namespace or not matches(svc.selector, we.labels):
            continue
        ports = dict(we.ports)
        for sp in svc.ports:
            target = _kubernetes_target(sp, ports)
            yield Endpoint(sp.port, we.address, target, we.labels, we.service_account, we.meta.name)


def _kubernetes_target(sp: ServicePort, ports: Mapping[str, int]) -> int:
    if sp.name in ports:
        return ports[sp.name]
    if isinstance(sp.target_port, str):
        return ports.get(sp.target_port, sp.port)
    return sp.target_port or sp.port


def _se_target(sp: ServicePort, ports: Mapping[str, int]) -> int:
    if sp.name in ports:
        return ports[sp.name]
    return sp.target_port if isinstance(sp.target_port, int) else sp.port


def se_endpoints(
    entry: ServiceEntryObject,
    svc: Service,
    workload_entries: Iterable[WorkloadEntryObject],
    pods: Iterable[PodObject],
) -> list[Endpoint]:
    """Endpoints of one ServiceEntry host: listed, selected, or the host itself (DNS)."""
    found = [
        Endpoint(sp.port, ep.address, _se_target(sp, dict(ep.ports)), ep.labels, ep.service_account)
        for ep in entry.endpoints
        for sp in svc.ports
    ]
    if entry.workload_selector:
        found.extend(_selected(svc, workload_entries, pods))
    elif svc.resolution is Resolution.DNS and not entry.endpoints:
        found.extend(Endpoint(sp.port, svc.hostname, _se_target(sp, {})) for sp in svc.ports)
    return found


def _selected(
    svc: Service, workload_entries: Iterable[WorkloadEntryObject], pods: Iterable[PodObject]
) -> Iterator[Endpoint]:
    """Endpoints of the WorkloadEntries and Pods a ServiceEntry's selector picks."""
    candidates = [
        (we.address, we.labels, we.service_account, we.meta.name, dict(we.ports))
        for we in workload_entries
        if we.meta.namespace == svc.namespace
    ] + [
        (pod.pod_ip, pod.meta.labels, pod.service_account, pod.meta.name, dict(pod.ports))
        for pod in pods
        if pod.meta.namespace == svc.namespace and pod.pod_ip
    ]
    for address, labels, account, name, ports in candidates:
        if matches(svc.selector, labels):
            for sp in svc.ports:
                yield Endpoint(sp.port, address, _se_target(sp, ports), labels, account, name)


def joined_endpoints(
    svc: Service, other: Service, endpoints: Iterable[Endpoint]
) -> Iterator[Endpoint]:
    """``other``'s endpoints for the hostname ``svc`` owns, as ``svc`` serves them (invariant 5)."""
    names = {sp.port: sp.name for sp in other.ports}
    numbers = {sp.name: sp.port for sp in svc.ports}
    for ep in endpoints:
        name = names.get(ep.service_port)
        number = numbers.get(name) if name is not None else None
        if number is None or (svc.resolution is not Resolution.DNS and not is_ip(ep.address)):
            continue
        yield replace(ep, service_port=number)


def dedupe(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """One endpoint per (service port, address, port), sorted.

    A ready copy wins, then one whose workload is known (a slice entry with a
    ``targetRef`` over one without). Remaining ties are broken on every field,
    labels included, so the result does not depend on input order.
    """
    ordered = sorted(
        endpoints,
        key=lambda e: (
            e.service_port,
            e.address,
            e.port,
            not e.ready,
            not e.workload,
            e.workload,
            e.service_account,
            sorted(e.labels),
        ),
    )
    out: dict[tuple[int, str, int], Endpoint] = {}
    for ep in ordered:
        out.setdefault((ep.service_port, ep.address, ep.port), ep)
    return tuple(out.values())
