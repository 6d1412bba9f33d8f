"""The Kubernetes resources pyistiod watches, and where the API serves them.

One ``Resource`` per kind the mesh stage reads (``documents.kinds``), plus
the Namespaces whose labels scope the others (``source``): the
core kinds at their only version, Istio's kinds at ``v1`` (the API server
converts objects stored at ``v1beta1``/``v1alpha3``, since the versions share
one schema). Secrets are watched as istiod watches them: of every type but Helm's
releases and service-account tokens (the two large ones no ``credentialName`` names), since
Istio's generic form (``cert``/``key``/``cacert``) and ``NAME-cacert`` Secrets are often
``Opaque``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resource:
    """A watched collection: its kind and the path the API serves it at, in all namespaces."""

    api_version: str
    kind: str
    plural: str
    field_selector: str = ""
    needs_crd: bool = False
    """Served by a CustomResourceDefinition, which may be missing (reported, retried)."""

    @property
    def path(self) -> str:
        """The collection's path across namespaces (``/api/v1/services``)."""
        prefix = "/api" if "/" not in self.api_version else "/apis"
        return f"{prefix}/{self.api_version}/{self.plural}"


def _istio(group: str, *kinds: tuple[str, str]) -> tuple[Resource, ...]:
    return tuple(Resource(f"{group}/v1", kind, plural, needs_crd=True) for kind, plural in kinds)


SECRET_TYPES = "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token"
"""The field selector of the Secrets watched (istiod's ``SecretsFieldSelector``)."""

NAMESPACES = Resource("v1", "Namespace", "namespaces")
"""Namespaces: their labels decide which are discovered (Istio's ``discoverySelectors``)."""

RESOURCES: tuple[Resource, ...] = (
    NAMESPACES,
    Resource("v1", "Service", "services"),
    Resource("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
    Resource("v1", "Pod", "pods"),
    Resource("v1", "Secret", "secrets", field_selector=SECRET_TYPES),
    *_istio(
        "networking.istio.io",
        ("ServiceEntry", "serviceentries"),
        ("WorkloadEntry", "workloadentries"),
        ("VirtualService", "virtualservices"),
        ("DestinationRule", "destinationrules"),
        ("Gateway", "gateways"),
        ("Sidecar", "sidecars"),
    ),
    *_istio(
        "security.istio.io",
        ("PeerAuthentication", "peerauthentications"),
        ("RequestAuthentication", "requestauthentications"),
        ("AuthorizationPolicy", "authorizationpolicies"),
    ),
)
"""Every watched resource, in the order their first lists are started."""
