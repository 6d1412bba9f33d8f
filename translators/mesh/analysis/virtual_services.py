"""VirtualService analyzers: references that lead nowhere and hosts claimed twice.

As ``istioctl analyze`` (codes and texts from Istio's catalogue):

1. IST0101 ``Referenced gateway not found``: a ``gateways`` entry other than
   ``mesh`` that names no Gateway.
2. IST0132: a gateway none of whose server hosts (visible to the
   VirtualService's namespace) covers a host of the VirtualService; a missing
   gateway has no hosts, so it gets both messages, as in Istio.
3. IST0101 ``host`` / ``mirror host`` / ``host:port``: a destination that no
   Service or ServiceEntry visible from the VirtualService (``hosts.HostIndex``)
   is, or a port that service does not have; IST0112 when a destination
   without a port routes to a service with several.
4. IST0101 ``host+subset``: a subset no DestinationRule of that host defines.
5. IST0109: VirtualServices bound to sidecars (``mesh``) claiming one host in
   one export scope (``*`` covers every namespace and its wildcards cover
   names); each is reported once. pyistiod, like Istio, routes the host by
   one of them only.

Pure: reads the model, returns messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from translators.mesh.analysis import messages as msg
from translators.mesh.analysis.hosts import ALL, HostIndex
from translators.mesh.model.gateways import Gateway
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.routing import MESH_GATEWAY, Destination, VirtualService
from translators.mesh.model.services import ObjectKey
from translators.mesh.selection.virtual_services import host_covers

KIND = "VirtualService"


def key_of(vs: VirtualService) -> ObjectKey:
    """The VirtualService's identity, for messages."""
    return ObjectKey(KIND, vs.namespace, vs.name)


def analyze_virtual_services(model: MeshModel, index: HostIndex) -> Iterator[msg.Message]:
    """Every message of invariants 1-5 about the model's VirtualServices."""
    subsets = {(dr.host, s.name) for dr in model.policies.destination_rules for s in dr.subsets}
    gateways = {f"{g.namespace}/{g.name}": g for g in model.gateways}
    for vs in model.virtual_services:
        yield from _gateways(gateways, vs)
        for field, dest, mirror in _destinations(vs):
            yield from _destination(index, subsets, vs, field, dest, mirror)
    yield from _conflicts(model)


def _gateways(by_name: Mapping[str, Gateway], vs: VirtualService) -> Iterator[msg.Message]:
    for i, name in enumerate(vs.gateways):
        if name == MESH_GATEWAY:
            continue
        field = f"spec.gateways[{i}]"
        gateway = by_name.get(name)
        if gateway is None:
            yield msg.REFERENCED_RESOURCE_NOT_FOUND(
                key_of(vs), "gateway", msg.quote(name), field=field
            )
        hosts = [
            h.host
            for server in (gateway.servers if gateway else ())
            for h in server.hosts
            if h.namespace in ("*", vs.namespace)
        ]
        if not any(host_covers(g, h) or host_covers(h, g) for g in hosts for h in vs.hosts):
            yield msg.VIRTUAL_SERVICE_HOST_NOT_FOUND_IN_GATEWAY(
                key_of(vs), msg.go_list(vs.hosts), f"{vs.namespace}/{vs.name}", name, field=field
            )


def _destinations(vs: VirtualService) -> Iterator[tuple[str, Destination, bool]]:
    for kind, routes in (("tcp", vs.tcp), ("tls", vs.tls)):
        for i, l4 in enumerate(routes):
            for j, rd in enumerate(l4.route):
                yield f"spec.{kind}[{i}].route[{j}].destination.host", rd.destination, False
    for i, http in enumerate(vs.http):
        for j, rd in enumerate(http.route):
            yield f"spec.http[{i}].route[{j}].destination.host", rd.destination, False
        if http.mirror is not None:
            yield f"spec.http[{i}].mirror.host", http.mirror.destination, True


def _destination(
    index: HostIndex,
    subsets: set[tuple[str, str]],
    vs: VirtualService,
    field: str,
    dest: Destination,
    mirror: bool,
) -> Iterator[msg.Message]:
    key, written = key_of(vs), dest.written or dest.host
    what = "mirror host" if mirror else "host"
    service = index.find(vs.namespace, vs.export_to, dest.host)
    if service is None:
        yield msg.REFERENCED_RESOURCE_NOT_FOUND(key, what, msg.quote(written), field=field)
    elif dest.port is not None and service.port(dest.port) is None:
        yield msg.REFERENCED_RESOURCE_NOT_FOUND(
            key, "host:port", msg.quote(f"{written}:{dest.port}"), field=field
        )
    elif dest.port is None and len(service.ports) > 1:
        yield msg.VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED(
            key, msg.quote(written), msg.go_list(p.port for p in service.ports), field=field
        )
    if dest.subset and (dest.host, dest.subset) not in subsets:
        what = "mirror+subset in destinationrule" if mirror else "host+subset in destinationrule"
        yield msg.REFERENCED_RESOURCE_NOT_FOUND(
            key, what, msg.quote(f"{written}+{dest.subset}"), field=field
        )


def _conflicts(model: MeshModel) -> Iterator[msg.Message]:
    claims: dict[tuple[str, str], list[VirtualService]] = {}
    for vs in model.virtual_services:
        if MESH_GATEWAY not in vs.gateways:
            continue
        scopes = {ALL} if not vs.export_to or ALL in vs.export_to else set(vs.export_to)
        for scope in sorted(scopes):
            for host in vs.hosts:
                claims.setdefault((scope, host), []).append(vs)
    reported: set[tuple[str, str]] = set()
    for (scope, host), owners in sorted(claims.items()):
        members = list(owners)
        if scope != ALL:
            for (other_scope, other_host), everywhere in claims.items():
                if other_scope == ALL and host_covers(other_host, host):
                    members.extend(everywhere)
        unique = sorted({(vs.namespace, vs.name): vs for vs in members}.values(), key=_ns_name)
        if len(unique) < 2:
            continue
        names = ",".join(f"{vs.namespace}/{vs.name}" for vs in unique)
        for vs in unique:
            if _ns_name(vs) not in reported:
                reported.add(_ns_name(vs))
                yield msg.CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS(
                    key_of(vs), names, f"{scope}/{host}", field="spec.hosts"
                )


def _ns_name(vs: VirtualService) -> tuple[str, str]:
    return (vs.namespace, vs.name)
