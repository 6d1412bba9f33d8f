"""``analyze``: what ``istioctl analyze`` would warn about in VirtualServices and DestinationRules.

Warned, but served (the config is valid; the traffic may not go where meant):

1. A destination host that is no service in the mesh (IST0101): Envoy gets
   a cluster name that does not exist and answers 503, as with Istio.
2. A subset no DestinationRule of the host defines (IST0101), same effect;
   a destination port the service does not have.
3. A DestinationRule whose host matches no service.
4. Several sidecar (``mesh``) VirtualServices for one host (IST0109): the
   first by (namespace, name) routes it, the others are ignored for it.
   Istio keeps the oldest by creation time, which files do not carry.

Pure: reads the model, returns sorted messages; callers log them.
"""

from __future__ import annotations

from collections.abc import Iterator

from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.routing import MESH_GATEWAY, Destination, VirtualService
from translators.mesh.model.services import Service
from translators.mesh.selection.destination_rules import destination_rule_for, host_matches


def analyze(model: MeshModel) -> list[str]:
    """Every warning about the model's VirtualServices and DestinationRules (see the module)."""
    services: dict[str, Service] = {}
    for service in model.services:
        services.setdefault(service.hostname, service)
    warnings = [
        *(w for vs in model.virtual_services for w in _destination_warnings(model, services, vs)),
        *_orphan_rules(model),
        *_conflicts(model),
    ]
    return sorted(warnings)


def _destinations(vs: VirtualService) -> Iterator[tuple[str, Destination]]:
    for i, http in enumerate(vs.http):
        for j, rd in enumerate(http.route):
            yield f"spec.http[{i}].route[{j}].destination", rd.destination
        if http.mirror is not None:
            yield f"spec.http[{i}].mirror", http.mirror.destination
    for kind, routes in (("tcp", vs.tcp), ("tls", vs.tls)):
        for i, l4 in enumerate(routes):
            for j, rd in enumerate(l4.route):
                yield f"spec.{kind}[{i}].route[{j}].destination", rd.destination


def _destination_warnings(
    model: MeshModel, services: dict[str, Service], vs: VirtualService
) -> Iterator[str]:
    where = f"VirtualService {vs.key}"
    for field, dest in _destinations(vs):
        service = services.get(dest.host)
        if service is None:
            yield (
                f"{where}: {field}.host {dest.host!r} is not a service in the mesh; "
                "requests routed there get 503 (no cluster)"
            )
            continue
        if dest.port is not None and service.port(dest.port) is None:
            ports = ", ".join(str(p.port) for p in service.ports)
            yield f"{where}: {field}.port {dest.port} is not a port of {dest.host} ({ports})"
        if dest.subset:
            rule = destination_rule_for(model.policies, service)
            if rule is None or rule.subset(dest.subset) is None:
                owner = f"DestinationRule {rule.namespace}/{rule.name}" if rule else "no rule"
                yield (
                    f"{where}: {field}.subset {dest.subset!r} is not defined for {dest.host} "
                    f"({owner}); requests routed there get 503 (no cluster)"
                )


def _orphan_rules(model: MeshModel) -> Iterator[str]:
    for rule in model.policies.destination_rules:
        if not any(host_matches(rule.host, s.hostname) for s in model.services):
            yield (
                f"DestinationRule {rule.namespace}/{rule.name}: spec.host {rule.host!r} "
                "matches no service in the mesh"
            )


def _conflicts(model: MeshModel) -> Iterator[str]:
    by_host: dict[str, list[VirtualService]] = {}
    for vs in model.virtual_services:
        if MESH_GATEWAY in vs.gateways:
            for host in vs.hosts:
                by_host.setdefault(host, []).append(vs)
    for host, owners in sorted(by_host.items()):
        if len(owners) > 1:
            first, rest = owners[0], owners[1:]
            yield (
                f"VirtualServices {', '.join(vs.key for vs in owners)} all route host "
                f"{host!r} for sidecars: {first.key} (first by namespace/name) is used, "
                f"{', '.join(vs.key for vs in rest)} ignored for it; Istio merges VirtualServices "
                "only for gateways"
            )
