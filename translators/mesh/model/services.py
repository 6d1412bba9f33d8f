"""Services, their endpoints and the workloads behind them: the core of the mesh model.

A ``Service`` is a Kubernetes Service or one ServiceEntry host; an ``Endpoint``
one address serving one of its ports; a ``Workload`` a Pod or WorkloadEntry a
sidecar can run beside. ``MeshModel`` (``translators.mesh.model.mesh``) holds
them; every other part of the model may import this module for ``Labels`` and
``Protocol``, and it imports none of them. Invariants:

1. Every value is immutable and hashable, so a translator's output can be
   memoized on its inputs and a snapshot can share model objects freely.
2. Labels are frozensets of pairs, so ``selector <= labels`` is Kubernetes'
   equality-based selection.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    DYNAMIC_DNS = "DYNAMIC_DNS"
    """Istio resolves the Host header or SNI per request (a dynamic forward proxy); wildcard,
    mesh-external hosts only. Not served yet: such a service has no endpoints, and a builder
    that knows only the values above treats it as it treats NONE."""


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
