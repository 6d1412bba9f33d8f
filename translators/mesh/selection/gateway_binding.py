"""Which Gateways a router runs, and which VirtualServices bind to a Gateway server.

The VirtualService model belongs to the routing translators
(``model.routing.VirtualService``); this module reads it through the small
structural views below, so gateways need only the fields named here. Invariants:

1. A Gateway applies to a router whose labels include its ``selector``
   (an empty selector selects every router); sidecars run no Gateway.
2. A VirtualService binds to a server when its ``gateways`` names the
   server's Gateway (``ns/name``, already resolved by its parser), its
   namespace is allowed by the server host (``*`` or equal), and one of its
   hosts intersects that server host. The bound host is the more specific
   of the two (``*.example.com`` and ``shop.example.com`` give
   ``shop.example.com``), as Istio's gateway host matching.
3. Results are sorted by (namespace, name) of the VirtualService, then host,
   so equal models give equal config.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from translators.mesh.model.gateways import Gateway, GatewayServer
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy, ProxyType


class DestinationView(Protocol):
    """``route[].destination``: a service FQDN and an optional port."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int | None: ...
    @property
    def subset(self) -> str: ...


class RouteDestinationView(Protocol):
    """``route[]``: a destination and its weight."""

    @property
    def destination(self) -> DestinationView: ...
    @property
    def weight(self) -> int | None: ...


class HttpRouteView(Protocol):
    """``http[]``, as far as the default route translator reads it."""

    @property
    def route(self) -> Sequence[RouteDestinationView]: ...


class L4MatchView(Protocol):
    """``tls[].match[]`` / ``tcp[].match[]``."""

    @property
    def port(self) -> int | None: ...
    @property
    def sni_hosts(self) -> Sequence[str]: ...


class L4RouteView(Protocol):
    """``tls[]`` / ``tcp[]``: matches (any) and destinations."""

    @property
    def matches(self) -> Sequence[L4MatchView]: ...
    @property
    def route(self) -> Sequence[RouteDestinationView]: ...


class VirtualServiceView(Protocol):
    """What gateways read of a VirtualService."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def hosts(self) -> Sequence[str]: ...
    @property
    def gateways(self) -> Sequence[str]: ...
    @property
    def http(self) -> Sequence[HttpRouteView]: ...
    @property
    def tls(self) -> Sequence[L4RouteView]: ...
    @property
    def tcp(self) -> Sequence[L4RouteView]: ...


@dataclass(frozen=True, slots=True)
class Binding:
    """A VirtualService bound to a gateway server for one host."""

    virtual_service: VirtualServiceView
    host: str


def virtual_services_of(model: MeshModel) -> Sequence[VirtualServiceView]:
    """The model's VirtualServices (``MeshModel.virtual_services``; none until it exists)."""
    return cast(Sequence[VirtualServiceView], getattr(model, "virtual_services", ()))


def gateways_for(model: MeshModel, proxy: Proxy) -> tuple[Gateway, ...]:
    """The Gateways a router runs (invariant 1), by (namespace, name)."""
    if proxy.type is not ProxyType.ROUTER:
        return ()
    return tuple(g for g in model.gateways if g.selector <= proxy.labels)


def intersect(a: str, b: str) -> str | None:
    """The more specific of two hosts if they intersect, else None (invariant 2)."""
    if a == b or b == "*":
        return a
    if a == "*":
        return b
    if a.startswith("*.") and b.endswith(a[1:]):
        return b
    if b.startswith("*.") and a.endswith(b[1:]):
        return a
    return None


def bindings(
    virtual_services: Sequence[VirtualServiceView], gateway: Gateway, server: GatewayServer
) -> Iterator[Binding]:
    """The VirtualServices bound to ``server`` of ``gateway`` and their hosts (invariant 2)."""
    ordered = sorted(virtual_services, key=lambda vs: (vs.namespace, vs.name))
    for vs in ordered:
        if gateway.ref not in vs.gateways:
            continue
        hosts: set[str] = set()
        for allowed in server.hosts:
            if allowed.namespace not in ("*", vs.namespace):
                continue
            for vs_host in vs.hosts:
                found = intersect(vs_host, allowed.host)
                if found is not None:
                    hosts.add(found)
        for host in sorted(hosts):
            yield Binding(vs, host)
