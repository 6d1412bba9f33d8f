"""The typed mesh model: what the sources produce and the translators read.

Sources (the file source today, a Kubernetes watch later) turn Kubernetes-shaped
objects into these frozen, slotted dataclasses; nothing downstream knows YAML or
Kubernetes. Invariants:

1. Every value is immutable and hashable, so a translator's output can be
   memoized on its inputs and a snapshot can share model objects freely.
2. Services and their endpoints are held apart (``MeshModel.services`` and
   ``MeshModel.endpoints``): an endpoint-only change leaves every ``Service``
   object equal, so cluster, listener and route output stays byte-identical
   and only EDS changes.
3. Collections are tuples sorted by their natural key, so equal meshes give
   equal models whatever order the files were read in.
4. Gateways, TLS credentials and Sidecars are held in fields of their own,
   so a change to one leaves the others (and every part built only from
   them) equal.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from translators.mesh.model.gateways import Gateway, TlsCredential
from translators.mesh.model.policies import NO_POLICIES, Policies
from translators.mesh.model.routing import VirtualService

if TYPE_CHECKING:  # sidecar_model imports this module for Labels and Protocol
    from translators.mesh.model.sidecars import Sidecar

Labels = frozenset[tuple[str, str]]
"""Labels as a frozenset of (key, value) pairs: hashable, and ``selector <= labels``
is Kubernetes' equality-based selector match."""

DEFAULT_DOMAIN_SUFFIX = "cluster.local"


def labels_of(mapping: Mapping[str, str] | None) -> Labels:
    """Freeze a label mapping."""
    return frozenset((mapping or {}).items())


def selector_matches(selector: Labels, labels: Labels) -> bool:
    """Kubernetes equality-based selection: every selector pair is present in labels.

    An empty selector selects nothing here, as for a Service without a selector
    (its endpoints are managed by hand through EndpointSlices).
    """
    return bool(selector) and selector <= labels


class Protocol(enum.Enum):
    """A service port's protocol, as Istio's protocol selection names it."""

    HTTP = "HTTP"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    TCP = "TCP"
    TLS = "TLS"
    HTTPS = "HTTPS"

    @property
    def is_http(self) -> bool:
        """Whether traffic on the port is routed by an HTTP connection manager."""
        return self in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC)


class Resolution(enum.Enum):
    """How a service's endpoints are found (ServiceEntry ``resolution``)."""

    STATIC = "STATIC"
    """Endpoints are listed (Kubernetes EndpointSlices, WorkloadEntries, SE endpoints): EDS."""
    DNS = "DNS"
    """Endpoint addresses are host names that Envoy resolves: STRICT_DNS cluster."""
    NONE = "NONE"
    """Traffic goes to the address the caller dialled: ORIGINAL_DST cluster."""


class Location(enum.Enum):
    """ServiceEntry ``location``."""

    MESH_INTERNAL = "MESH_INTERNAL"
    MESH_EXTERNAL = "MESH_EXTERNAL"


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    """Where a model object came from: kind, namespace and name of the source object."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a service.

    ``target_port`` is the workload port traffic is delivered to: a number, or
    the name of a container port (resolved per endpoint, so it lives on
    ``Endpoint.port`` after resolution; this field keeps the declared value).
    """

    name: str
    port: int
    protocol: Protocol
    target_port: int | str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    """A service the mesh routes to: a Kubernetes Service or a ServiceEntry host.

    ``hostname`` is the FQDN (``name.ns.svc.cluster.local`` for Kubernetes
    Services, the ServiceEntry host otherwise). A ServiceEntry with several hosts
    becomes several Services.
    """

    hostname: str
    namespace: str
    name: str
    ports: tuple[ServicePort, ...]
    source: ObjectKey
    selector: Labels = frozenset()
    addresses: tuple[str, ...] = ()
    resolution: Resolution = Resolution.STATIC
    location: Location = Location.MESH_INTERNAL
    is_kubernetes: bool = True
    export_to: frozenset[str] = frozenset()
    """Namespaces that may see the service (Istio's ``exportTo``, ``.`` resolved); empty: all.

    ``*`` among them also means all; ``~`` alone means none."""

    def visible_from(self, namespace: str) -> bool:
        """Whether a proxy in ``namespace`` may see the service (``exportTo``)."""
        return not self.export_to or "*" in self.export_to or namespace in self.export_to

    def port(self, number: int) -> ServicePort | None:
        """The service port with this number, if any."""
        return next((p for p in self.ports if p.port == number), None)


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """One address that serves one port of one service.

    ``port`` is the resolved target port on the workload; ``service_port`` is the
    service port number it backs. ``labels`` and ``service_account`` come from
    the Pod (through the EndpointSlice ``targetRef``) or the WorkloadEntry.
    """

    service_port: int
    address: str
    port: int
    labels: Labels = field(default=frozenset(), compare=False)
    service_account: str = ""
    workload: str = ""
    """The workload's name (Pod or WorkloadEntry), for debugging and metadata."""
    ready: bool = True


@dataclass(frozen=True, slots=True)
class Workload:
    """A Pod or WorkloadEntry: something a sidecar can run beside.

    The proxy's identity is looked up here by namespace and name (from the node
    ID ``sidecar~IP~POD.NS~NS.svc.cluster.local``) to default its labels and
    service account.
    """

    namespace: str
    name: str
    address: str
    labels: Labels
    service_account: str
    source: ObjectKey
    ports: tuple[tuple[str, int], ...] = ()
    """Named ports (container ports for a Pod, ``ports`` for a WorkloadEntry)."""


ServiceKey = str
"""A service's hostname: the key of ``MeshModel.services`` and ``MeshModel.endpoints``."""


@dataclass(frozen=True, slots=True)
class MeshModel:
    """The whole mesh at one instant: services, their endpoints, workloads and policies.

    Build it with ``MeshModel.build`` so the collections are sorted and keyed.
    The model is compared by value but not hashed as a whole: memoize on its
    parts (a ``Service``, an endpoint tuple), which are hashable.
    """

    services: tuple[Service, ...] = ()
    endpoints: Mapping[ServiceKey, tuple[Endpoint, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    workloads: Mapping[tuple[str, str], Workload] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    policies: Policies = NO_POLICIES
    """Security policies (PeerAuthentication, AuthorizationPolicy, DestinationRule TLS)."""
    gateways: tuple[Gateway, ...] = ()
    """Istio Gateways, sorted by (namespace, name)."""
    credentials: tuple[TlsCredential, ...] = ()
    """TLS key pairs from Secrets (gateways' ``credentialName``), by (namespace, name)."""
    sidecars: tuple[Sidecar, ...] = ()
    """Sidecar resources, sorted by (namespace, name)."""
    virtual_services: tuple[VirtualService, ...] = ()
    """VirtualServices, sorted by (namespace, name); hosts and destinations are FQDNs."""

    @staticmethod
    def build(
        services: Iterable[Service],
        endpoints: Mapping[ServiceKey, Iterable[Endpoint]],
        workloads: Iterable[Workload] = (),
        policies: Policies = NO_POLICIES,
        *,
        gateways: Iterable[Gateway] = (),
        credentials: Iterable[TlsCredential] = (),
        sidecars: Iterable[Sidecar] = (),
        virtual_services: Iterable[VirtualService] = (),
    ) -> MeshModel:
        """A model with every collection sorted by its key and read-only."""
        return MeshModel(
            services=tuple(sorted(services, key=lambda s: (s.hostname, s.namespace))),
            endpoints=MappingProxyType(
                {key: tuple(sorted(eps)) for key, eps in sorted(endpoints.items())}
            ),
            workloads=MappingProxyType(
                {(w.namespace, w.name): w for w in sorted(workloads, key=_workload_key)}
            ),
            policies=policies,
            gateways=tuple(sorted(gateways, key=_ns_name)),
            credentials=tuple(sorted(credentials, key=_ns_name)),
            sidecars=tuple(sorted(sidecars, key=_ns_name)),
            virtual_services=tuple(sorted(virtual_services, key=_ns_name)),
        )

    def credential(self, namespace: str, name: str) -> TlsCredential | None:
        """The TLS credential from Secret ``namespace/name``, if any."""
        return next(
            (c for c in self.credentials if (c.namespace, c.name) == (namespace, name)), None
        )

    def endpoints_of(self, hostname: ServiceKey) -> tuple[Endpoint, ...]:
        """The endpoints of the service with this hostname (empty if none)."""
        return self.endpoints.get(hostname, ())

    def workload(self, namespace: str, name: str) -> Workload | None:
        """The Pod or WorkloadEntry with this namespace and name, if any."""
        return self.workloads.get((namespace, name))


def _workload_key(w: Workload) -> tuple[str, str]:
    return (w.namespace, w.name)


def _ns_name(obj: Gateway | TlsCredential | Sidecar | VirtualService) -> tuple[str, str]:
    return (obj.namespace, obj.name)
