"""What the protocol core takes in (requests) and gives out (actions).

Requests are the protocol-relevant parts of ``DiscoveryRequest`` and
``DeltaDiscoveryRequest``, converted at the transport edge so the core never
sees protobuf. Actions are what the transport must do (``Send``, ``Close``) or
may record (``Acked``, ``Nacked``, ``Ignored``): the core does no logging.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from xds_server.snapshot import Part, Resource


@dataclass(frozen=True, slots=True)
class SotwRequest:
    """A state-of-the-world ``DiscoveryRequest``."""

    type_url: str
    version_info: str = ""
    response_nonce: str = ""
    resource_names: tuple[str, ...] = ()
    error_detail: str | None = None
    """Envoy's ``error_detail.message`` when it rejects a response (NACK), else None."""


@dataclass(frozen=True, slots=True)
class DeltaRequest:
    """A ``DeltaDiscoveryRequest``."""

    type_url: str
    response_nonce: str = ""
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    initial_resource_versions: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    error_detail: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """Send one response: every ``Resource`` in ``resources``, and ``removed`` names (delta).

    ``version`` is the type's snapshot version (``version_info`` in SotW,
    ``system_version_info`` in delta). ``delta`` tells which message to encode.
    """

    type_url: str
    version: str
    nonce: str
    resources: tuple[Resource, ...]
    removed: tuple[str, ...] = ()
    delta: bool = False
    whole: tuple[Part, ...] = ()
    """Parts sent whole (state of the world only): encoded once, shared by every stream."""

    def resource_count(self) -> int:
        """How many resources the response carries, whole parts included (no copying)."""
        return len(self.resources) + sum(len(p) for p in self.whole)

    def items(self) -> tuple[Resource, ...]:
        """Every resource the response carries, whole parts included."""
        return (*(r for p in self.whole for r in p.resources.values()), *self.resources)


@dataclass(frozen=True, slots=True)
class Acked:
    """The proxy applied ``version`` of ``type_url``."""

    type_url: str
    version: str
    nonce: str


@dataclass(frozen=True, slots=True)
class Nacked:
    """The proxy rejected ``version``; it keeps its previous config. ``detail`` is Envoy's text."""

    type_url: str
    version: str
    nonce: str
    detail: str


class IgnoreReason(enum.Enum):
    """Why a request changed nothing."""

    STALE_NONCE = "stale nonce: the request answers a response that has been superseded"
    ANSWERED = "repeated answer: the response this request answers was already ACKed or NACKed"
    UNKNOWN_TYPE = "unknown type URL"
    DENIED = "permission denied: this stream may not receive this type"


@dataclass(frozen=True, slots=True)
class Ignored:
    """A request that the protocol says to ignore, with the reason."""

    type_url: str
    reason: IgnoreReason
    nonce: str = ""


@dataclass(frozen=True, slots=True)
class Close:
    """End the stream with a gRPC status (by name) and a reason for the proxy."""

    code: str
    reason: str


Action = Send | Acked | Nacked | Ignored | Close
