"""Read a VirtualService (``networking.istio.io``) into ``model.routing.VirtualService``.

Invariants, following Istio's ``ValidateVirtualService`` (and ``istioctl
analyze`` where stricter, as stated):

1. At least one host; hosts are DNS names, ``*.`` wildcards or ``*``.
   ``gateways`` names resolve to ``NS/name`` (``mesh`` stays); absent, it
   is ``mesh``. ``exportTo`` entries are ``.``, ``*``, ``~`` or namespaces.
2. An HTTP route sets ``route``, ``redirect`` or ``directResponse`` (only
   one), and ``rewrite`` not with ``redirect``. A route with several
   destinations has weights summing to 100; a single one may omit it.
3. Regexes are RE2 (``networking_fields.regex``), durations Istio durations,
   redirect codes the ones Envoy can send (301, 302, 303, 307, 308; Istio
   accepts any 3xx but then drops the route), abort statuses 200-599.
4. A TLS route needs matches with ``sniHosts``, each covered by a host of
   the VirtualService; TCP and TLS routes need at least one destination.
5. Hosts here are as written (lower-cased): ``resolve_hosts`` turns short
   names into FQDNs in the VirtualService's namespace when the model is built.
6. Known fields pyistiod does not translate (``delegate``, ``mirrors``,
   ``match[].sourceNamespace`` aside) are ignored with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from translators.mesh.documents import fields as v
from translators.mesh.documents import networking_fields as f
from translators.mesh.documents.http_routes import http_route
from translators.mesh.documents.meta import Meta
from translators.mesh.model.routing import (
    MESH_GATEWAY,
    Destination,
    L4Match,
    L4Route,
    RouteDestination,
    VirtualService,
)

_IGNORED_SPEC_FIELDS = ("delegate",)
_RETRY_NOTE = "Istio's default retries apply"


def read_virtual_service(
    p: v.Problems, spec: Mapping[str, object], namespace: str, name: str, warnings: list[str]
) -> VirtualService:
    """Read and validate a VirtualService ``spec`` (errors go to ``p``)."""
    hosts = _hosts(p, spec.get("hosts"))
    gateways = tuple(
        g if g == MESH_GATEWAY or "/" in g else f"{namespace}/{g}"
        for g in f.strings(p, spec.get("gateways"), "spec.gateways")
    )
    warnings.extend(
        f"spec.{key} is not supported yet and is ignored"
        for key in _IGNORED_SPEC_FIELDS
        if key in spec
    )
    http = tuple(
        http_route(p, raw, f"spec.http[{i}]", warnings)
        for i, raw in enumerate(v.sequence(p, spec.get("http"), "spec.http"))
    )
    tcp = tuple(
        _l4_route(p, raw, f"spec.tcp[{i}]", hosts, tls=False)
        for i, raw in enumerate(v.sequence(p, spec.get("tcp"), "spec.tcp"))
    )
    tls = tuple(
        _l4_route(p, raw, f"spec.tls[{i}]", hosts, tls=True)
        for i, raw in enumerate(v.sequence(p, spec.get("tls"), "spec.tls"))
    )
    export_to = _export_to(p, spec.get("exportTo"), namespace)
    return VirtualService(
        namespace, name, hosts, gateways or (MESH_GATEWAY,), export_to, http, tcp, tls
    )


def _hosts(p: v.Problems, raw: object) -> tuple[str, ...]:
    hosts = f.strings(p, raw, "spec.hosts")
    if not hosts:
        p.add("spec.hosts", "must list at least one host")
    for i, host in enumerate(hosts):
        if host != "*" and not v.is_hostname(host, wildcard=True):
            p.add(f"spec.hosts[{i}]", f"must be a DNS name, '*.' wildcard or '*', got {host!r}")
    return tuple(h.lower() for h in hosts)


def _export_to(p: v.Problems, raw: object, namespace: str) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(f.strings(p, raw, "spec.exportTo")):
        if item == ".":
            item = namespace
        elif item not in ("*", "~") and not v.is_dns_label(item):
            p.add(f"spec.exportTo[{i}]", f"must be '.', '*', '~' or a namespace, got {item!r}")
            continue
        out.append(item)
    return tuple(sorted(set(out)))


def _l4_route(
    p: v.Problems, raw: object, field: str, hosts: tuple[str, ...], *, tls: bool
) -> L4Route:
    m = v.mapping(p, raw, field) or {}
    matches = tuple(
        _l4_match(p, item, f"{field}.match[{j}]", hosts, tls=tls)
        for j, item in enumerate(v.sequence(p, m.get("match"), f"{field}.match"))
    )
    if tls and not matches:
        p.add(f"{field}.match", "a TLS route needs at least one match with sniHosts")
    return L4Route(matches, f.destinations(p, m.get("route"), field))


def _l4_match(
    p: v.Problems, raw: object, field: str, hosts: tuple[str, ...], *, tls: bool
) -> L4Match:
    m = v.mapping(p, raw, field) or {}
    sni = tuple(s.lower() for s in f.strings(p, m.get("sniHosts"), f"{field}.sniHosts"))
    if tls and not sni:
        p.add(f"{field}.sniHosts", "must list at least one SNI host for a TLS route")
    for k, name in enumerate(sni):
        if not any(_host_covers(h, name) or _host_covers(name, h) for h in hosts):
            p.add(
                f"{field}.sniHosts[{k}]",
                f"{name!r} is not covered by any host of the VirtualService ({', '.join(hosts)})",
            )
    return L4Match(
        port=v.port(p, m.get("port"), f"{field}.port", required=False),
        source_labels=v.labels(p, m.get("sourceLabels"), f"{field}.sourceLabels"),
        source_namespace=v.string(p, m.get("sourceNamespace"), f"{field}.sourceNamespace") or "",
        gateways=f.strings(p, m.get("gateways"), f"{field}.gateways"),
        sni_hosts=sni,
    )


def _host_covers(pattern: str, name: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return pattern == name


def resolve_hosts(vs: VirtualService, domain_suffix: str) -> VirtualService:
    """``vs`` with short hosts (no dot) as FQDNs in its namespace (invariant 5)."""

    def fqdn(host: str) -> str:
        if "." in host or host == "*" or not host:
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
