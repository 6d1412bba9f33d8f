"""Parse one Kubernetes-shaped document into a typed, validated source object.

Accepted: ``v1`` Service and Pod, ``discovery.k8s.io/v1`` EndpointSlice, and
``networking.istio.io`` (``v1``, ``v1beta1``, ``v1alpha3``) ServiceEntry,
WorkloadEntry (read in ``istio_objects``) and DestinationRule, and
``security.istio.io`` (``v1``, ``v1beta1``) PeerAuthentication and
AuthorizationPolicy (read in ``security_objects`` and ``authz_objects``),
and ``networking.istio.io`` Gateway and Sidecar and ``v1`` Secret
(``gateway_objects``, ``sidecar_objects``) and VirtualService
(``virtual_service``).
Invariants:

1. ``parse_object`` is pure and total: it never raises on bad input. It returns
   either one object and no errors, or no object and every error found in the
   document, each with its dotted field path.
2. Any other apiVersion/kind comes back as ``Skipped``, for the caller to warn
   about; this module does not log.
3. Only TCP ports enter the model: UDP/SCTP ports are dropped with a warning,
   as Istio proxies neither.
4. Cross-object rules (duplicates, references) are not checked here; see
   ``mesh_checks``.
5. A Pod gets the label ``security.istio.io/tlsMode: istio`` unless it opts
   out of injection (``sidecar.istio.io/inject: "false"``, as a label or an
   annotation), as Istio's sidecar injector would add it; a value already
   set is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.authorization import parse_authorization_policy
from translators.mesh.documents.gateways import (
    GatewayObject,
    SecretObject,
    parse_gateway,
    parse_secret,
)
from translators.mesh.documents.kubernetes_ports import (
    SlicePort,
    container_ports,
    service_ports,
    slice_ports,
)
from translators.mesh.documents.meta import (
    SERVICE_NAME,
    SUBDOMAIN,
    Meta,
    NameRule,
    Origin,
    read_meta,
)
from translators.mesh.documents.policies import (
    AuthorizationPolicyObject,
    DestinationRuleObject,
    PeerAuthenticationObject,
    parse_destination_rule,
    parse_peer_authentication,
)
from translators.mesh.documents.service_entries import (
    ServiceEntryObject,
    WorkloadEntryObject,
    export_to_list,
    parse_service_entry,
    parse_workload_entry,
)
from translators.mesh.documents.sidecars import SidecarObject, parse_sidecar
from translators.mesh.documents.virtual_services import VirtualServiceObject, parse_virtual_service
from translators.mesh.model.policies import TLS_MODE_ISTIO, TLS_MODE_LABEL
from translators.mesh.model.services import Labels, ObjectKey, ServicePort
from xds_server.errors import ConfigError

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
"""The label tying an EndpointSlice to its Service (same namespace)."""

EXPORT_TO_KEY = "networking.istio.io/exportTo"
"""Service annotation: Istio's ``exportTo`` for Kubernetes Services."""

INJECT_KEY = "sidecar.istio.io/inject"
"""Label or annotation; ``"false"`` means the Pod has no sidecar (so no tlsMode label)."""


@dataclass(frozen=True, slots=True)
class ServiceObject:
    """A ``v1 Service``: ports with protocols resolved, selector and cluster IP."""

    meta: Meta
    ports: tuple[ServicePort, ...]
    selector: Labels
    cluster_ip: str = ""
    """An IP, ``None`` for a headless Service, or empty when not allocated."""
    type: str = "ClusterIP"
    external_name: str = ""
    export_to: frozenset[str] = frozenset()
    """From the ``networking.istio.io/exportTo`` annotation (comma-separated)."""


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    """One entry of an EndpointSlice's ``endpoints``."""

    addresses: tuple[str, ...]
    ready: bool
    target: ObjectKey | None
    """The Pod named by ``targetRef`` (kind Pod only), if any."""


@dataclass(frozen=True, slots=True)
class EndpointSliceObject:
    """A ``discovery.k8s.io/v1 EndpointSlice``; ``service_name`` is empty if unlabelled."""

    meta: Meta
    service_name: str
    address_type: str
    ports: tuple[SlicePort, ...]
    endpoints: tuple[SliceEndpoint, ...]


@dataclass(frozen=True, slots=True)
class PodObject:
    """A ``v1 Pod``: identity for endpoints and proxies, and its named container ports."""

    meta: Meta
    service_account: str
    pod_ip: str
    ports: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document of a kind pyistiod does not read; the caller decides how to warn."""

    api_version: str
    kind: str
    name: str
    origin: Origin


SourceObject = (
    ServiceObject
    | EndpointSliceObject
    | PodObject
    | ServiceEntryObject
    | WorkloadEntryObject
    | PeerAuthenticationObject
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
        return ParseResult(Skipped(api_version, kind, _name_of(doc), Origin(path, document)))
    parser, rule = entry
    meta = read_meta(p, doc, kind, rule)
    warnings: list[str] = []
    obj = parser(p, doc, meta, warnings) if meta is not None else None
    if p.errors or obj is None:
        return ParseResult(None, p.errors)
    origin = Origin(path, document)
    return ParseResult(obj, (), tuple(f"{origin}: {w}" for w in warnings))


def _name_of(doc: Mapping[str, object]) -> str:
    md = doc.get("metadata")
    name = md.get("name") if isinstance(md, Mapping) else None
    return name if isinstance(name, str) else ""


def _spec(p: v.Problems, doc: Mapping[str, object]) -> Mapping[str, object]:
    return v.mapping(p, doc.get("spec"), "spec") or {}


def _parse_service(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> ServiceObject:
    spec = _spec(p, doc)
    ports = service_ports(p, spec.get("ports"), str(meta.key), warnings)
    svc_type = v.string(p, spec.get("type"), "spec.type") or "ClusterIP"
    if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        p.add(
            "spec.type",
            f"must be ClusterIP, NodePort, LoadBalancer or ExternalName, got "
            f"{v.describe(svc_type)}",
        )
    cluster_ip = v.string(p, spec.get("clusterIP"), "spec.clusterIP") or ""
    if cluster_ip not in ("", "None") and not v.is_ip(cluster_ip):
        p.add("spec.clusterIP", f"must be an IP address or None, got {v.describe(cluster_ip)}")
    external = v.string(p, spec.get("externalName"), "spec.externalName") or ""
    if svc_type == "ExternalName" and not v.is_hostname(external):
        p.add(
            "spec.externalName",
            f"must be a DNS name for type ExternalName, got {v.describe(external)}",
        )
    selector = v.labels(p, spec.get("selector"), "spec.selector")
    export_to = _export_to_annotation(p, doc, meta.namespace)
    return ServiceObject(meta, ports, selector, cluster_ip, svc_type, external, export_to)


def _export_to_annotation(
    p: v.Problems, doc: Mapping[str, object], namespace: str
) -> frozenset[str]:
    md = v.mapping(p, doc.get("metadata"), "metadata") or {}
    annotations = v.mapping(p, md.get("annotations"), "metadata.annotations") or {}
    raw = annotations.get(EXPORT_TO_KEY)
    if not isinstance(raw, str):
        return frozenset()
    field = f"metadata.annotations.{EXPORT_TO_KEY}"
    return export_to_list(p, [x.strip() for x in raw.split(",")], field, namespace)


def _parse_pod(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> PodObject:
    spec = _spec(p, doc)
    sa = v.string(p, spec.get("serviceAccountName"), "spec.serviceAccountName")
    sa = sa or v.string(p, spec.get("serviceAccount"), "spec.serviceAccount") or "default"
    status = v.mapping(p, doc.get("status"), "status") or {}
    pod_ip = v.ip(p, status.get("podIP"), "status.podIP") or ""
    meta = _with_injected_labels(p, doc, meta)
    return PodObject(meta, sa, pod_ip, container_ports(p, spec.get("containers")))


def _with_injected_labels(p: v.Problems, doc: Mapping[str, object], meta: Meta) -> Meta:
    """The Pod's metadata with the label Istio's injector adds, unless injection is off."""
    md = v.mapping(p, doc.get("metadata"), "metadata") or {}
    annotations = v.mapping(p, md.get("annotations"), "metadata.annotations") or {}
    labels = dict(meta.labels)
    injected = labels.get(INJECT_KEY, annotations.get(INJECT_KEY)) != "false"
    if not injected or TLS_MODE_LABEL in labels:
        return meta
    labels[TLS_MODE_LABEL] = TLS_MODE_ISTIO
    return Meta(meta.key, frozenset(labels.items()), meta.origin)


def _parse_endpoint_slice(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> EndpointSliceObject:
    address_type = v.string(p, doc.get("addressType"), "addressType", required=True) or ""
    if address_type and address_type not in ("IPv4", "IPv6", "FQDN"):
        p.add("addressType", f"must be IPv4, IPv6 or FQDN, got {v.describe(address_type)}")
    ports = slice_ports(p, doc.get("ports"))
    endpoints = tuple(
        _slice_endpoint(p, raw, f"endpoints[{i}]", address_type, meta.namespace)
        for i, raw in enumerate(v.sequence(p, doc.get("endpoints"), "endpoints"))
    )
    service = dict(meta.labels).get(SERVICE_NAME_LABEL, "")
    return EndpointSliceObject(meta, service, address_type, ports, endpoints)


def _slice_endpoint(
    p: v.Problems, raw: object, field: str, address_type: str, namespace: str
) -> SliceEndpoint:
    m = v.mapping(p, raw, field) or {}
    addresses = v.sequence(p, m.get("addresses"), f"{field}.addresses")
    if not addresses:
        p.add(f"{field}.addresses", "must list at least one address")
    good = tuple(
        a
        for i, raw_addr in enumerate(addresses)
        if (a := _slice_address(p, raw_addr, f"{field}.addresses[{i}]", address_type))
    )
    cond = v.mapping(p, m.get("conditions"), f"{field}.conditions") or {}
    ready = v.boolean(p, cond.get("ready"), f"{field}.conditions.ready", default=True)
    return SliceEndpoint(good, ready, _target_ref(p, m.get("targetRef"), field, namespace))


def _slice_address(p: v.Problems, raw: object, field: str, address_type: str) -> str | None:
    if address_type != "FQDN":
        return v.ip(p, raw, field, required=True)
    host = v.string(p, raw, field, required=True)
    if host is not None and not v.is_hostname(host):
        p.add(field, f"must be a DNS name for addressType FQDN, got {v.describe(host)}")
        return None
    return host


def _target_ref(p: v.Problems, raw: object, field: str, namespace: str) -> ObjectKey | None:
    ref = v.mapping(p, raw, f"{field}.targetRef")
    if ref is None:
        return None
    kind = v.string(p, ref.get("kind"), f"{field}.targetRef.kind")
    name = v.string(p, ref.get("name"), f"{field}.targetRef.name", required=True)
    ns = v.string(p, ref.get("namespace"), f"{field}.targetRef.namespace") or namespace
    if kind != "Pod" or name is None:
        return None
    return ObjectKey("Pod", ns, name)


_Parser = Callable[[v.Problems, Mapping[str, object], Meta, list[str]], SourceObject]
_ISTIO_VERSIONS = (
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
)

_SECURITY_VERSIONS = ("security.istio.io/v1", "security.istio.io/v1beta1")

_PARSERS: dict[tuple[str, str], tuple[_Parser, NameRule]] = {
    ("v1", "Service"): (_parse_service, SERVICE_NAME),
    ("v1", "Pod"): (_parse_pod, SUBDOMAIN),
    ("discovery.k8s.io/v1", "EndpointSlice"): (_parse_endpoint_slice, SUBDOMAIN),
    ("v1", "Secret"): (parse_secret, SUBDOMAIN),
    **{(api, "Gateway"): (parse_gateway, SUBDOMAIN) for api in _ISTIO_VERSIONS},
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
        (api, "AuthorizationPolicy"): (parse_authorization_policy, SUBDOMAIN)
        for api in _SECURITY_VERSIONS
    },
}
"""Readers by (apiVersion, kind), with the rule their ``metadata.name`` must follow."""
