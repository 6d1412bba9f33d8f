"""Read Istio's ServiceEntry and WorkloadEntry (``networking.istio.io``) documents.

Invariants, following Istio's ``ValidateServiceEntry`` / ``ValidateWorkloadEntry``:

1. A ServiceEntry has at least one host, never ``*`` alone; each is a DNS name
   whose first label may be a wildcard (``domain_problem``). A partial
   wildcard (``*x.example.com``) gets Istio's warning; a repeated host is kept once.
2. Port names are DNS-1123 labels (upper case allowed, as ``ValidatePortName``),
   names and numbers unique; an explicit ``protocol`` is one Istio knows.
3. ``location`` defaults to MESH_EXTERNAL and ``resolution`` to NONE (Istio's
   protobuf zero values). NONE takes no endpoints; STATIC endpoints are IPs;
   DNS and DNS_ROUND_ROBIN ones are IPs or DNS names, and without endpoints
   every host must be resolvable (no wildcard). DNS_ROUND_ROBIN takes at most
   one endpoint; the model has it as DNS, ``round_robin`` keeps it apart.
4. DYNAMIC_DNS is held to istio/api's words (wildcard hosts, MESH_EXTERNAL
   only, endpoints ignored) and accepted with a warning: pyistiod has no
   dynamic forward proxy, so its hosts get no endpoints.
5. CIDR ``addresses`` go only with NONE or STATIC. Several hosts need ports
   declared HTTP, HTTP2, GRPC, HTTPS or TLS unless the resolution is NONE:
   only a Host header or SNI tells them apart.
6. ``endpoints`` and ``workloadSelector`` are exclusive; a selector without
   labels gets Istio's warning.
7. ``exportTo`` entries are ``.`` (the entry's namespace), ``*``, ``~`` or a
   namespace; ``*`` and ``~`` stand alone; empty means everywhere.
8. A WorkloadEntry address is an IP: the DNS names and ``unix://`` paths Istio
   also takes are refused as not supported yet (pyistiod's EDS carries IPs).
   An entry with ``network`` and no address gets Istio's warning and no
   labels, so no selector picks it: it gives no endpoint (pyistiod has no
   multi-network gateways). Its labels are ``spec.labels`` overlaid with
   ``metadata.labels``, metadata winning, as Istio merges them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import domain_problem, export_to_list, is_partial_wildcard
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.port_protocol import (
    KNOWN_PROTOCOLS,
    parse_protocol,
    protocol_from_port_name,
)
from translators.mesh.model.services import Labels, Location, Protocol, Resolution, ServicePort

_RESOLUTIONS = {
    "NONE": Resolution.NONE,
    "STATIC": Resolution.STATIC,
    "DNS": Resolution.DNS,
    "DNS_ROUND_ROBIN": Resolution.DNS,
    "DYNAMIC_DNS": Resolution.DYNAMIC_DNS,
}
"""Istio's resolutions by name, to the model's (invariant 3)."""

_TELLS_HOSTS_APART = (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC, Protocol.HTTPS, Protocol.TLS)
"""Istio's ``IsHTTP() || IsTLS()``: protocols whose Host header or SNI names the host."""

UNIX_PREFIX = "unix://"
_Spec = Mapping[str, object]
_Ports = tuple[ServicePort, ...]


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
    round_robin: bool = False
    """Written DNS_ROUND_ROBIN (``resolution`` is DNS): Istio builds a LOGICAL_DNS cluster."""


@dataclass(frozen=True, slots=True)
class WorkloadEntryObject:
    """A WorkloadEntry: a VM or other non-Pod workload, selectable by label."""

    meta: Meta
    address: str
    labels: Labels
    service_account: str
    ports: tuple[tuple[str, int], ...] = ()
    network: str = ""


def parse_service_entry(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> ServiceEntryObject:
    """Read and validate a ServiceEntry's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    name = _resolution_name(p, spec.get("resolution"))
    location = v.choice(p, spec.get("location"), "spec.location", Location, Location.MESH_EXTERNAL)
    hosts = _hosts(p, spec.get("hosts"), warnings)
    ports = _se_ports(p, spec.get("ports"))
    selector = _selector(p, spec, name, warnings)
    endpoints = _endpoints(p, spec, name, ports, warnings)
    addresses = _addresses(p, spec.get("addresses"), name)
    _check_hosts(p, spec, name, hosts)
    if name == "DYNAMIC_DNS":
        _check_dynamic_dns(p, hosts, location, warnings)
        endpoints, selector = (), frozenset()
    export_to = export_to_list(p, spec.get("exportTo"), "spec.exportTo", meta.namespace)
    found = (tuple(hosts), ports, addresses, location, _RESOLUTIONS[name], endpoints, selector)
    return ServiceEntryObject(meta, *found, export_to, round_robin=name == "DNS_ROUND_ROBIN")


def parse_workload_entry(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> WorkloadEntryObject:
    """Read and validate a WorkloadEntry's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    network = v.string(p, spec.get("network"), "spec.network") or ""
    address = _workload_address(p, spec.get("address"), network, warnings)
    labels = dict(v.labels(p, spec.get("labels"), "spec.labels")) | dict(meta.labels)
    sa = v.string(p, spec.get("serviceAccount"), "spec.serviceAccount") or "default"
    ports = v.named_ports(p, spec.get("ports"), "spec.ports")
    for name, _ in ports:
        if not v.is_istio_label(name):
            p.add(f"spec.ports.{name}", "port name must be a DNS-1123 label (letters, digits, '-')")
    selectable = frozenset(labels.items()) if address else frozenset()  # invariant 8
    return WorkloadEntryObject(meta, address, selectable, sa, ports, network)


def _workload_address(p: v.Problems, raw: object, network: str, warnings: list[str]) -> str:
    text = v.string(p, raw, "spec.address")
    if text is None:
        if network:
            warnings.append(
                f"spec.address is unset with network {network!r}: pyistiod has no multi-network "
                "gateways, so this entry gives no endpoint"
            )
        else:
            p.add("spec.address", "is required (only an entry with a network may omit it)")
        return ""
    if v.is_ip(text):
        return text
    if text.startswith(UNIX_PREFIX) or domain_problem(text) is None:
        kind = "unix:// paths" if text.startswith(UNIX_PREFIX) else "DNS names"
        gap = f"{kind} are valid in Istio but not supported by pyistiod yet (its EDS takes IPs)"
    else:
        gap = "Istio also takes a DNS name or a unix:// path"
    p.add("spec.address", f"must be an IPv4 or IPv6 address, got {text!r}: {gap}")
    return ""


def _resolution_name(p: v.Problems, raw: object) -> str:
    if raw is None:
        return "NONE"
    if isinstance(raw, str) and raw in _RESOLUTIONS:
        return raw
    p.add("spec.resolution", f"must be one of {', '.join(_RESOLUTIONS)}, got {v.describe(raw)}")
    return "NONE"


def _hosts(p: v.Problems, raw: object, warnings: list[str]) -> dict[str, int]:
    """Valid hosts, each with the index it was first written at (invariant 1)."""
    items = v.sequence(p, raw, "spec.hosts")
    if not items:
        p.add("spec.hosts", "must list at least one host")
    hosts: dict[str, int] = {}
    for i, item in enumerate(items):
        field = f"spec.hosts[{i}]"
        host = v.string(p, item, field, required=True)
        if host is None:
            continue
        problem = domain_problem(host, wildcard=True) if host != "*" else "'*' matches all"
        if problem is not None:
            p.add(field, f"must be a DNS name (or '*.name'), got {host!r}: {problem}")
        elif host not in hosts:
            hosts[host] = i
            if is_partial_wildcard(host):
                warnings.append(
                    f"{field} partial wildcard {host!r} not allowed: only '*.' makes a wildcard "
                    "(accepted with this warning, as Istio does)"
                )
    return hosts


def _check_hosts(p: v.Problems, spec: _Spec, name: str, hosts: dict[str, int]) -> None:
    """Host rules that depend on the resolution (invariants 3 and 5)."""
    if name in ("DNS", "DNS_ROUND_ROBIN") and not spec.get("endpoints"):
        for host, i in hosts.items():
            if domain_problem(host) is not None:
                p.add(
                    f"spec.hosts[{i}]",
                    f"wildcard host {host!r} cannot be resolved: {name} resolution without "
                    "endpoints needs concrete hosts",
                )
    port = _port_not_telling_hosts_apart(spec.get("ports"))
    if name != "NONE" and len(hosts) > 1 and port:
        p.add(
            "spec.hosts",
            "several hosts need every port declared HTTP, HTTP2, GRPC, HTTPS or TLS (a Host "
            f"header or SNI tells them apart) unless resolution is NONE; port {port} is not",
        )


def _port_not_telling_hosts_apart(raw: object) -> str:
    """The first port whose protocol *as written* is neither HTTP nor TLS (unset counts)."""
    for item in raw if isinstance(raw, list) else ():
        m = item if isinstance(item, Mapping) else {}
        text = m.get("protocol")
        protocol = parse_protocol(text) if isinstance(text, str) else None
        if protocol not in _TELLS_HOSTS_APART:
            shown = f"protocol {text}" if isinstance(text, str) and text else "no protocol"
            return f"{m.get('name')!r} ({m.get('number')}, {shown})"
    return ""


def _check_dynamic_dns(
    p: v.Problems, hosts: dict[str, int], location: Location, warnings: list[str]
) -> None:
    """istio/api's rules for DYNAMIC_DNS, and the warning that it is not served (invariant 4)."""
    for host, i in hosts.items():
        if not host.startswith("*"):
            p.add(f"spec.hosts[{i}]", f"DYNAMIC_DNS needs wildcard hosts, got {host!r}")
    if location is not Location.MESH_EXTERNAL:
        p.add("spec.location", "resolution DYNAMIC_DNS is only supported for MESH_EXTERNAL")
    warnings.append(
        "spec.resolution DYNAMIC_DNS is not supported yet: pyistiod has no dynamic forward "
        "proxy, so these hosts get no endpoints (spec.endpoints and workloadSelector are ignored)"
    )


def _selector(p: v.Problems, spec: _Spec, name: str, warnings: list[str]) -> Labels:
    raw = spec.get("workloadSelector")
    if raw is None:
        return frozenset()
    m = v.mapping(p, raw, "spec.workloadSelector") or {}
    selector = v.labels(p, m.get("labels"), "spec.workloadSelector.labels")
    if spec.get("endpoints"):
        p.add("spec.workloadSelector", "cannot be set together with spec.endpoints")
    if not m.get("labels"):
        warnings.append(
            "spec.workloadSelector has no labels: Istio warns it will be applied to all "
            "services in the namespace; pyistiod selects no workload with it"
        )
    if name == "NONE":
        warnings.append("spec.workloadSelector should not be set when resolution is NONE")
    return selector


def _endpoints(
    p: v.Problems, spec: _Spec, name: str, ports: _Ports, warnings: list[str]
) -> tuple[ServiceEntryEndpoint, ...]:
    items = v.sequence(p, spec.get("endpoints"), "spec.endpoints")
    if items and name == "NONE":
        p.add(
            "spec.endpoints",
            "must be empty for resolution NONE, where traffic goes to the address the client "
            "dialled (use STATIC or DNS to list endpoints)",
        )
        return ()
    if len(items) > 1 and name == "DNS_ROUND_ROBIN":
        p.add("spec.endpoints", f"DNS_ROUND_ROBIN takes one endpoint at most, got {len(items)}")
    found = (
        _se_endpoint(p, raw, f"spec.endpoints[{i}]", name == "STATIC", ports, warnings)
        for i, raw in enumerate(items)
    )
    return tuple(ep for ep in found if ep is not None)


def _addresses(p: v.Problems, raw: object, name: str) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(v.sequence(p, raw, "spec.addresses")):
        text = v.string(p, item, f"spec.addresses[{i}]", required=True)
        try:
            ipaddress.ip_network(text or "", strict=False)
        except ValueError:
            if text is not None:
                p.add(f"spec.addresses[{i}]", f"must be an IP address or CIDR, got {text!r}")
            continue
        if "/" in (text or "") and name not in ("NONE", "STATIC"):
            p.add(f"spec.addresses[{i}]", f"a CIDR needs resolution NONE or STATIC, not {name}")
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
        if name is not None and not v.is_istio_label(name):
            p.add(f"{field}.name", f"must be a DNS-1123 label, got {v.describe(name)}")
        elif name is not None and any(o.name == name for o in out):
            p.add(f"{field}.name", f"duplicates another port name: {name!r}")
        if number is not None and any(o.port == number for o in out):
            p.add(f"{field}.number", f"duplicates another port number: {number}")
        if name is not None and number is not None and protocol is not None:
            out.append(ServicePort(name, number, protocol, target))
    return tuple(out)


def _se_endpoint(
    p: v.Problems, raw: object, field: str, static: bool, se_ports: _Ports, warnings: list[str]
) -> ServiceEntryEndpoint | None:
    m = v.mapping(p, raw, field) or {}
    ports = v.named_ports(p, m.get("ports"), f"{field}.ports")
    known = {sp.name for sp in se_ports}
    for name, _ in ports:
        if name not in known:
            p.add(
                f"{field}.ports.{name}",
                f"names no port of this ServiceEntry (ports: {', '.join(sorted(known)) or 'none'})",
            )
    labels = v.labels(p, m.get("labels"), f"{field}.labels")
    account = v.string(p, m.get("serviceAccount"), f"{field}.serviceAccount") or ""
    address = _endpoint_address(p, m, field, static, warnings)
    return ServiceEntryEndpoint(address, ports, labels, account) if address else None


def _endpoint_address(
    p: v.Problems, m: Mapping[str, object], field: str, static: bool, warnings: list[str]
) -> str:
    """A STATIC endpoint's IP, or a DNS one's IP or name; "" when it gives no endpoint."""
    address = v.string(p, m.get("address"), f"{field}.address") or ""
    network = v.string(p, m.get("network"), f"{field}.network") or ""
    if not address and static and network:
        warnings.append(
            f"{field}.address is unset with network {network!r}: pyistiod has no multi-network "
            "gateways, so this endpoint is dropped"
        )
    elif not address:
        p.add(f"{field}.address", "is required and must be a non-empty string")
    elif v.is_ip(address):
        return address
    elif static and address.startswith(UNIX_PREFIX):
        p.add(f"{field}.address", f"unix:// (valid in Istio) is not supported yet: {address!r}")
    elif static:
        p.add(f"{field}.address", f"must be an IP address for resolution STATIC, got {address!r}")
    elif (problem := domain_problem(address)) is not None:
        p.add(f"{field}.address", f"must be an IP address or DNS name, got {address!r}: {problem}")
    else:
        return address
    return ""
