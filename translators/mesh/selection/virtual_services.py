"""Which VirtualService routes a service for a sidecar, and which routes apply to it.

Invariants, following Istio's sidecar route building:

1. A VirtualService applies to sidecars when its ``gateways`` include
   ``mesh``, and to a proxy in namespace N when its ``exportTo`` allows N
   (empty or ``*``: everywhere; ``~``: nowhere).
2. For one service the VirtualService naming its hostname exactly wins over
   any wildcard one, a longer wildcard over a shorter one; among equals the
   first by (namespace, name). Istio takes the oldest by creation time,
   which files do not have; the others are ignored for that host (for
   sidecars Istio merges nothing), and ``mesh.analysis`` warns about them.
3. A match applies to a proxy when its ``port`` (if set) is the listener
   port and, for ``gateways`` set, they include ``mesh``; otherwise when its
   ``sourceLabels`` are among the proxy's labels and its
   ``sourceNamespace`` (if set) is the proxy's (Istio's ``sourceMatchHTTP``).
4. Pure; ``source_label_key`` lets callers memoize per label view.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from translators.mesh.model.routing import MESH_GATEWAY, HttpMatch, L4Match, VirtualService
from translators.mesh.model.services import Labels


def host_covers(pattern: str, hostname: str) -> bool:
    """Whether a VirtualService host (FQDN, ``*.suffix`` or ``*``) covers ``hostname``."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return hostname.endswith(pattern[1:])
    return pattern == hostname


def visible(vs: VirtualService, namespace: str) -> bool:
    """Whether a sidecar in ``namespace`` gets ``vs`` (invariant 1)."""
    if MESH_GATEWAY not in vs.gateways:
        return False
    return not vs.export_to or "*" in vs.export_to or namespace in vs.export_to


def mesh_virtual_services(
    virtual_services: Iterable[VirtualService], namespace: str
) -> tuple[VirtualService, ...]:
    """The VirtualServices a sidecar in ``namespace`` sees, in (namespace, name) order."""
    return tuple(vs for vs in virtual_services if visible(vs, namespace))


def candidates(virtual_services: Sequence[VirtualService], hostname: str) -> list[VirtualService]:
    """The VirtualServices covering ``hostname``, the winner first (invariant 2)."""
    found = [vs for vs in virtual_services if any(host_covers(h, hostname) for h in vs.hosts)]
    return sorted(found, key=lambda vs: _rank(vs, hostname))


def _rank(vs: VirtualService, hostname: str) -> tuple[int, int, str, str]:
    if hostname in vs.hosts:
        return (0, 0, vs.namespace, vs.name)
    longest = max(len(h) for h in vs.hosts if host_covers(h, hostname))
    return (1, -longest, vs.namespace, vs.name)


def virtual_service_for(
    virtual_services: Sequence[VirtualService], hostname: str
) -> VirtualService | None:
    """The VirtualService that routes ``hostname`` (invariant 2), if any."""
    found = candidates(virtual_services, hostname)
    return found[0] if found else None


def _source_matches(
    gateways: tuple[str, ...], labels: Labels, namespace: str, proxy: tuple[Labels, str]
) -> bool:
    if gateways:
        return MESH_GATEWAY in gateways
    return labels <= proxy[0] and (not namespace or namespace == proxy[1])


def http_match_applies(
    match: HttpMatch | None, port: int, proxy_labels: Labels, proxy_namespace: str
) -> bool:
    """Whether an HTTP match can hold for this proxy on this listener port (invariant 3)."""
    if match is None:
        return True
    if match.port is not None and match.port != port:
        return False
    return _source_matches(
        match.gateways,
        match.source_labels,
        match.source_namespace,
        (proxy_labels, proxy_namespace),
    )


def l4_match_applies(match: L4Match, port: int, proxy_labels: Labels, proxy_namespace: str) -> bool:
    """Whether a TCP/TLS match applies to this proxy on this listener port (invariant 3)."""
    if match.port is not None and match.port != port:
        return False
    return _source_matches(
        match.gateways,
        match.source_labels,
        match.source_namespace,
        (proxy_labels, proxy_namespace),
    )


def source_label_key(
    virtual_services: Iterable[VirtualService], proxy_labels: Labels
) -> frozenset[Labels]:
    """The ``sourceLabels`` selectors the proxy satisfies: all routing reads of its labels.

    Proxies with equal keys (and namespace) get equal routes, so this is a
    memo key that keeps sharing among proxies with different labels.
    """
    selectors: set[Labels] = set()
    for vs in virtual_services:
        for http in vs.http:
            selectors.update(m.source_labels for m in http.matches if m.source_labels)
        for l4 in (*vs.tcp, *vs.tls):
            selectors.update(m.source_labels for m in l4.matches if m.source_labels)
    return frozenset(s for s in selectors if s <= proxy_labels)
