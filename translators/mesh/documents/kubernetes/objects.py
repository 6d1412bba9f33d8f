"""Read Kubernetes' own kinds: ``v1`` Service and Pod, ``discovery.k8s.io/v1`` EndpointSlice.

Called by ``kinds.parse_object``, which reads ``metadata`` first. Invariants:

1. Only TCP ports enter the model: UDP/SCTP ports are dropped with a warning,
   as Istio proxies neither (``kubernetes_ports``).
2. A Service's ``type`` is one Kubernetes knows; ``clusterIP`` is an IP or
   ``None``; an ExternalName Service names a DNS host.
3. EndpointSlice addresses match the slice's ``addressType``; an endpoint
   without ``conditions.ready`` is ready, as Kubernetes reads it.
4. A Pod gets the label ``security.istio.io/tlsMode: istio`` unless it opts
   out of injection (``sidecar.istio.io/inject: "false"``, as a label or an
   annotation), as Istio's sidecar injector would add it; a value already
   set is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import export_to_list
from translators.mesh.documents.kubernetes.ports import (
    SlicePort,
    container_ports,
    service_ports,
    slice_ports,
)
from translators.mesh.documents.meta import Meta
from translators.mesh.model.policies import TLS_MODE_ISTIO, TLS_MODE_LABEL
from translators.mesh.model.services import Labels, ObjectKey, ServicePort

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


def _spec(p: v.Problems, doc: Mapping[str, object]) -> Mapping[str, object]:
    return v.mapping(p, doc.get("spec"), "spec") or {}


def parse_service(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> ServiceObject:
    """A ``v1 Service``: ports, type, cluster IP, selector and the exportTo annotation."""
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


def parse_pod(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> PodObject:
    """A ``v1 Pod``: service account, pod IP, named container ports, injected labels."""
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
    return replace(meta, labels=frozenset(labels.items()))


def parse_endpoint_slice(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> EndpointSliceObject:
    """A ``discovery.k8s.io/v1 EndpointSlice``: its ports and endpoints, addresses checked."""
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
