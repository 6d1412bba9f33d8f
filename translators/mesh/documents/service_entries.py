"""Read Istio's ServiceEntry and WorkloadEntry (``networking.istio.io``) documents.

Invariants, following Istio's ``ValidateServiceEntry`` / ``ValidateWorkloadEntry``:

1. A ServiceEntry has at least one host; every port has a DNS-1123 label name
   and a number, both unique; an explicit ``protocol`` is one Istio knows.
2. ``location`` defaults to MESH_EXTERNAL and ``resolution`` to NONE: the zero
   values of Istio's protobuf enums. ``DNS_ROUND_ROBIN`` is read as DNS.
3. ``endpoints`` and ``workloadSelector`` are exclusive. STATIC endpoints must
   be IP addresses; DNS endpoints may be host names. A DNS ServiceEntry without
   endpoints resolves its hosts, so those cannot be wildcards.
4. ``exportTo`` entries are ``.`` (resolved to the entry's namespace),
   ``*``, ``~`` or a namespace; ``*`` and ``~`` stand alone. Empty means
   exported everywhere (Istio's default ``defaultServiceExportTo: *``).
5. A WorkloadEntry address must be an IP here (Istio also allows host names
   and unix sockets; pyistiod's EDS does not). Its labels are ``spec.labels``
   overlaid with ``metadata.labels``, metadata winning, as Istio merges them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.port_protocol import (
    KNOWN_PROTOCOLS,
    parse_protocol,
    protocol_from_port_name,
)
from translators.mesh.model.services import Labels, Location, Resolution, ServicePort

_RESOLUTIONS = {
    "NONE": Resolution.NONE,
    "STATIC": Resolution.STATIC,
    "DNS": Resolution.DNS,
    "DNS_ROUND_ROBIN": Resolution.DNS,
}


@dataclass(frozen=True, slots=True)
class ServiceEntryEndpoint:
    """One of a ServiceEntry's ``endpoints``: ``ports`` maps SE port names to numbers."""

    address: str
    ports: tuple[tuple[str, int], ...] = ()
    labels: Labels = frozenset()
    service_account: str = ""


@dataclass(frozen=True, slots=True)
class ServiceEntryObject:
    """A ServiceEntry: hosts sharing ports, addresses, resolution and endpoints."""

    meta: Meta
    hosts: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    addresses: tuple[str, ...] = ()
    location: Location = Location.MESH_EXTERNAL
    resolution: Resolution = Resolution.NONE
    endpoints: tuple[ServiceEntryEndpoint, ...] = ()
    workload_selector: Labels = frozenset()
    export_to: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class WorkloadEntryObject:
    """A WorkloadEntry: a VM or other non-Pod workload, selectable by label."""

    meta: Meta
    address: str
    labels: Labels
    service_account: str
    ports: tuple[tuple[str, int], ...] = ()


def parse_service_entry(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> ServiceEntryObject:
    """Read and validate a ServiceEntry's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    hosts = _hosts(p, spec.get("hosts"))
    location = v.choice(p, spec.get("location"), "spec.location", Location, Location.MESH_EXTERNAL)
    resolution = _resolution(p, spec.get("resolution"))
    selector_raw = v.mapping(p, spec.get("workloadSelector"), "spec.workloadSelector") or {}
    selector = v.labels(p, selector_raw.get("labels"), "spec.workloadSelector.labels")
    ports = _se_ports(p, spec.get("ports"))
    endpoints = tuple(
        _se_endpoint(p, raw, f"spec.endpoints[{i}]", resolution, ports)
        for i, raw in enumerate(v.sequence(p, spec.get("endpoints"), "spec.endpoints"))
    )
    if endpoints and selector_raw:
        p.add("spec.workloadSelector", "cannot be set together with spec.endpoints")
    if resolution is Resolution.DNS and not endpoints and not selector_raw:
        for i, host in enumerate(hosts):
            if host.startswith("*"):
                p.add(
                    f"spec.hosts[{i}]",
                    f"wildcard host {host!r} cannot be resolved: DNS "
                    "resolution without endpoints needs concrete hosts",
                )
    addresses = _addresses(p, spec.get("addresses"))
    export_to = export_to_list(p, spec.get("exportTo"), "spec.exportTo", meta.namespace)
    return ServiceEntryObject(
        meta, hosts, ports, addresses, location, resolution, endpoints, selector, export_to
    )


def export_to_list(p: v.Problems, raw: object, field: str, namespace: str) -> frozenset[str]:
    """Istio's ``exportTo``: ``.`` becomes ``namespace``; ``*`` and ``~`` stand alone."""
    out: set[str] = set()
    items = v.sequence(p, raw, field)
    for i, item in enumerate(items):
        text = v.string(p, item, f"{field}[{i}]", required=True)
        if text is None:
            continue
        if text in ("*", "~") and len(items) > 1:
            p.add(f"{field}[{i}]", f"{text!r} must be the only entry")
        elif text not in ("*", "~", ".") and not v.is_dns_label(text):
            p.add(f"{field}[{i}]", f"must be '.', '*', '~' or a namespace, got {text!r}")
        out.add(namespace if text == "." else text)
    return frozenset(out)


def parse_workload_entry(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> WorkloadEntryObject:
    """Read and validate a WorkloadEntry's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    address = v.ip(p, spec.get("address"), "spec.address", required=True) or ""
    labels = dict(v.labels(p, spec.get("labels"), "spec.labels")) | dict(meta.labels)
    sa = v.string(p, spec.get("serviceAccount"), "spec.serviceAccount") or "default"
    ports = v.named_ports(p, spec.get("ports"), "spec.ports")
    return WorkloadEntryObject(meta, address, frozenset(labels.items()), sa, ports)


def _hosts(p: v.Problems, raw: object) -> tuple[str, ...]:
    items = v.sequence(p, raw, "spec.hosts")
    if not items:
        p.add("spec.hosts", "must list at least one host")
    hosts: list[str] = []
    for i, item in enumerate(items):
        host = v.string(p, item, f"spec.hosts[{i}]", required=True)
        if host is None:
            continue
        if not v.is_hostname(host, wildcard=True):
            p.add(
                f"spec.hosts[{i}]",
                f"must be a DNS name, optionally starting with '*.', got {v.describe(host)}",
            )
        elif host in hosts:
            p.add(f"spec.hosts[{i}]", f"duplicates another host: {host!r}")
        else:
            hosts.append(host)
    return tuple(hosts)


def _resolution(p: v.Problems, raw: object) -> Resolution:
    if raw is None:
        return Resolution.NONE
    if isinstance(raw, str) and raw in _RESOLUTIONS:
        return _RESOLUTIONS[raw]
    p.add("spec.resolution", f"must be one of {', '.join(_RESOLUTIONS)}, got {v.describe(raw)}")
    return Resolution.NONE


def _addresses(p: v.Problems, raw: object) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(v.sequence(p, raw, "spec.addresses")):
        text = v.string(p, item, f"spec.addresses[{i}]", required=True)
        try:
            ipaddress.ip_network(text or "", strict=False)
        except ValueError:
            if text is not None:
                p.add(f"spec.addresses[{i}]", f"must be an IP address or CIDR, got {text!r}")
            continue
        out.append(text or "")
    return tuple(out)


def _se_ports(p: v.Problems, raw: object) -> tuple[ServicePort, ...]:
    out: list[ServicePort] = []
    for i, item in enumerate(v.sequence(p, raw, "spec.ports")):
        field = f"spec.ports[{i}]"
        m = v.mapping(p, item, field) or {}
        name = v.string(p, m.get("name"), f"{field}.name", required=True)
        number = v.port(p, m.get("number"), f"{field}.number")
        target = v.port(p, m.get("targetPort"), f"{field}.targetPort", required=False)
        proto_text = v.string(p, m.get("protocol"), f"{field}.protocol")
        protocol = parse_protocol(proto_text) if proto_text else protocol_from_port_name(name or "")
        if protocol is None:
            p.add(
                f"{field}.protocol",
                f"must be one of {', '.join(KNOWN_PROTOCOLS)}, got {v.describe(proto_text)}",
            )
        if name is not None and not v.is_dns_label(name):
            p.add(f"{field}.name", f"must be a DNS-1123 label, got {v.describe(name)}")
        elif name is not None and any(o.name == name for o in out):
            p.add(f"{field}.name", f"duplicates another port name: {name!r}")
        if number is not None and any(o.port == number for o in out):
            p.add(f"{field}.number", f"duplicates another port number: {number}")
        if name is not None and number is not None and protocol is not None:
            out.append(ServicePort(name, number, protocol, target))
    return tuple(out)


def _se_endpoint(
    p: v.Problems,
    raw: object,
    field: str,
    resolution: Resolution,
    se_ports: tuple[ServicePort, ...],
) -> ServiceEntryEndpoint:
    m = v.mapping(p, raw, field) or {}
    ports = v.named_ports(p, m.get("ports"), f"{field}.ports")
    known = {sp.name for sp in se_ports}
    for name, _ in ports:
        if name not in known:
            p.add(
                f"{field}.ports.{name}",
                f"names no port of this ServiceEntry (ports: {', '.join(sorted(known)) or 'none'})",
            )
    address = v.string(p, m.get("address"), f"{field}.address", required=True) or ""
    if address and resolution is Resolution.STATIC and not v.is_ip(address):
        p.add(f"{field}.address", f"must be an IP address for resolution STATIC, got {address!r}")
    elif address and not v.is_ip(address) and not v.is_hostname(address):
        p.add(f"{field}.address", f"must be an IP address or DNS name, got {address!r}")
    return ServiceEntryEndpoint(
        address,
        ports,
        v.labels(p, m.get("labels"), f"{field}.labels"),
        v.string(p, m.get("serviceAccount"), f"{field}.serviceAccount") or "",
    )
