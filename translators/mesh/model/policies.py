"""The security part of the mesh model: PeerAuthentication, RequestAuthentication,
AuthorizationPolicy, DestinationRule.

Typed, frozen and hashable like the rest of ``translators.mesh.model``; sources
fill them from ``security.istio.io`` and ``networking.istio.io`` documents
(``documents.networking.destination_rules``, ``documents.security``), translators read them
(``selection.peer_authentication``, ``selection.request_authentication``,
``envoy.tls.mtls``, ``envoy.listeners.authz``, ``envoy.listeners.jwt_authn``). Invariants:

1. ``Policies`` holds every collection as a tuple sorted by (namespace,
   name), so equal configs give equal (and equally hashed) policies whatever
   order the files were read in. "The first policy" at a precedence level is
   the first by name: Istio takes the oldest by creation time, which files
   do not have.
2. An empty ``selector`` means "no selector": the policy is namespace-wide
   (or mesh-wide in ``ROOT_NAMESPACE``), as Istio reads an empty
   ``matchLabels``.
3. ``DestinationRule.host`` is already resolved: a short name became the
   FQDN in the rule's namespace when the model was built.
4. Everything unsupported was refused when parsing (CUSTOM action,
   ``targetRefs``), so translators never meet it.
5. A ``JwtRule`` holds exactly one key source, inline ``jwks`` or a parsed
   ``jwks_uri``: reading refuses both and neither
   (``documents.security.request_authentication``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from translators.mesh.model.services import Labels
from translators.mesh.model.traffic import ConnectionPool, LoadBalancer, OutlierDetection

ROOT_NAMESPACE = "istio-system"
"""Istio's default ``meshConfig.rootNamespace``: its policies without selector apply mesh-wide."""

TRUST_DOMAIN = "cluster.local"
"""Istio's default ``meshConfig.trustDomain``: SPIFFE IDs are ``spiffe://cluster.local/ns/NS/sa/SA``."""

TLS_MODE_LABEL = "security.istio.io/tlsMode"
"""The label Istio's sidecar injector puts on pods: ``istio`` means "has a sidecar, speaks mTLS"."""

TLS_MODE_ISTIO = "istio"


class MtlsMode(enum.Enum):
    """PeerAuthentication ``mtls.mode``: what a workload's sidecar accepts."""

    UNSET = "UNSET"
    """Inherit from the parent level (namespace, then mesh, then PERMISSIVE)."""
    DISABLE = "DISABLE"
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    """A PeerAuthentication: the mTLS mode of the workloads it selects, per port if given.

    ``port_modes`` is keyed by workload (container) port and only allowed
    with a selector, as Istio validates.
    """

    namespace: str
    name: str
    selector: Labels = frozenset()
    mode: MtlsMode = MtlsMode.UNSET
    port_modes: tuple[tuple[int, MtlsMode], ...] = ()


class AuthzAction(enum.Enum):
    """AuthorizationPolicy ``action`` (CUSTOM is refused when parsing)."""

    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"


@dataclass(frozen=True, slots=True)
class JwksUri:
    """A ``jwksUri`` taken apart, as Istio's ``ParseJwksURI``: the port defaults to the
    scheme's (80, 443)."""

    uri: str
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class JwtHeader:
    """``fromHeaders[]``: a header carrying the token, after ``prefix`` (``Bearer ``)."""

    name: str
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class ClaimToHeader:
    """``outputClaimToHeaders[]``: copy claim ``claim`` of a verified token to ``header``."""

    header: str
    claim: str


@dataclass(frozen=True, slots=True)
class JwtRule:
    """``jwtRules[]``: how to verify tokens of one issuer (one Envoy JWT provider).

    Without ``from_headers``, ``from_params`` and ``from_cookies`` Envoy reads
    ``Authorization: Bearer`` and the ``access_token`` query parameter.
    """

    issuer: str
    audiences: tuple[str, ...] = ()
    jwks_uri: JwksUri | None = None
    jwks: str = ""
    from_headers: tuple[JwtHeader, ...] = ()
    from_params: tuple[str, ...] = ()
    from_cookies: tuple[str, ...] = ()
    output_payload_to_header: str = ""
    output_claim_to_headers: tuple[ClaimToHeader, ...] = ()
    forward_original_token: bool = False
    timeout_ms: int = 0
    """``timeout`` of the JWKS fetch in milliseconds; 0: Istio's default (5 s)."""
    space_delimited_claims: tuple[str, ...] = ()
    """``spaceDelimitedClaims``: claims split on spaces besides ``scope`` and ``permission``."""


@dataclass(frozen=True, slots=True)
class RequestAuthentication:
    """A RequestAuthentication: the JWT rules of the workloads it selects.

    Every RequestAuthentication that applies to a workload adds its rules
    (``selection.request_authentication``); none overrides another.
    """

    namespace: str
    name: str
    selector: Labels = frozenset()
    rules: tuple[JwtRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Source:
    """``rules[].from[].source``: who sends; every non-empty field must match (AND)."""

    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    request_principals: tuple[str, ...] = ()
    """``requestPrincipals``: ``ISS/SUB`` of a verified JWT (``*``, ``x*`` and ``*x`` allowed)."""
    not_request_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()
    ip_blocks: tuple[str, ...] = ()
    not_ip_blocks: tuple[str, ...] = ()
    remote_ip_blocks: tuple[str, ...] = ()
    not_remote_ip_blocks: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    """``serviceAccounts`` as ``namespace/name``: a bare name was put in the policy's namespace."""
    not_service_accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Operation:
    """``rules[].to[].operation``: what is asked; every non-empty field must match (AND).

    Ports are kept as Istio's strings (already checked to be port numbers).
    """

    hosts: tuple[str, ...] = ()
    not_hosts: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    not_ports: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """``rules[].when[]``: ``key`` has a value in ``values`` and none in ``not_values``."""

    key: str
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()


_HEADER_KEY = re.compile(r"^request\.headers\[([^\[\]]+)\]$")


def header_name(key: str) -> str:
    """The header name in a ``request.headers[NAME]`` condition key ('' for other keys)."""
    match = _HEADER_KEY.match(key)
    return match.group(1) if match else ""


_CLAIM_KEY = re.compile(r"^request\.auth\.claims((?:\[[^\[\]]+\])+)$")


def claim_path(key: str) -> tuple[str, ...]:
    """The claim names in a ``request.auth.claims[NAME][INNER]...`` key, outermost first
    (empty for other keys)."""
    match = _CLAIM_KEY.match(key)
    return tuple(match.group(1)[1:-1].split("][")) if match else ()


@dataclass(frozen=True, slots=True)
class AuthzRule:
    """One rule: any ``sources`` (OR) and any ``operations`` (OR) and all ``conditions``.

    An empty tuple means the part is absent and matches everything, so
    ``AuthzRule()`` (``rules: [{}]``) matches every request.
    """

    sources: tuple[Source, ...] = ()
    operations: tuple[Operation, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    """An AuthorizationPolicy: ``rules`` empty means "matches nothing" (ALLOW: deny all).

    ``dry_run`` (annotation ``istio.io/dry-run``, ALLOW and DENY only) means the
    policy is evaluated and reported but never enforced: Envoy's shadow rules.
    """

    namespace: str
    name: str
    action: AuthzAction = AuthzAction.ALLOW
    selector: Labels = frozenset()
    rules: tuple[AuthzRule, ...] = ()
    dry_run: bool = False


class ClientTlsMode(enum.Enum):
    """DestinationRule ``trafficPolicy.tls.mode``.

    SIMPLE and MUTUAL originate TLS to a non-mesh server with certificates
    from files (``caCertificates``, ``clientCertificate``, ``privateKey``) or
    from the Secret named by ``credentialName``.
    """

    DISABLE = "DISABLE"
    SIMPLE = "SIMPLE"
    MUTUAL = "MUTUAL"
    ISTIO_MUTUAL = "ISTIO_MUTUAL"


@dataclass(frozen=True, slots=True)
class ClientTls:
    """A DestinationRule's TLS settings for upstream connections."""

    mode: ClientTlsMode
    subject_alt_names: tuple[str, ...] = ()
    """Identities the server must present (ISTIO_MUTUAL); empty: any cert from the mesh CA."""
    sni: str = ""
    ca_certificates: str = ""
    """SIMPLE/MUTUAL: file of CA certificates that verify the server (empty: not verified)."""
    client_certificate: str = ""
    """MUTUAL: file of the client's certificate chain."""
    private_key: str = ""
    """MUTUAL: file of the client's private key."""
    credential_name: str = ""
    """SIMPLE/MUTUAL: the Secret holding the client certificate, key and CA, instead of the
    files above (which are then all empty, as validation requires). Read from the proxy's own
    namespace and served over SDS (``envoy.tls.origination_secrets``)."""
    insecure_skip_verify: bool = False
    """SIMPLE/MUTUAL: do not verify the server; then ``ca_certificates`` and
    ``subject_alt_names`` are empty (and, for SIMPLE, ``credential_name``), as Istio validates."""


@dataclass(frozen=True, slots=True)
class PortTrafficPolicy:
    """``trafficPolicy.portLevelSettings[]``: settings for one service port.

    As Istio documents, port-level settings replace the rule-level ones
    wholesale: a field left out here takes its default, not the rule's
    (see ``translators.mesh.selection.traffic_policy``).
    """

    port: int
    tls: ClientTls | None = None
    load_balancer: LoadBalancer | None = None
    connection_pool: ConnectionPool | None = None
    outlier_detection: OutlierDetection | None = None


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    """``trafficPolicy``: TLS, load balancing, connection pool, outlier detection, per port."""

    tls: ClientTls | None = None
    port_level: tuple[PortTrafficPolicy, ...] = ()
    load_balancer: LoadBalancer | None = None
    connection_pool: ConnectionPool | None = None
    outlier_detection: OutlierDetection | None = None

    def tls_for(self, port: int) -> ClientTls | None:
        """The TLS settings for a service port: the port-level ones if set, else the rule's."""
        for settings in self.port_level:
            if settings.port == port and settings.tls is not None:
                return settings.tls
        return self.tls


@dataclass(frozen=True, slots=True)
class DestinationRule:
    """A DestinationRule: policies for traffic to ``host`` (an FQDN or ``*.suffix``).

    ``subsets`` are named groups of the host's endpoints (by labels), each
    with its own cluster ``outbound|PORT|SUBSET|HOST`` and optional policy.
    """

    namespace: str
    name: str
    host: str
    traffic_policy: TrafficPolicy = TrafficPolicy()
    subsets: tuple[Subset, ...] = ()

    def subset(self, name: str) -> Subset | None:
        """The subset with this name, if the rule defines it."""
        return next((s for s in self.subsets if s.name == name), None)


@dataclass(frozen=True, slots=True)
class Subset:
    """``subsets[]``: endpoints whose labels include ``labels``, with an optional policy."""

    name: str
    labels: Labels
    traffic_policy: TrafficPolicy | None = None


@dataclass(frozen=True, slots=True)
class Policies:
    """Every security policy of the mesh: one hashable value, so translators can memoize on it."""

    peer_authentications: tuple[PeerAuthentication, ...] = ()
    authorization_policies: tuple[AuthorizationPolicy, ...] = ()
    destination_rules: tuple[DestinationRule, ...] = ()
    request_authentications: tuple[RequestAuthentication, ...] = ()

    @staticmethod
    def build(
        peer_authentications: tuple[PeerAuthentication, ...] = (),
        authorization_policies: tuple[AuthorizationPolicy, ...] = (),
        destination_rules: tuple[DestinationRule, ...] = (),
        request_authentications: tuple[RequestAuthentication, ...] = (),
    ) -> Policies:
        """Policies with every collection sorted by (namespace, name)."""

        def key(
            p: PeerAuthentication | AuthorizationPolicy | DestinationRule | RequestAuthentication,
        ) -> tuple[str, str]:
            return (p.namespace, p.name)

        return Policies(
            tuple(sorted(peer_authentications, key=key)),
            tuple(sorted(authorization_policies, key=key)),
            tuple(sorted(destination_rules, key=key)),
            tuple(sorted(request_authentications, key=key)),
        )


NO_POLICIES = Policies()
"""A mesh without security policies: every workload PERMISSIVE, auto mTLS, no authorization."""
