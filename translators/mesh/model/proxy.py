"""Who is asking: the proxy a translator builds config for.

A proxy is named by its xDS node ID, in Istio's form
``TYPE~IP~POD.NS~NS.svc.cluster.local`` (``sidecar`` or ``router``), and
described by node metadata (Istio's ``NAMESPACE``, ``LABELS``,
``SERVICE_ACCOUNT`` keys). What the metadata leaves out is taken from the Pod
or WorkloadEntry the node ID names in the mesh model, as istiod's
``ParseServiceNodeWithMetadata`` and ``SetWorkloadLabels`` do.

``Proxy`` holds only mesh identity: no nonces, watches or connection state
(Istio's ``model.Proxy`` mixes both, see STYLE.md "Avoid" 1).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from translators.mesh.model import loopback
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import Labels, Workload, labels_of

NODE_ID_FORM: Final = (
    "TYPE~IP~POD.NAMESPACE~DOMAIN (e.g. sidecar~127.0.0.5~web-1.default~default.svc.cluster.local)"
)
"""The node ID form ``parse_node_id`` accepts, quoted in its errors."""

DEFAULT_SERVICE_ACCOUNT: Final = "default"


class ProxyType(enum.Enum):
    """The first part of a node ID: what kind of proxy is asking."""

    SIDECAR = "sidecar"
    ROUTER = "router"
    """A gateway: gets outbound config only, no inbound listeners."""


@dataclass(frozen=True, slots=True)
class NodeId:
    """The parts of an Istio node ID."""

    type: ProxyType
    ip: str
    pod_name: str
    namespace: str
    domain: str


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy's mesh identity: everything translators may read about it.

    Its hash is computed once: every snapshot it is built a key of the builder's memos,
    looked up several times per proxy per change (an ``Enum`` field hashes in Python).
    A pickle carries the fields only, so another process hashes them afresh (``str``
    hashes differ between processes).
    """

    type: ProxyType
    ip: str
    pod_name: str
    namespace: str
    domain: str
    labels: Labels = frozenset()
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash(self._fields()))

    def _fields(self) -> tuple[Any, ...]:
        return (self.type, self.ip, self.pod_name, self.namespace, self.domain, self.labels,
                self.service_account)  # fmt: skip

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Callable[..., Proxy], tuple[Any, ...]]:
        return Proxy, self._fields()

    @property
    def app_address(self) -> str:
        """Where this pod's app listens (see ``translators.mesh.model.loopback``)."""
        return loopback.app_address(self.ip)

    @property
    def outbound_address(self) -> str:
        """Where this proxy binds its outbound listeners (see ``loopback``)."""
        return loopback.outbound_address(self.ip)

    @property
    def id(self) -> str:
        """The node ID, rendered from the fields in Istio's form."""
        return f"{self.type.value}~{self.ip}~{self.pod_name}.{self.namespace}~{self.domain}"


def parse_node_id(node_id: str) -> NodeId:
    """Split an Istio node ID into its parts.

    Raises ``ValueError`` naming the wrong part and the expected form.
    """
    parts = node_id.split("~")
    if len(parts) != 4:
        raise ValueError(
            f"node ID {node_id!r} has {len(parts)} '~'-separated parts, expected 4: {NODE_ID_FORM}"
        )
    kind, ip, pod_ns, domain = parts
    types = {t.value: t for t in ProxyType}
    if kind not in types:
        raise ValueError(
            f"node ID {node_id!r}: type {kind!r} is not one of {sorted(types)}; "
            f"expected {NODE_ID_FORM}"
        )
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise ValueError(
            f"node ID {node_id!r}: {ip!r} is not an IP address; expected {NODE_ID_FORM}"
        ) from None
    # Pod names may hold dots, namespaces may not (they are DNS labels).
    pod, dot, namespace = pod_ns.rpartition(".")
    if not (dot and pod and namespace):
        raise ValueError(
            f"node ID {node_id!r}: {pod_ns!r} is not POD.NAMESPACE; expected {NODE_ID_FORM}"
        )
    if not domain:
        raise ValueError(f"node ID {node_id!r}: the domain is empty; expected {NODE_ID_FORM}")
    return NodeId(types[kind], ip, pod, namespace, domain)


def proxy_from_node(node_id: str, metadata: Mapping[str, Any], model: MeshModel) -> Proxy:
    """The proxy a node names: node ID, then metadata, then the model's workload.

    ``metadata`` is the node's metadata Struct as a plain dict. Precedence:

    - namespace: ``NAMESPACE``, else the node ID's;
    - labels: a non-empty ``LABELS`` map, else the labels of the Pod or
      WorkloadEntry the node ID names (``model.workload(ns, pod)``), else none;
    - service account: ``SERVICE_ACCOUNT``, else the workload's, else ``default``.

    Raises ``ValueError`` for a malformed node ID or metadata value.
    """
    node = parse_node_id(node_id)
    namespace = _metadata_str(metadata, "NAMESPACE") or node.namespace
    workload = model.workload(namespace, node.pod_name)
    labels = _metadata_labels(metadata) or (workload.labels if workload else frozenset())
    return Proxy(
        type=node.type,
        ip=node.ip,
        pod_name=node.pod_name,
        namespace=namespace,
        domain=node.domain,
        labels=labels,
        service_account=_service_account(metadata, workload),
    )


def _service_account(metadata: Mapping[str, Any], workload: Workload | None) -> str:
    from_metadata = _metadata_str(metadata, "SERVICE_ACCOUNT")
    if from_metadata:
        return from_metadata
    if workload is not None and workload.service_account:
        return workload.service_account
    return DEFAULT_SERVICE_ACCOUNT


def _metadata_str(metadata: Mapping[str, Any], key: str) -> str:
    value = metadata.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"node metadata {key} must be a string, got {type(value).__name__}")
    return value


def _metadata_labels(metadata: Mapping[str, Any]) -> Labels:
    value = metadata.get("LABELS")
    if value is None:
        return frozenset()
    if not isinstance(value, Mapping):
        raise ValueError(
            f"node metadata LABELS must be a map of label to value, got {type(value).__name__}"
        )
    return labels_of({str(k): str(v) for k, v in value.items()})
