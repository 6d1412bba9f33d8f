"""Sidecar scoping: the part of the mesh one proxy may reach, as Istio's ``SidecarScope``.

Invariants:

1. Which Sidecar applies to a sidecar proxy (``sidecar_for``), Istio's
   precedence: a Sidecar in the proxy's namespace whose workload selector
   matches its labels; else the proxy namespace's Sidecar without selector;
   else the root namespace's (``istio-system``) Sidecar without selector;
   else none (everything is visible). Istio leaves two candidates at one
   level undefined; here the first by name wins. Gateways (routers) get no
   Sidecar, as in Istio.
2. A service is visible when it is exported to the proxy's namespace
   (``Service.visible_from``) and, with a Sidecar, when an egress host
   ``ns/dnsName`` covers it: the namespace is ``*``, the service's own, or
   ``.`` = the namespace the Sidecar is applied in (the *proxy's*, also for
   the root-namespace default, as Istio documents); ``~`` covers nothing.
   The name is ``*``, the hostname, or a ``*.suffix`` wildcard covering it;
   a wildcard ServiceEntry host (``*.example.com``) is visible to an egress
   host it covers (``*/api.example.com``), as Istio selects it.
3. The result depends on (services, Sidecar, proxy namespace) only, never
   on the proxy itself: ``scope_key`` names exactly those inputs, so callers
   memoize once per (Sidecar, namespace) and proxies that share a Sidecar
   share the scoped services. A scope that keeps every service has the key
   ``None``: such proxies share parts with unscoped ones.
4. Egress ports, ``bind`` and ``captureMode`` do not narrow the services
   (Istio still sends clusters for every port of a selected service); they
   are left to the listener translators.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import replace
from types import MappingProxyType

from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import ROOT_NAMESPACE
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.services import Service
from translators.mesh.model.sidecars import (
    ANY_NAMESPACE,
    CURRENT_NAMESPACE,
    NO_NAMESPACE,
    EgressHost,
    Sidecar,
)


def sidecar_for(model: MeshModel, proxy: Proxy) -> Sidecar | None:
    """The Sidecar resource that applies to ``proxy`` (invariant 1)."""
    if proxy.type is not ProxyType.SIDECAR:
        return None
    own = [s for s in model.sidecars if s.namespace == proxy.namespace]
    for sidecar in own:
        if sidecar.selector and sidecar.selector <= proxy.labels:
            return sidecar
    for sidecar in own:
        if not sidecar.selector:
            return sidecar
    for sidecar in model.sidecars:
        if sidecar.namespace == ROOT_NAMESPACE and not sidecar.selector:
            return sidecar
    return None


def host_covers(pattern: str, hostname: str) -> bool:
    """Whether an egress/gateway host pattern (``*``, ``*.suffix``, FQDN) covers ``hostname``.

    A wildcard hostname (a ServiceEntry ``*.example.com``) is covered by a
    pattern it covers in turn (invariant 2).
    """
    if pattern == "*" or pattern == hostname:
        return True
    if pattern.startswith("*.") and hostname.endswith(pattern[1:]):
        return True
    return hostname.startswith("*.") and pattern.endswith(hostname[1:])


def egress_allows(hosts: Iterable[EgressHost], service: Service, namespace: str) -> bool:
    """Whether some egress host covers ``service`` for a proxy in ``namespace``."""
    for entry in hosts:
        if entry.namespace == NO_NAMESPACE:
            continue
        ns = namespace if entry.namespace == CURRENT_NAMESPACE else entry.namespace
        if ns in (ANY_NAMESPACE, service.namespace) and host_covers(entry.host, service.hostname):
            return True
    return False


def visible_services(
    services: Iterable[Service], sidecar: Sidecar | None, namespace: str
) -> tuple[Service, ...]:
    """The services a proxy in ``namespace`` with ``sidecar`` may reach (invariant 2)."""
    hosts = [h for listener in sidecar.egress for h in listener.hosts] if sidecar else None
    return tuple(
        s
        for s in services
        if s.visible_from(namespace) and (hosts is None or egress_allows(hosts, s, namespace))
    )


def scope_key(model: MeshModel, proxy: Proxy) -> Hashable:
    """What the scoped services of ``proxy`` depend on besides the services (invariant 3).

    ``None`` when nothing can be filtered (no Sidecar applies and no service
    restricts ``exportTo``), else ``(sidecar, namespace)``.
    """
    sidecar = sidecar_for(model, proxy)
    if sidecar is None and not any(s.export_to for s in model.services):
        return None
    return (sidecar, proxy.namespace)


def scope_model(model: MeshModel, proxy: Proxy) -> MeshModel:
    """``model`` narrowed to what ``proxy`` may reach: services and their endpoints.

    Everything else (workloads, policies, gateways, Sidecars) is kept, so
    inbound translation is unchanged. Returns ``model`` itself when nothing
    is filtered.
    """
    sidecar = sidecar_for(model, proxy)
    services = visible_services(model.services, sidecar, proxy.namespace)
    if len(services) == len(model.services):
        return model
    kept = {s.hostname for s in services}
    endpoints = {host: eps for host, eps in model.endpoints.items() if host in kept}
    return replace(model, services=services, endpoints=MappingProxyType(endpoints))
