"""The VirtualService part of the mesh model: typed, frozen, hashable.

Sources fill these from ``networking.istio.io`` VirtualService documents
(``translators.mesh.documents.networking.virtual_services``); the route, listener and analysis
translators read them. Invariants:

1. Everything was validated when parsed: regexes compile under RE2,
   weights of a multi-destination route are positive in total (Envoy
   splits by weight / total, as with Istio), durations are whole
   milliseconds (``Millis``), enums are known. Translators never re-check.
2. ``VirtualService.hosts`` and every ``Destination.host`` are resolved: a
   short name became ``name.<vs namespace>.svc.<suffix>``, as Istio
   resolves short names in the namespace of the rule, not of the service.
3. ``None`` means "not set" (Istio's default applies); percentages are
   floats 0-100 as Istio's ``Percent``.
4. Header and query-parameter matches are tuples sorted by name, so equal
   documents give equal models whatever the key order in YAML.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from translators.mesh.model.services import Labels
from translators.mesh.model.traffic import Millis

MESH_GATEWAY = "mesh"
"""The reserved gateway name meaning "every sidecar"."""


class MatchKind(enum.Enum):
    """How a ``StringMatch`` compares; PRESENT is Istio's empty match ``{}`` (or regex ``*``)."""

    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"
    PRESENT = "present"


@dataclass(frozen=True, slots=True)
class StringMatch:
    """Istio's ``StringMatch``: one of exact, prefix or (RE2) regex."""

    kind: MatchKind
    value: str = ""


NamedMatch = tuple[str, StringMatch]
"""A header or query parameter name with its match."""

JWT_CLAIM_PREFIX = "@request.auth.claims"
"""A header match on this prefix matches a claim of the verified JWT (gateways only)."""


def jwt_claim_path(name: str) -> tuple[str, ...]:
    """The claim path of header name ``@request.auth.claims.A.B`` or ``...claims[A][B]``,
    outermost first (Istio's ``ToRoutingClaim``); empty for any other name."""
    rest = name.removeprefix(JWT_CLAIM_PREFIX)
    if rest == name:
        return ()
    if rest.startswith("[") and rest.endswith("]"):
        parts = rest[1:-1].split("][")
    elif rest.startswith("."):
        parts = rest[1:].split(".")
    else:
        return ()
    ok = all(part and "[" not in part and "]" not in part for part in parts)
    return tuple(parts) if ok else ()


@dataclass(frozen=True, slots=True)
class HttpMatch:
    """``http[].match[]``: every set condition must hold (AND)."""

    name: str = ""
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: tuple[NamedMatch, ...] = ()
    without_headers: tuple[NamedMatch, ...] = ()
    query_params: tuple[NamedMatch, ...] = ()
    port: int | None = None
    source_labels: Labels = frozenset()
    source_namespace: str = ""
    gateways: tuple[str, ...] = ()
    ignore_uri_case: bool = False


@dataclass(frozen=True, slots=True)
class Destination:
    """A destination: a service host (resolved FQDN), an optional subset and port."""

    host: str
    subset: str = ""
    port: int | None = None
    written: str = field(default="", compare=False)
    """The host as its VirtualService wrote it (``reviews``), for messages; not compared."""


@dataclass(frozen=True, slots=True)
class HeaderOperations:
    """``headers``: request and response ``set``/``add`` pairs and ``remove`` names."""

    request_set: tuple[tuple[str, str], ...] = ()
    request_add: tuple[tuple[str, str], ...] = ()
    request_remove: tuple[str, ...] = ()
    response_set: tuple[tuple[str, str], ...] = ()
    response_add: tuple[tuple[str, str], ...] = ()
    response_remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteDestination:
    """``route[]``: a destination and its weight (``None``: unset, meaning 0 among several)."""

    destination: Destination
    weight: int | None = None
    headers: HeaderOperations | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """``redirect``: empty strings and ``None`` leave that part of the request as it was."""

    uri: str = ""
    authority: str = ""
    redirect_code: int = 301
    scheme: str = ""
    port: int | None = None
    derive_port_from_request: bool = False


@dataclass(frozen=True, slots=True)
class Rewrite:
    """``rewrite``: a prefix ``uri`` or a ``uriRegexRewrite``, and/or an ``authority``."""

    uri: str = ""
    authority: str = ""
    regex_match: str = ""
    regex_rewrite: str = ""


@dataclass(frozen=True, slots=True)
class Retries:
    """``retries``; ``attempts`` 0 disables retries."""

    attempts: int = 0
    per_try_timeout: Millis | None = None
    retry_on: str = ""
    retry_remote_localities: bool | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """``fault``: a fixed delay and/or an abort (an HTTP status, or a gRPC status code),
    each for a percentage of requests."""

    delay: Millis | None = None
    delay_percent: float | None = None
    abort_status: int | None = None
    abort_percent: float | None = None
    abort_grpc_status: int | None = None
    """``abort.grpcStatus`` as its code (``UNAVAILABLE``: 14); set instead of ``abort_status``."""

    @property
    def aborts(self) -> bool:
        """Whether the fault aborts requests (with either kind of status)."""
        return self.abort_status is not None or self.abort_grpc_status is not None


@dataclass(frozen=True, slots=True)
class Mirror:
    """``mirror`` with ``mirrorPercentage`` (``None``: every request)."""

    destination: Destination
    percent: float | None = None


@dataclass(frozen=True, slots=True)
class Cors:
    """``corsPolicy``."""

    allow_origins: tuple[StringMatch, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: Millis | None = None
    allow_credentials: bool | None = None


@dataclass(frozen=True, slots=True)
class DirectResponse:
    """``directResponse``: a fixed status and optional string body."""

    status: int
    body: str = ""


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """``http[]``: the first whose match holds handles the request."""

    name: str = ""
    matches: tuple[HttpMatch, ...] = ()
    route: tuple[RouteDestination, ...] = ()
    redirect: Redirect | None = None
    direct_response: DirectResponse | None = None
    rewrite: Rewrite | None = None
    timeout: Millis | None = None
    retries: Retries | None = None
    fault: Fault | None = None
    mirror: Mirror | None = None
    headers: HeaderOperations | None = None
    cors: Cors | None = None


@dataclass(frozen=True, slots=True)
class L4Match:
    """``tcp[].match[]`` / ``tls[].match[]``; ``sni_hosts`` is for TLS routes only."""

    port: int | None = None
    source_labels: Labels = frozenset()
    source_namespace: str = ""
    gateways: tuple[str, ...] = ()
    sni_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class L4Route:
    """A ``tcp[]`` or ``tls[]`` route: matches (any) and weighted destinations."""

    matches: tuple[L4Match, ...] = ()
    route: tuple[RouteDestination, ...] = ()


@dataclass(frozen=True, slots=True)
class VirtualService:
    """A VirtualService; ``gateways`` empty was filled with ``mesh`` by the parser."""

    namespace: str
    name: str
    hosts: tuple[str, ...]
    gateways: tuple[str, ...] = (MESH_GATEWAY,)
    export_to: tuple[str, ...] = ()
    """Empty: visible everywhere (Istio's default ``*``)."""
    http: tuple[HttpRoute, ...] = ()
    tcp: tuple[L4Route, ...] = ()
    tls: tuple[L4Route, ...] = ()

    @property
    def key(self) -> str:
        """``namespace/name``, for messages."""
        return f"{self.namespace}/{self.name}"
