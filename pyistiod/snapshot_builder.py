"""Snapshots for proxies from a mesh model, serializing each shared resource once.

Invariants:

1. Each part of a snapshot is memoized on the inputs its translator reads:
   outbound clusters and endpoints on the services, endpoints and security
   policies; routes on the services, policies (consistent hashes) and the
   proxy's VirtualService view (the VirtualServices, its namespace and the
   ``sourceLabels`` it satisfies, ``selection.virtual_services.source_label_key``); outbound
   listeners on the services, the bind address and, when a TCP port is among them,
   that view (TCP/TLS routes; HTTP listeners read no VirtualService); inbound
   clusters (with the clusters the proxy fetches JWKS through) on the services, the
   workloads, the RequestAuthentications and the proxy; inbound listeners on those
   and the other policies. The RequestAuthentications have a token of their own, left
   out of the policies token, so a JWT rule edit rebuilds only the parts that read
   them: inbound clusters and listeners, and gateway listeners. Proxies with equal
   inputs get the very same ``ResourceSet`` objects, hence the same bytes, serialized
   once.
2. An input is represented in memo keys by a *token*: a new model whose
   services (endpoints, workloads) equal the previous model's keeps the
   previous token, so the parts built from them are reused across models.
   An endpoint-only change therefore rebuilds EDS and nothing else, and no
   invalidation is written by hand: a stale token simply matches nothing.
3. A sidecar's outbound parts are built from its *scoped* model
   (``translators.mesh.selection.sidecar_scope``): the services its Sidecar resource and
   ``exportTo`` let it see. The scope is memoized per (Sidecar, namespace)
   and stands in memo keys for the services token, so proxies under one
   Sidecar share parts, and without any Sidecar or ``exportTo`` every proxy
   shares them as before. Inbound parts read the whole model.
4. Routers (gateways) get the outbound clusters and endpoints like sidecars,
   and listeners and routes from the Gateways they run
   (``envoy.listeners.gateway``, ``envoy.routes.gateway``; listeners with the RBAC of
   the AuthorizationPolicies selecting the gateway pod), keyed on the gateways and
   VirtualServices token, and the TLS credentials (``credentialName``) of
   the Gateways they run as SDS secrets (``gateway_secrets``), which the
   transport serves only to an authenticated stream. Every proxy, sidecar or
   router, also gets the secrets its DestinationRules' ``credentialName`` TLS
   origination names, from the Secrets of its own namespace
   (``origination_secrets``): keyed on the credentials, the namespace and the
   policies, so a namespace's sidecars share them; only an authenticated
   stream gets them (a plain one's secretless view turns those clusters plain).
5. Memory follows the connected proxies: a predecessor's parts are only
   candidates, adopted when asked for and dropped by ``seal``; ``forget``
   drops a disconnected proxy's own parts.
6. When the outbound clusters or endpoints must be rebuilt, each service's
   resources are memoized on what ``build_service_clusters`` and
   ``build_service_endpoints`` read: the service, its ports, its endpoints and
   the policies token. An EndpointSlice edit rebuilds and re-serializes one
   service's resources; every other service's are the previous ``Resource``
   objects (so their versions, and what proxies already hold, stay).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import Any

from google.protobuf.message import Message

from translators.envoy.clusters import (
    build_inbound_clusters,
    build_service_clusters,
    outbound_ports_by_service,
)
from translators.envoy.endpoints import build_service_endpoints
from translators.envoy.jwt import build_jwks_clusters
from translators.envoy.listeners.gateway import build_gateway_listeners
from translators.envoy.listeners.sidecar import (
    OutboundPort,
    build_inbound_listeners,
    build_outbound_listeners,
    outbound_listener_ports,
)
from translators.envoy.routes.gateway import build_gateway_routes
from translators.envoy.routes.sidecar import build_routes
from translators.envoy.tls.gateway_secrets import gateway_secrets
from translators.envoy.tls.origination_secrets import origination_secrets
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.services import Service, ServicePort
from translators.mesh.selection.gateway_binding import virtual_services_of
from translators.mesh.selection.sidecar_scope import scope_model, sidecar_for
from translators.mesh.selection.virtual_services import source_label_key
from xds_server import types
from xds_server.snapshot import Resource, ResourceSet, Snapshot, resource_name


class _Token:
    """Stands for one value of one model input in memo keys (compared by identity)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name} token {id(self):x}>"


class SnapshotBuilder:
    """Builds and memoizes per-proxy snapshots of one model, reusing a predecessor's parts."""

    def __init__(self, model: MeshModel, previous: SnapshotBuilder | None = None) -> None:
        self.model = model
        self.services = _carry(previous, "services", model, lambda m: m.services)
        self.endpoints = _carry(previous, "endpoints", model, lambda m: m.endpoints)
        self.workloads = _carry(previous, "workloads", model, lambda m: m.workloads)
        self.policies = _carry(
            previous, "policies", model, lambda m: replace(m.policies, request_authentications=())
        )
        self.request_authn = _carry(
            previous, "request_authn", model, lambda m: m.policies.request_authentications
        )
        self.credentials = _carry(previous, "credentials", model, lambda m: m.credentials)
        self.routing = _carry(previous, "routing", model, lambda m: m.virtual_services)
        self.gateways = _carry(
            previous, "gateways", model, lambda m: (m.gateways, tuple(virtual_services_of(m)))
        )
        self._export_restricted = any(s.export_to for s in model.services)
        self._scopes: dict[Hashable, tuple[MeshModel, Hashable]] = {}
        self._parts: dict[tuple[Hashable, ...], ResourceSet] = {}
        self._services: dict[Hashable, tuple[Resource, ...]] = {}
        self._service_candidates = previous._services if previous is not None else {}
        self._plans: dict[Hashable, Sequence[OutboundPort]] = {}
        self._owned: dict[Proxy, list[tuple[Hashable, ...]]] = {}
        self._candidates = previous._parts if previous is not None else {}

    def seal(self) -> None:
        """Drop the predecessor's parts that were not adopted (call after a full rebuild)."""
        self._candidates = {}
        self._service_candidates = {}

    def forget(self, proxy: Proxy) -> None:
        """Drop the parts built for ``proxy`` (it disconnected).

        That includes its outbound listeners, keyed by bind address; another
        proxy sharing the address keeps its snapshot and rebuilds the part if
        it needs it again.
        """
        for key in self._owned.pop(proxy, ()):
            self._parts.pop(key, None)

    def scoped(self, proxy: Proxy) -> tuple[MeshModel, Hashable]:
        """The model ``proxy`` may see and the token standing for its services (invariant 3)."""
        sidecar = sidecar_for(self.model, proxy)
        if sidecar is None and not self._export_restricted:
            return self.model, self.services
        key = (sidecar, proxy.namespace)
        found = self._scopes.get(key)
        if found is None:
            scoped = scope_model(self.model, proxy)
            token = self.services if scoped is self.model else (self.services, key)
            found = self._scopes[key] = (scoped, token)
        return found

    def snapshot(self, proxy: Proxy) -> Snapshot:
        """The snapshot for ``proxy``: every type, sharing resources with other proxies."""
        full, (m, svc), eps, wls, pol, ns = (
            self.model,
            self.scoped(proxy),
            self.endpoints,
            self.workloads,
            self.policies,
            proxy.namespace,
        )
        clusters = self._combine(
            self._part(
                types.CLUSTER,
                (svc, eps, pol),
                lambda: self._by_service(types.CLUSTER, m, build_service_clusters),
            ),
            self._part(
                types.CLUSTER,
                (self.services, wls, self.request_authn, proxy),
                lambda: [*build_inbound_clusters(full, proxy), *build_jwks_clusters(full, proxy)],
                proxy,
            ),
        )
        endpoints = self._part(
            types.ENDPOINT,
            (svc, eps, pol),
            lambda: self._by_service(types.ENDPOINT, m, build_service_endpoints),
        )
        if proxy.type is ProxyType.ROUTER:
            gws = self.gateways
            listeners = self._part(
                types.LISTENER,
                (gws, svc, self.request_authn, pol, proxy),
                lambda: build_gateway_listeners(m, proxy),
                proxy,
            )
            routes = self._part(
                types.ROUTE, (gws, svc, pol, proxy.labels), lambda: build_gateway_routes(m, proxy)
            )
            secrets = self._part(
                types.SECRET,
                (self.credentials, gws, pol, proxy),
                lambda: _unique([*gateway_secrets(full, proxy), *origination_secrets(full, ns)]),
                proxy,
            )
            return Snapshot.of((clusters, endpoints, listeners, routes, secrets))
        out = proxy.outbound_address
        # VirtualService routing reads the proxy's namespace and which sourceLabels it has.
        view = (self.routing, proxy.namespace, source_label_key(m.virtual_services, proxy.labels))
        plan = self._plan(m, svc)
        # Only TCP ports' listeners read routing (``tcp``/``tls`` routes); HTTP ones name their
        # route configuration, so with no TCP port a VirtualService edit rebuilds no listener.
        l4_view = view if any(p.tcp_hostname for p in plan) else ()
        listeners = self._combine(
            self._part(
                types.LISTENER,
                (svc, out, *l4_view),
                lambda: build_outbound_listeners(m, out, plan, proxy=proxy),
                proxy,
            ),
            self._part(
                types.LISTENER,
                (self.services, wls, pol, self.request_authn, proxy),
                lambda: build_inbound_listeners(full, proxy),
                proxy,
            ),
        )
        routes = self._part(types.ROUTE, (svc, pol, *view), lambda: build_routes(m, proxy))
        secrets = self._part(
            types.SECRET, (self.credentials, ns, pol), lambda: origination_secrets(full, ns)
        )
        return Snapshot.of((clusters, endpoints, listeners, routes, secrets))

    def _plan(self, model: MeshModel, services: Hashable) -> Sequence[OutboundPort]:
        """The outbound listener ports of a (scoped) model: one scan of its services,
        shared by every bind address, instead of one scan per proxy."""
        plan = self._plans.get(services)
        if plan is None:
            plan = self._plans[services] = outbound_listener_ports(model)[0]
        return plan

    def _by_service(
        self,
        type_url: str,
        model: MeshModel,
        build: Callable[[MeshModel, Service, Sequence[ServicePort]], Sequence[Message]],
    ) -> list[Resource]:
        """Every service's resources of ``type_url``, each service's memoized on exactly
        what its builder reads (invariant 6): a change to one service's endpoints
        rebuilds that service's clusters and CLAs, and reuses the rest."""
        out: list[Resource] = []
        for service, ports in outbound_ports_by_service(model):
            key = (type_url, service, ports, model.endpoints_of(service.hostname), self.policies)
            found = self._services.get(key) or self._service_candidates.get(key)
            if found is None:
                built = build(model, service, ports)
                found = tuple(Resource.of(type_url, resource_name(r), r) for r in built)
            self._services[key] = found
            out.extend(found)
        return sorted(out, key=lambda r: r.name) if type_url == types.ENDPOINT else out

    @staticmethod
    def _combine(shared: ResourceSet, own: ResourceSet) -> ResourceSet:
        return ResourceSet.combine(shared.type_url, (shared, own))

    def _part(
        self,
        type_url: str,
        inputs: tuple[Hashable, ...],
        build: Callable[[], Sequence[Any]],
        owner: Proxy | None = None,
    ) -> ResourceSet:
        """The memoized part; with an ``owner``, ``forget(owner)`` drops it.

        ``build`` returns Envoy messages, or ``Resource`` objects already
        serialized (``_by_service``).
        """
        key = (type_url, *inputs)
        if owner is not None and key not in self._parts:
            self._owned.setdefault(owner, []).append(key)
        found = self._parts.get(key)
        if found is None:  # not ``or``: an empty set is found too, and len() is not free
            found = self._candidates.get(key)
        if found is None:
            found = ResourceSet.of(type_url, (_resource(type_url, m) for m in build()))
        self._parts[key] = found
        return found


def _unique(secrets: Sequence[Message]) -> list[Message]:
    """The first secret of each name: a Gateway's credential wins over a DestinationRule's
    of the same name (both read ``kubernetes://NAME``, usually from the same Secret)."""
    found: dict[str, Message] = {}
    for secret in secrets:
        found.setdefault(resource_name(secret), secret)
    return [found[name] for name in sorted(found)]


def _resource(type_url: str, built: Message | Resource) -> Resource:
    if isinstance(built, Resource):
        return built
    return Resource.of(type_url, resource_name(built), built)


def _carry(
    previous: SnapshotBuilder | None, name: str, model: MeshModel, part: Callable[[MeshModel], Any]
) -> _Token:
    if previous is not None and part(previous.model) == part(model):
        token: _Token = getattr(previous, name)
        return token
    return _Token(name)
