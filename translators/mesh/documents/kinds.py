"""Every kind pyistiod reads: one Kubernetes-shaped document in, one typed object out.

``parse_object`` reads ``apiVersion``, ``kind`` and ``metadata``, then hands
the document to the reader of its kind (``_PARSERS``): ``v1`` Service and Pod
and ``discovery.k8s.io/v1`` EndpointSlice (``kubernetes.objects``);
``networking.istio.io`` (``v1``, ``v1beta1``, ``v1alpha3``) ServiceEntry and
WorkloadEntry (``networking.service_entries``), DestinationRule
(``networking.destination_rules``), Gateway and ``v1`` Secret
(``networking.gateways``), Sidecar (``networking.sidecars``) and
VirtualService (``networking.virtual_services``); ``security.istio.io``
(``v1``, ``v1beta1``) PeerAuthentication (``security.peer_authentication``),
RequestAuthentication (``security.request_authentication``) and
AuthorizationPolicy (``security.authorization``).
Invariants:

1. ``parse_object`` is pure and total: it never raises on bad input. It returns
   either one object and no errors, or no object and every error found in the
   document, each with its dotted field path.
2. Any other apiVersion/kind comes back as ``Skipped``, for the caller to warn
   about; this module does not log.
3. Cross-object rules (duplicates, references) are not checked here; see
   ``translators.mesh.checks``.
4. A field Istio's schema does not know (``known_fields``) is an error with
   its path, as ``kubectl apply --validate=strict`` makes it: a misspelt
   ``retires:`` must not be silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.known_fields import unknown_document_fields
from translators.mesh.documents.kubernetes.objects import (
    EndpointSliceObject,
    PodObject,
    ServiceObject,
    parse_endpoint_slice,
    parse_pod,
    parse_service,
)
from translators.mesh.documents.meta import (
    DEFAULT_NAMESPACE,
    LABEL,
    SERVICE_NAME,
    SUBDOMAIN,
    Meta,
    NameRule,
    Origin,
    read_meta,
)
from translators.mesh.documents.networking.destination_rules import (
    DestinationRuleObject,
    parse_destination_rule,
)
from translators.mesh.documents.networking.gateways import (
    GatewayObject,
    SecretObject,
    parse_gateway,
    parse_secret,
)
from translators.mesh.documents.networking.service_entries import (
    ServiceEntryObject,
    WorkloadEntryObject,
    parse_service_entry,
    parse_workload_entry,
)
from translators.mesh.documents.networking.sidecars import SidecarObject, parse_sidecar
from translators.mesh.documents.networking.virtual_services import (
    VirtualServiceObject,
    parse_virtual_service,
)
from translators.mesh.documents.security.authorization import (
    AuthorizationPolicyObject,
    parse_authorization_policy,
)
from translators.mesh.documents.security.peer_authentication import (
    PeerAuthenticationObject,
    parse_peer_authentication,
)
from translators.mesh.documents.security.request_authentication import (
    RequestAuthenticationObject,
    parse_request_authentication,
)
from translators.mesh.model.services import ObjectKey
from xds_server.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document of a kind pyistiod does not read; the caller decides how to warn."""

    api_version: str
    kind: str
    name: str
    origin: Origin
    key: ObjectKey | None = None
    """Kind, namespace and name as written (None without a name)."""

    @property
    def is_mesh_config(self) -> bool:
        """Whether Istio (or its Gateway API implementation) would act on it: an
        ``*.istio.io`` or Gateway API kind, where skipping changes what the mesh does, unlike
        a Deployment or ConfigMap beside the Services."""
        group = self.api_version.rpartition("/")[0]
        return group.endswith(".istio.io") or group.startswith("gateway.networking.")

    def describe(self) -> str:
        """``file (document N) Kind namespace/name``."""
        key = self.key
        return f"{self.origin} {self.kind}" + (f" {key.namespace}/{key.name}" if key else "")


SourceObject = (
    ServiceObject
    | EndpointSliceObject
    | PodObject
    | ServiceEntryObject
    | WorkloadEntryObject
    | PeerAuthenticationObject
    | RequestAuthenticationObject
    | AuthorizationPolicyObject
    | DestinationRuleObject
    | GatewayObject
    | SidecarObject
    | VirtualServiceObject
    | SecretObject
)
"""Every kind of object the mesh builder reads."""


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The outcome of parsing one document.

    Exactly one of: ``obj`` set and ``errors`` empty, or ``obj`` ``None`` and
    ``errors`` non-empty. ``warnings`` may accompany an object.
    """

    obj: SourceObject | Skipped | None
    errors: tuple[ConfigError, ...] = ()
    warnings: tuple[str, ...] = ()
    key: ObjectKey | None = None
    """Who the document is (kind, namespace, name) when that could be read, valid or not:
    an invalid object's last valid version is found by it. ``None`` for a document of
    no supported kind or without a name."""


def parse_object(raw: object, *, path: str, document: int, prefix: str = "") -> ParseResult:
    """Parse and validate one YAML-loaded document found at ``path`` / ``document``.

    ``prefix`` is prepended to field paths (``items[2]`` inside a ``kind: List``).
    """
    p = v.Problems(path, document, prefix)
    if not isinstance(raw, Mapping):
        p.add("", f"must be a mapping (a Kubernetes object), got {v.describe(raw)}")
        return ParseResult(None, p.errors)
    doc = v.mapping(p, raw, "")
    api_version = v.string(p, raw.get("apiVersion"), "apiVersion", required=True)
    kind = v.string(p, raw.get("kind"), "kind", required=True)
    if doc is None or api_version is None or kind is None:
        return ParseResult(None, p.errors)
    entry = _PARSERS.get((api_version, kind))
    if entry is None:
        origin = Origin(path, document)
        return ParseResult(Skipped(api_version, kind, _name_of(doc), origin, _key_of(doc, kind)))
    parser, rule = entry
    meta = read_meta(p, doc, kind, rule)
    for unknown in unknown_document_fields(kind, doc):
        p.add(unknown.path, unknown.reason())
    warnings: list[str] = []
    obj = parser(p, doc, meta, warnings) if meta is not None else None
    if p.errors or obj is None:
        return ParseResult(None, p.errors, key=_key_of(doc, kind))
    origin = Origin(path, document)
    return ParseResult(obj, (), tuple(f"{origin}: {w}" for w in warnings), obj.meta.key)


def _name_of(doc: Mapping[str, object]) -> str:
    md = doc.get("metadata")
    name = md.get("name") if isinstance(md, Mapping) else None
    return name if isinstance(name, str) else ""


def _key_of(doc: Mapping[str, object], kind: str) -> ObjectKey | None:
    """The document's identity as written, before (and whether or not) it validates."""
    name = _name_of(doc)
    if not name:
        return None
    md = doc.get("metadata")
    namespace = md.get("namespace") if isinstance(md, Mapping) else None
    if not isinstance(namespace, str) or not namespace:
        namespace = DEFAULT_NAMESPACE
    return ObjectKey(kind, namespace, name)


_Parser = Callable[[v.Problems, Mapping[str, object], Meta, list[str]], SourceObject]
_ISTIO_VERSIONS = (
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
)

_SECURITY_VERSIONS = ("security.istio.io/v1", "security.istio.io/v1beta1")

_PARSERS: dict[tuple[str, str], tuple[_Parser, NameRule]] = {
    ("v1", "Service"): (parse_service, SERVICE_NAME),
    ("v1", "Pod"): (parse_pod, SUBDOMAIN),
    ("discovery.k8s.io/v1", "EndpointSlice"): (parse_endpoint_slice, SUBDOMAIN),
    ("v1", "Secret"): (parse_secret, SUBDOMAIN),
    **{(api, "Gateway"): (parse_gateway, LABEL) for api in _ISTIO_VERSIONS},
    **{(api, "Sidecar"): (parse_sidecar, SUBDOMAIN) for api in _ISTIO_VERSIONS},
    **{(api, "VirtualService"): (parse_virtual_service, SUBDOMAIN) for api in _ISTIO_VERSIONS},
    **{(api, "ServiceEntry"): (parse_service_entry, SUBDOMAIN) for api in _ISTIO_VERSIONS},
    **{(api, "WorkloadEntry"): (parse_workload_entry, SUBDOMAIN) for api in _ISTIO_VERSIONS},
    **{(api, "DestinationRule"): (parse_destination_rule, SUBDOMAIN) for api in _ISTIO_VERSIONS},
    **{
        (api, "PeerAuthentication"): (parse_peer_authentication, SUBDOMAIN)
        for api in _SECURITY_VERSIONS
    },
    **{
        (api, "RequestAuthentication"): (parse_request_authentication, SUBDOMAIN)
        for api in _SECURITY_VERSIONS
    },
    **{
        (api, "AuthorizationPolicy"): (parse_authorization_policy, SUBDOMAIN)
        for api in _SECURITY_VERSIONS
    },
}
"""Readers by (apiVersion, kind), with the rule their ``metadata.name`` must follow: a
Gateway's is a DNS-1123 label, no dots (Istio's ``ValidateGateway``), since VirtualServices
name it ``namespace/name`` and read a dotted name as the legacy ``name.namespace``."""
