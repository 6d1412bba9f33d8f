"""The Sidecar resource in the mesh model: what a sidecar may reach and how it accepts.

Frozen and hashable like the rest of ``translators.mesh.model``. Invariants:

1. Egress hosts keep Istio's namespace forms: ``*`` (any namespace), ``.``
   (the namespace the Sidecar is applied in: for a mesh-wide default from
   the root namespace that is the *proxy's* namespace, so it is resolved by
   ``sidecar_scope``, not here), ``~`` (no namespace: nothing), or a name.
2. ``Sidecar.selector`` empty means "namespace default" (and mesh default
   in ``ROOT_NAMESPACE``), as Istio reads an absent ``workloadSelector``.
3. ``IngressListener.default_endpoint`` is as written (``127.0.0.1:PORT``,
   ``0.0.0.0:PORT``, ``[::1]:PORT``, ``unix://...``); mapping it to the
   loopback address plan is the translators' business.
4. ``Sidecar.outbound_traffic_policy`` ``None`` means the mesh's policy; set,
   it overrides it for the proxies the Sidecar applies to. An
   ``egress_proxy`` only comes with ALLOW_ANY (refused otherwise when parsed).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from translators.mesh.model.services import Labels, Protocol

NO_NAMESPACE = "~"
CURRENT_NAMESPACE = "."
ANY_NAMESPACE = "*"


class CaptureMode(enum.Enum):
    """Sidecar ``captureMode``: how traffic reaches the listener (NONE: bound explicitly)."""

    DEFAULT = "DEFAULT"
    IPTABLES = "IPTABLES"
    NONE = "NONE"


class OutboundMode(enum.Enum):
    """``outboundTrafficPolicy.mode``: what happens to traffic for hosts outside the registry.

    REGISTRY_ONLY is the protobuf zero value, so an ``outboundTrafficPolicy``
    without ``mode`` means it (Istio's BlackHoleCluster); ALLOW_ANY passes
    such traffic on (Istio's PassthroughCluster, or the egress proxy)."""

    REGISTRY_ONLY = "REGISTRY_ONLY"
    ALLOW_ANY = "ALLOW_ANY"


@dataclass(frozen=True, slots=True)
class EgressProxy:
    """``outboundTrafficPolicy.egressProxy``: the destination for traffic to unknown hosts."""

    host: str
    port: int
    subset: str = ""


@dataclass(frozen=True, slots=True)
class OutboundTrafficPolicy:
    """A Sidecar's ``outboundTrafficPolicy`` (invariant 4)."""

    mode: OutboundMode = OutboundMode.REGISTRY_ONLY
    egress_proxy: EgressProxy | None = None


@dataclass(frozen=True, slots=True)
class EgressHost:
    """One egress ``hosts`` entry ``namespace/dnsName`` (invariant 1)."""

    namespace: str
    host: str


@dataclass(frozen=True, slots=True)
class SidecarPort:
    """A Sidecar listener's ``port``: number, protocol and name."""

    number: int
    protocol: Protocol
    name: str = ""


@dataclass(frozen=True, slots=True)
class EgressListener:
    """One ``egress[]`` entry; ``port`` ``None`` is the catch-all listener."""

    hosts: tuple[EgressHost, ...]
    port: SidecarPort | None = None
    bind: str = ""
    capture_mode: CaptureMode = CaptureMode.DEFAULT


@dataclass(frozen=True, slots=True)
class IngressListener:
    """One ``ingress[]`` entry: accept on ``port`` and forward to ``default_endpoint``."""

    port: SidecarPort
    default_endpoint: str = ""
    bind: str = ""
    capture_mode: CaptureMode = CaptureMode.DEFAULT


@dataclass(frozen=True, slots=True)
class Sidecar:
    """A Sidecar resource."""

    namespace: str
    name: str
    selector: Labels = frozenset()
    egress: tuple[EgressListener, ...] = ()
    ingress: tuple[IngressListener, ...] = ()
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
    """The Sidecar's own outbound traffic policy; ``None``: the mesh's (invariant 4)."""
