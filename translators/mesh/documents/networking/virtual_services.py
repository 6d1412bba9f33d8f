"""Read a VirtualService (``networking.istio.io``) into ``model.routing.VirtualService``.

Invariants, following Istio's ``ValidateVirtualService`` (``pkg/config/validation``): a
VirtualService is refused exactly when Istio refuses it, except for the deliberate
differences listed below. ``http_routes`` states the rules of one HTTP route,
``networking_fields`` those of hosts, gateways, matches, headers and destinations.

1. Without ``hosts`` a VirtualService is a delegate: it may not set ``gateways``, ``tcp`` or
   ``tls``, nor delegate further. pyistiod does not apply delegation yet, so a delegate is
   kept (validated, analysed) but routes nothing, with a warning: routing selects
   VirtualServices by host.
2. It applies to sidecars (``mesh``) when ``gateways`` is empty or lists ``mesh``; then ``*``
   is no host. Hosts are DNS names (any case, kept lower-cased), ``*.`` wildcards or IPs, and
   no two of one VirtualService overlap (``a.example.com`` twice, or with ``*.example.com``).
3. It has at least one of ``http``, ``tcp``, ``tls``. A TLS route has matches, each with
   ``sniHosts`` inside a host of the VirtualService (Istio's ``host.Name.SubsetOf``); an IP
   as SNI host is allowed with a warning. TCP and TLS routes have destinations.
4. ``gateways`` (also of matches) resolve to ``namespace/name`` or ``mesh``
   (``networking_fields.gateway_refs``). ``exportTo`` entries are ``.``, ``*`` or namespaces,
   without duplicates (``.`` is the VirtualService's namespace) and with ``*`` alone.
5. Hosts here are as written (lower-cased): ``resolve_hosts`` turns short names into FQDNs
   in the VirtualService's namespace when the model is built.
6. Fields pyistiod does not translate yet (``destinationSubnets``, ``sourceSubnet``, and
   those ``http_routes`` lists) are validated as Istio does, then ignored with a warning.

Deliberate differences from Istio: a host with a partial wildcard (``*foo.example.com``) is
refused as not supported yet, since routing matches ``*.`` wildcards only; every ``gateways``
entry is checked, where Istio stops at the first one without ``/`` (a loop that returns).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import domain_problem
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.networking import shared_fields as f
from translators.mesh.documents.networking.http_routes import http_route
from translators.mesh.model.addresses import is_ip
from translators.mesh.model.routing import (
    MESH_GATEWAY,
    Destination,
    L4Match,
    L4Route,
    RouteDestination,
    VirtualService,
)

DELEGATE_WARNING = (
    "spec.hosts is empty, so this is a delegate VirtualService; delegate VirtualServices are "
    "not applied yet (pyistiod does not implement delegation), so it routes nothing"
)
"""The warning a VirtualService without hosts carries (invariant 1)."""


def read_virtual_service(
    p: v.Problems, spec: Mapping[str, object], namespace: str, name: str, warnings: list[str]
) -> VirtualService:
    """Read and validate a VirtualService ``spec`` (errors go to ``p``)."""
    written = f.strings(p, spec.get("hosts"), "spec.hosts")
    delegate = spec.get("hosts") in (None, [])
    if delegate:
        _check_delegate(p, spec, warnings)
    gateways = f.gateway_refs(p, spec.get("gateways"), "spec.gateways", namespace, warnings)
    mesh = not spec.get("gateways") or MESH_GATEWAY in gateways
    _check_hosts(p, written, mesh=mesh)
    if not any(spec.get(key) for key in ("http", "tcp", "tls")):
        p.add("spec", "http, tcp or tls must be provided in virtual service")
    http = tuple(
        http_route(
            p,
            raw,
            f"spec.http[{i}]",
            warnings,
            namespace=namespace,
            delegate=delegate,
            gateway_only=not mesh,
        )
        for i, raw in enumerate(v.sequence(p, spec.get("http"), "spec.http"))
    )
    l4 = _L4Context(written, namespace, warnings)
    tcp = tuple(
        _l4_route(p, raw, f"spec.tcp[{i}]", l4, tls=False)
        for i, raw in enumerate(v.sequence(p, spec.get("tcp"), "spec.tcp"))
    )
    tls = tuple(
        _l4_route(p, raw, f"spec.tls[{i}]", l4, tls=True)
        for i, raw in enumerate(v.sequence(p, spec.get("tls"), "spec.tls"))
    )
    export_to = _export_to(p, spec.get("exportTo"), namespace)
    hosts = tuple(dict.fromkeys(h.lower() for h in written))
    return VirtualService(
        namespace, name, hosts, gateways or (MESH_GATEWAY,), export_to, http, tcp, tls
    )


def _check_delegate(p: v.Problems, spec: Mapping[str, object], warnings: list[str]) -> None:
    """Invariant 1: what a delegate (no hosts) may not set."""
    for key, what in (("gateways", "gateways"), ("tls", "tls route"), ("tcp", "tcp route")):
        if spec.get(key):
            p.add(f"spec.{key}", f"delegate virtual service must have no {what} specified")
    warnings.append(DELEGATE_WARNING)


def _check_hosts(p: v.Problems, hosts: Sequence[str], *, mesh: bool) -> None:
    """Invariant 2: valid hosts, ``*`` only off the mesh, none overlapping another."""
    valid = True
    for i, host in enumerate(hosts):
        problem = _host_problem(host, mesh=mesh)
        if problem is not None:
            p.add(f"spec.hosts[{i}]", problem)
            valid = False
    if not valid:
        return  # as Istio: overlaps are looked for among valid hosts only
    for i, host in enumerate(hosts):
        for other in hosts[i + 1 :]:
            if _overlap(host, other):
                p.add(
                    f"spec.hosts[{i}]",
                    f"duplicate hosts in virtual service: {host} & {other} (each request "
                    "host must select one entry)",
                )


def _host_problem(host: str, *, mesh: bool) -> str | None:
    if host == "*":
        if mesh:
            return (
                "wildcard host * is not allowed for virtual services bound to the mesh "
                "gateway: list the services' hosts, or bind it to gateways only"
            )
        return None
    if is_ip(host):
        return None
    problem = domain_problem(host, wildcard=True)
    if problem is None and host.startswith("*") and not host.startswith("*."):
        return f"partial wildcard host {host!r} is not supported yet: use '*.' and a domain"
    return problem


def _overlap(a: str, b: str) -> bool:
    """Istio's ``host.Name.Matches``: equal, or one wildcard covers the other."""
    if a.startswith("*") and b.startswith("*"):
        short, long = sorted((a, b), key=len)
        return long[1:].endswith(short[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def _subset_of(name: str, host: str) -> bool:
    """Istio's ``host.Name.SubsetOf``: every name ``name`` covers is covered by ``host``."""
    if name.startswith("*"):
        return host.startswith("*") and len(name) >= len(host) and name[1:].endswith(host[1:])
    return name.endswith(host[1:]) if host.startswith("*") else name == host


def _export_to(p: v.Problems, raw: object, namespace: str) -> tuple[str, ...]:
    """Invariant 4: Istio's ``validateExportTo`` for configuration (not a ServiceEntry)."""
    written = f.strings(p, raw, "spec.exportTo")
    out: list[str] = []
    for i, item in enumerate(written):
        key = namespace if item == "." else item
        field = f"spec.exportTo[{i}]"
        if key in out:
            again = f". and current namespace {namespace}" if key != item else f"entry {item}"
            p.add(field, f"duplicate entries in exportTo: {again}")
        elif item == "~":
            p.add(field, "exportTo ~ (none) is not allowed for Istio configuration objects")
        elif item != "*" and not v.is_istio_label(key):
            p.add(field, f"must be '.', '*' or a namespace (a DNS-1123 label), got {item!r}")
        else:
            out.append(key)
    if "*" in out and len(written) > 1:
        p.add("spec.exportTo", "cannot have both public (*) and non-public exportTo values")
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class _L4Context:
    """What TCP and TLS routes read of their VirtualService."""

    hosts: tuple[str, ...]
    namespace: str
    warnings: list[str]


def _l4_route(p: v.Problems, raw: object, field: str, vs: _L4Context, *, tls: bool) -> L4Route:
    m = v.mapping(p, raw, field) or {}
    matches = tuple(
        _l4_match(p, item, f"{field}.match[{j}]", vs, tls=tls)
        for j, item in enumerate(v.sequence(p, m.get("match"), f"{field}.match"))
    )
    if tls and not matches:
        p.add(f"{field}.match", "a TLS route needs at least one match with sniHosts")
    return L4Route(matches, f.destinations(p, m.get("route"), field))


def _l4_match(p: v.Problems, raw: object, field: str, vs: _L4Context, *, tls: bool) -> L4Match:
    m = v.mapping(p, raw, field) or {}
    written = f.strings(p, m.get("sniHosts"), f"{field}.sniHosts")
    if tls and not written:
        p.add(f"{field}.sniHosts", "must list at least one SNI host for a TLS route")
    for k, name in enumerate(written):
        _check_sni(p, name, f"{field}.sniHosts[{k}]", vs)
    _ignored_subnets(p, m, field, vs.warnings)
    return L4Match(
        port=f.match_port(p, m.get("port"), f"{field}.port"),
        source_labels=v.labels(p, m.get("sourceLabels"), f"{field}.sourceLabels"),
        source_namespace=v.string(p, m.get("sourceNamespace"), f"{field}.sourceNamespace") or "",
        gateways=f.gateway_refs(
            p, m.get("gateways"), f"{field}.gateways", vs.namespace, vs.warnings
        ),
        sni_hosts=tuple(s.lower() for s in written),
    )


def _check_sni(p: v.Problems, name: str, field: str, vs: _L4Context) -> None:
    """Invariant 3 (Istio's ``validateSniHost``)."""
    problem = domain_problem(name, wildcard=True)
    if problem is not None and is_ip(name):
        vs.warnings.append(
            f"{field}: using an IP address ({name!r}) goes against SNI spec and most clients "
            "do not support this"
        )
    elif problem is not None:
        p.add(field, problem)
    elif name.startswith("*") and not name.startswith("*."):
        p.add(field, f"partial wildcard SNI host {name!r} is not supported yet")
    elif not any(_subset_of(name, host) for host in vs.hosts):
        p.add(
            field,
            f"SNI host {name!r} is not a compatible subset of any of the virtual service hosts: "
            f"[{', '.join(vs.hosts)}]",
        )


def _ignored_subnets(
    p: v.Problems, m: Mapping[str, object], field: str, warnings: list[str]
) -> None:
    """``destinationSubnets`` are IPs or CIDRs (Istio's ``ValidateIPSubnet``); both they and
    ``sourceSubnet`` (which Istio does not check) are ignored for now (invariant 6)."""
    subnets = f.strings(p, m.get("destinationSubnets"), f"{field}.destinationSubnets")
    for i, subnet in enumerate(subnets):
        if not _is_subnet(subnet):
            p.add(
                f"{field}.destinationSubnets[{i}]",
                f"{subnet!r} is not a valid IP address or CIDR block",
            )
    warnings.extend(
        f"{field}.{key} is not supported yet and is ignored"
        for key in ("destinationSubnets", "sourceSubnet")
        if m.get(key) is not None
    )


def _is_subnet(text: str) -> bool:
    if text.count("/") != 1:
        return is_ip(text)
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def resolve_hosts(vs: VirtualService, domain_suffix: str) -> VirtualService:
    """``vs`` with short hosts (no dot) as FQDNs in its namespace (invariant 5)."""

    def fqdn(host: str) -> str:
        if "." in host or host == "*" or not host or is_ip(host):
            return host
        return f"{host}.{vs.namespace}.svc.{domain_suffix}"

    def dest(d: Destination) -> Destination:
        return replace(d, host=fqdn(d.host))

    def routes(rs: tuple[RouteDestination, ...]) -> tuple[RouteDestination, ...]:
        return tuple(replace(r, destination=dest(r.destination)) for r in rs)

    http = tuple(
        replace(
            h,
            route=routes(h.route),
            mirror=replace(h.mirror, destination=dest(h.mirror.destination)) if h.mirror else None,
        )
        for h in vs.http
    )
    return replace(
        vs,
        hosts=tuple(fqdn(h) for h in vs.hosts),
        http=http,
        tcp=tuple(replace(r, route=routes(r.route)) for r in vs.tcp),
        tls=tuple(replace(r, route=routes(r.route)) for r in vs.tls),
    )


@dataclass(frozen=True, slots=True)
class VirtualServiceObject:
    """A parsed VirtualService; hosts as written (``resolve_hosts`` makes them FQDNs)."""

    meta: Meta
    virtual_service: VirtualService


def parse_virtual_service(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> VirtualServiceObject:
    """Read and validate a VirtualService document (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    vs = read_virtual_service(p, spec, meta.namespace, meta.name, warnings)
    return VirtualServiceObject(meta, vs)
