"""The typed mesh model: what the sources produce and the translators read.

Sources (the file source today, a Kubernetes watch later) turn Kubernetes-shaped
objects into these frozen, slotted dataclasses; nothing downstream knows YAML or
Kubernetes. ``MeshModel`` is the root: it holds the parts defined beside it
(``services``, ``policies``, ``routing``, ``gateways``, ``sidecars``), and none of
them imports it. Invariants:

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from translators.mesh.model.gateways import Gateway, TlsCredential
from translators.mesh.model.policies import NO_POLICIES, Policies
from translators.mesh.model.routing import VirtualService
from translators.mesh.model.services import Endpoint, Service, ServiceKey, Workload
from translators.mesh.model.sidecars import Sidecar


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
