"""Readers for the port lists of Services, EndpointSlices and Pods.

Invariants:

1. Only TCP ports come out (``protocol`` defaults to TCP, as in Kubernetes);
   UDP and SCTP ports are dropped, with a warning for Service ports, since
   Istio proxies neither.
2. Kubernetes' own uniqueness rules are enforced: Service port names and
   numbers, and Pod container port names, are unique; a Service with more than
   one port names every port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.port_protocol import kubernetes_port_protocol
from translators.mesh.model.services import ServicePort

_IP_PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True, slots=True)
class SlicePort:
    """An EndpointSlice port: ``name`` matches a Service port name ("" for unnamed)."""

    name: str
    port: int


def _ip_protocol(p: v.Problems, m: Mapping[str, object], field: str) -> str:
    proto = v.string(p, m.get("protocol"), f"{field}.protocol") or "TCP"
    if proto not in _IP_PROTOCOLS:
        p.add(f"{field}.protocol", f"must be TCP, UDP or SCTP, got {v.describe(proto)}")
    return proto


def service_ports(
    p: v.Problems, raw: object, owner: str, warnings: list[str]
) -> tuple[ServicePort, ...]:
    """A Service's ``spec.ports``: TCP ports with their protocol selected as Istio does."""
    items = v.sequence(p, raw, "spec.ports")
    out: list[ServicePort] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        field = f"spec.ports[{i}]"
        port = _service_port(p, item, field, named=len(items) > 1)
        if port is None:
            continue
        proto, sp = port
        if proto != "TCP":
            warnings.append(
                f"{owner}: port {sp.name or sp.port} ({sp.port}/{proto}) skipped: "
                "only TCP ports are proxied"
            )
            continue
        if sp.name in names:
            p.add(f"{field}.name", f"duplicates the name of another port: {sp.name!r}")
        if any(o.port == sp.port for o in out):
            p.add(f"{field}.port", f"duplicates another TCP port: {sp.port}")
        names.add(sp.name)
        out.append(sp)
    return tuple(out)


def _service_port(
    p: v.Problems, raw: object, field: str, named: bool
) -> tuple[str, ServicePort] | None:
    m = v.mapping(p, raw, field)
    if m is None:
        p.add(field, "must be a mapping with at least port")
        return None
    name = v.string(p, m.get("name"), f"{field}.name", required=named) or ""
    if name and not v.is_dns_label(name):
        p.add(f"{field}.name", f"must be a DNS-1123 label, got {v.describe(name)}")
    number = v.port(p, m.get("port"), f"{field}.port")
    target = v.port_or_name(p, m.get("targetPort"), f"{field}.targetPort")
    app = v.string(p, m.get("appProtocol"), f"{field}.appProtocol")
    proto = _ip_protocol(p, m, field)
    if number is None:
        return None
    protocol = kubernetes_port_protocol(name, app)
    return proto, ServicePort(name, number, protocol, number if target is None else target)


def slice_ports(p: v.Problems, raw: object) -> tuple[SlicePort, ...]:
    """An EndpointSlice's ``ports``; each needs a number (a null port means "all
    ports", which pyistiod cannot route)."""
    out: list[SlicePort] = []
    for i, item in enumerate(v.sequence(p, raw, "ports")):
        field = f"ports[{i}]"
        m = v.mapping(p, item, field) or {}
        name = v.string(p, m.get("name"), f"{field}.name") or ""
        number = v.port(p, m.get("port"), f"{field}.port")
        if _ip_protocol(p, m, field) == "TCP" and number is not None:
            out.append(SlicePort(name, number))
    return tuple(out)


def container_ports(p: v.Problems, raw: object) -> tuple[tuple[str, int], ...]:
    """A Pod's named TCP container ports across ``spec.containers``, sorted by name."""
    named: dict[str, int] = {}
    for c, container in enumerate(v.sequence(p, raw, "spec.containers")):
        cm = v.mapping(p, container, f"spec.containers[{c}]") or {}
        for i, item in enumerate(v.sequence(p, cm.get("ports"), f"spec.containers[{c}].ports")):
            field = f"spec.containers[{c}].ports[{i}]"
            m = v.mapping(p, item, field) or {}
            name = v.string(p, m.get("name"), f"{field}.name")
            number = v.port(p, m.get("containerPort"), f"{field}.containerPort")
            if name is not None and not v.is_port_name(name):
                p.add(f"{field}.name", f"must be an IANA service name, got {v.describe(name)}")
            elif name is not None and name in named:
                p.add(f"{field}.name", f"duplicates another container port name: {name!r}")
            elif name and number and _ip_protocol(p, m, field) == "TCP":
                named[name] = number
    return tuple(sorted(named.items()))
