"""Which service a host names, from a namespace, as ``istioctl analyze`` looks it up.

Istio's analyzers key every Kubernetes Service and ServiceEntry host by the
scopes it is exported to (``*`` when ``exportTo`` is empty or holds ``*``)
and look a host up in this order: a host exported to all, then one exported
to the referring object's own ``exportTo`` namespaces (its own namespace when
it has none), then a wildcard ServiceEntry host covering it. The lookup is
Istio's, stricter than a sidecar's view in one respect it shares with Istio:
the referring object's ``exportTo``, not the proxy's namespace, is asked.
"""

from __future__ import annotations

from collections.abc import Iterable

from translators.mesh.model.services import Service

ALL = "*"


def scopes(service: Service) -> frozenset[str]:
    """The namespaces a service is exported to; ``{"*"}`` for all."""
    if not service.export_to or ALL in service.export_to:
        return frozenset({ALL})
    return service.export_to


class HostIndex:
    """Services by (scope, hostname); built once per analysis, read by every analyzer."""

    def __init__(self, services: Iterable[Service]) -> None:
        self._by_key: dict[tuple[str, str], Service] = {}
        self._wildcards: list[tuple[str, Service]] = []
        for service in services:
            for scope in scopes(service):
                self._by_key.setdefault((scope, service.hostname), service)
                if service.hostname.startswith("*"):
                    self._wildcards.append((scope, service))

    def find(self, namespace: str, export_to: Iterable[str], host: str) -> Service | None:
        """The service ``host`` (an FQDN) names for an object in ``namespace`` exporting to
        ``export_to`` (empty: its own namespace), or ``None``."""
        found = self._by_key.get((ALL, host))
        if found is not None:
            return found
        for scope in tuple(export_to) or (namespace,):
            found = self._by_key.get((scope, host))
            if found is not None:
                return found
        bare = host.lstrip("*")
        for scope, service in self._wildcards:
            if scope in (ALL, namespace) and bare.endswith(service.hostname[1:]):
                return service
        return None
