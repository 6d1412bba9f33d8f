"""The field names Istio's API accepts, and a walker that finds the keys it does not.

This module holds our own compact description of every field an Istio object
may carry in its ``spec`` (``ISTIO_SPECS``: VirtualService, DestinationRule,
Gateway, ServiceEntry, WorkloadEntry and Sidecar of ``networking.istio.io``;
PeerAuthentication, RequestAuthentication and AuthorizationPolicy of
``security.istio.io``), of
Kubernetes ``ObjectMeta`` (``OBJECT_META``) and of a document's top level, as
the generated CRD schemas of the current Istio API list them (JSON names,
lowerCamelCase, plus the deprecated names the schemas still carry, such as
``mirror_percent``). ``unknown_fields``, ``unknown_metadata_fields`` and
``unknown_top_level`` return the dotted path of every key that is not a known
field, as ``kubectl apply --validate=strict`` reports them.

Invariants:

1. The walkers are pure and total: they never raise, whatever the input. A
   value of the wrong type (a string where a mapping is expected) is not
   descended into; type errors are the field readers' to report.
2. Paths are dotted with list indices, as kubectl writes them:
   ``spec.http[0].retires``. Keys of free maps render as a segment:
   ``spec.portLevelMtls.8080.mod``.
3. Paths come in document order, every unknown key once; nothing below an
   unknown key is looked at.
4. Lists are transparent: a list is checked element by element against the
   shape of the field that holds it. The keys of a free map (labels, header
   names, port names) are never reported; only its values are checked.
5. A kind not described here yields no unknown field: this module refuses only
   what it knows to be wrong.

Why: a misspelt field (``retires:`` for ``retries:``) is otherwise silently
ignored and the object does something other than what its author meant; Istio
behind Kubernetes refuses it at ``kubectl apply``, so pyistiod does too.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias


class Leaf(enum.Enum):
    """The shape of a value whose inside is not checked: a scalar, a list of
    scalars, or a free-form object (``status``, ``managedFields[].fieldsV1``)."""

    LEAF = "leaf"


LEAF: Final = Leaf.LEAF
"""The one ``Leaf``: the value of this field is not descended into."""


@dataclass(frozen=True, slots=True)
class Fields:
    """An object with a closed set of field names, each mapped to its value's shape."""

    names: Mapping[str, Shape]


@dataclass(frozen=True, slots=True)
class MapOf:
    """A map of free keys (labels, header names, ports) to values of ``value``'s shape."""

    value: Shape


Shape: TypeAlias = Fields | MapOf | Leaf
"""What a value must look like: an object of known fields, a free map, or a leaf."""

FREE: Final = MapOf(LEAF)
"""A map of free keys to scalars: labels, annotations, ``headers.request.set``."""

_MAX_DEPTH = 64  # no Istio object nests half as deep; deeper input is not descended


def fields(leaves: str = "", /, **shaped: Shape) -> Fields:
    """``Fields`` of the space-separated scalar ``leaves`` and the ``shaped`` sub-objects."""
    names: dict[str, Shape] = dict.fromkeys(leaves.split(), LEAF)
    names.update(shaped)
    return Fields(MappingProxyType(names))


def find_unknown(shape: Shape, value: object, path: str) -> list[str]:
    """The path of every key of ``value`` (found at ``path``) that ``shape`` does not know."""
    return [u.path for u in find_unknown_fields(shape, value, path)]


@dataclass(frozen=True, slots=True)
class UnknownField:
    """A key no field of its object bears: its path and the known names closest to it."""

    path: str
    close: tuple[str, ...] = ()
    """Known names of the same object that look like the key (``retries`` for ``retires``)."""

    def reason(self) -> str:
        """The words for an error message: ``unknown field; did you mean "retries"?``."""
        if not self.close:
            return "unknown field (not in Istio's schema for this object)"
        return "unknown field; did you mean " + " or ".join(f'"{c}"' for c in self.close) + "?"


def find_unknown_fields(shape: Shape, value: object, path: str) -> list[UnknownField]:
    """Every key of ``value`` (found at ``path``) that ``shape`` does not know, with hints."""
    found: list[UnknownField] = []
    _walk(shape, value, path, found, set(), 0)
    return found


def _walk(
    shape: Shape, value: object, path: str, found: list[UnknownField], open_: set[int], depth: int
) -> None:
    if isinstance(shape, Leaf) or depth > _MAX_DEPTH or id(value) in open_:
        return  # a leaf, absurdly deep input, or a YAML alias cycle
    if isinstance(value, list | tuple):
        open_.add(id(value))
        for i, item in enumerate(value):
            _walk(shape, item, f"{path}[{i}]", found, open_, depth + 1)
        open_.discard(id(value))
        return
    if not isinstance(value, Mapping):
        return
    open_.add(id(value))
    for key, item in value.items():
        sub = f"{path}.{key}" if path else str(key)
        if isinstance(shape, MapOf):
            _walk(shape.value, item, sub, found, open_, depth + 1)
        elif (known := shape.names.get(key) if isinstance(key, str) else None) is None:
            close = difflib.get_close_matches(str(key), list(shape.names), n=2, cutoff=0.75)
            found.append(UnknownField(sub, tuple(close)))
        else:
            _walk(known, item, sub, found, open_, depth + 1)
    open_.discard(id(value))


# -- Shared messages (istio.networking.v1alpha3, istio.type.v1beta1) ---------------------

_STRING_MATCH = fields("exact prefix regex")
_PERCENT = fields("value")
_PORT = fields("name number protocol targetPort")
_DESTINATION = fields("host subset", port=fields("number"))
_NETWORKING_SELECTOR = fields(labels=FREE)  # networking WorkloadSelector: ``labels``
_POLICY_SELECTOR = fields(matchLabels=FREE)  # type.v1beta1.WorkloadSelector: ``matchLabels``
_POLICY_TARGET = fields("group kind name namespace")
_HEADER_OPERATIONS = fields("remove", add=FREE, set=FREE)
_HEADERS = fields(request=_HEADER_OPERATIONS, response=_HEADER_OPERATIONS)

_CONNECTION_POOL = fields(
    tcp=fields(
        "connectTimeout idleTimeout maxConnectionDuration maxConnections",
        tcpKeepalive=fields("interval probes time"),
    ),
    http=fields(
        "h2UpgradePolicy http1MaxPendingRequests http2MaxRequests idleTimeout"
        " maxConcurrentStreams maxRequestsPerConnection maxRetries useClientProtocol"
    ),
)
_LOAD_BALANCER = fields(
    "simple warmupDurationSecs",
    consistentHash=fields(
        "httpHeaderName httpQueryParameterName useSourceIp minimumRingSize",
        httpCookie=fields("name path ttl", attributes=fields("name value")),
        ringHash=fields("minimumRingSize"),
        maglev=fields("tableSize"),
    ),
    localityLbSetting=fields(
        "enabled failoverPriority",
        distribute=fields("from", to=FREE),
        failover=fields("from to"),
    ),
    warmup=fields("duration minimumPercent aggression"),
)
_OUTLIER_DETECTION = fields(
    "baseEjectionTime consecutive5xxErrors consecutiveErrors consecutiveGatewayErrors"
    " consecutiveLocalOriginFailures interval maxEjectionPercent minHealthPercent"
    " splitExternalLocalOriginErrors"
)
_CLIENT_TLS = fields(
    "mode clientCertificate privateKey caCertificates credentialName subjectAltNames"
    " sni insecureSkipVerify caCrl"
)
_SERVER_TLS = fields(
    "httpsRedirect mode serverCertificate privateKey caCertificates caCertCredentialName"
    " credentialName credentialNames subjectAltNames verifyCertificateSpki"
    " verifyCertificateHash minProtocolVersion maxProtocolVersion cipherSuites caCrl",
    tlsCertificates=fields("serverCertificate privateKey caCertificates"),
)
_TRAFFIC_POLICY = fields(
    connectionPool=_CONNECTION_POOL,
    loadBalancer=_LOAD_BALANCER,
    outlierDetection=_OUTLIER_DETECTION,
    tls=_CLIENT_TLS,
    portLevelSettings=fields(
        port=fields("number"),
        connectionPool=_CONNECTION_POOL,
        loadBalancer=_LOAD_BALANCER,
        outlierDetection=_OUTLIER_DETECTION,
        tls=_CLIENT_TLS,
    ),
    tunnel=fields("protocol targetHost targetPort"),
    proxyProtocol=fields("version"),
    retryBudget=fields("percent minRetryConcurrency"),
)
_WORKLOAD_ENTRY = fields("address network locality weight serviceAccount", labels=FREE, ports=FREE)

# -- VirtualService ---------------------------------------------------------------------

_HTTP_MATCH = fields(
    "name port ignoreUriCase gateways sourceNamespace statPrefix",
    uri=_STRING_MATCH,
    scheme=_STRING_MATCH,
    method=_STRING_MATCH,
    authority=_STRING_MATCH,
    headers=MapOf(_STRING_MATCH),
    queryParams=MapOf(_STRING_MATCH),
    withoutHeaders=MapOf(_STRING_MATCH),
    sourceLabels=FREE,
)
_HTTP_ROUTE = fields(
    "name timeout mirror_percent mirrorPercent",
    match=_HTTP_MATCH,
    route=fields("weight", destination=_DESTINATION, headers=_HEADERS),
    redirect=fields("uri authority port derivePort scheme redirectCode"),
    directResponse=fields("status", body=fields("string bytes")),
    delegate=fields("name namespace"),
    rewrite=fields("uri authority", uriRegexRewrite=fields("match rewrite")),
    retries=fields(
        "attempts perTryTimeout retryOn retryRemoteLocalities retryIgnorePreviousHosts backoff"
    ),
    fault=fields(
        delay=fields("fixedDelay exponentialDelay percent", percentage=_PERCENT),
        abort=fields("httpStatus grpcStatus http2Error", percentage=_PERCENT),
    ),
    mirror=_DESTINATION,
    mirrorPercentage=_PERCENT,
    mirrors=fields(destination=_DESTINATION, percentage=_PERCENT),
    corsPolicy=fields(
        "allowOrigin allowMethods allowHeaders exposeHeaders maxAge allowCredentials"
        " unmatchedPreflights",
        allowOrigins=_STRING_MATCH,
    ),
    headers=_HEADERS,
)
_L4_ROUTE = fields("weight", destination=_DESTINATION)
_VIRTUAL_SERVICE = fields(
    "hosts gateways exportTo",
    http=_HTTP_ROUTE,
    tls=fields(
        match=fields(
            "sniHosts destinationSubnets port gateways sourceNamespace", sourceLabels=FREE
        ),
        route=_L4_ROUTE,
    ),
    tcp=fields(
        match=fields(
            "destinationSubnets port sourceSubnet gateways sourceNamespace", sourceLabels=FREE
        ),
        route=_L4_ROUTE,
    ),
)

# -- The other kinds --------------------------------------------------------------------

_DESTINATION_RULE = fields(
    "host exportTo",
    trafficPolicy=_TRAFFIC_POLICY,
    subsets=fields("name", labels=FREE, trafficPolicy=_TRAFFIC_POLICY),
    workloadSelector=_POLICY_SELECTOR,
)
_GATEWAY = fields(
    selector=FREE,
    servers=fields("bind hosts defaultEndpoint name", port=_PORT, tls=_SERVER_TLS),
)
_SERVICE_ENTRY = fields(
    "hosts addresses location resolution exportTo subjectAltNames",
    ports=_PORT,
    endpoints=_WORKLOAD_ENTRY,
    workloadSelector=_NETWORKING_SELECTOR,
)
_SIDECAR = fields(
    workloadSelector=_NETWORKING_SELECTOR,
    ingress=fields(
        "bind captureMode defaultEndpoint",
        port=_PORT,
        tls=_SERVER_TLS,
        connectionPool=_CONNECTION_POOL,
    ),
    egress=fields("bind captureMode hosts", port=_PORT),
    inboundConnectionPool=_CONNECTION_POOL,
    outboundTrafficPolicy=fields("mode", egressProxy=_DESTINATION),
)
_PEER_AUTHENTICATION = fields(
    selector=_POLICY_SELECTOR,
    mtls=fields("mode"),
    portLevelMtls=MapOf(fields("mode")),
)
_REQUEST_AUTHENTICATION = fields(
    selector=_POLICY_SELECTOR,
    targetRef=_POLICY_TARGET,
    targetRefs=_POLICY_TARGET,
    jwtRules=fields(
        "issuer audiences jwksUri jwks fromParams fromCookies outputPayloadToHeader"
        " forwardOriginalToken timeout spaceDelimitedClaims",
        fromHeaders=fields("name prefix"),
        outputClaimToHeaders=fields("header claim"),
    ),
)
_AUTHORIZATION_POLICY = fields(
    "action",
    selector=_POLICY_SELECTOR,
    targetRef=_POLICY_TARGET,
    targetRefs=_POLICY_TARGET,
    provider=fields("name"),
    rules=fields(
        **{
            "from": fields(
                source=fields(
                    "principals notPrincipals requestPrincipals notRequestPrincipals"
                    " namespaces notNamespaces serviceAccounts notServiceAccounts"
                    " ipBlocks notIpBlocks remoteIpBlocks notRemoteIpBlocks"
                )
            ),
            "to": fields(
                operation=fields("hosts notHosts ports notPorts methods notMethods paths notPaths")
            ),
            "when": fields("key values notValues"),
        }
    ),
)

ISTIO_SPECS: Final[Mapping[str, Fields]] = MappingProxyType(
    {
        "VirtualService": _VIRTUAL_SERVICE,
        "DestinationRule": _DESTINATION_RULE,
        "Gateway": _GATEWAY,
        "ServiceEntry": _SERVICE_ENTRY,
        "WorkloadEntry": _WORKLOAD_ENTRY,
        "Sidecar": _SIDECAR,
        "PeerAuthentication": _PEER_AUTHENTICATION,
        "RequestAuthentication": _REQUEST_AUTHENTICATION,
        "AuthorizationPolicy": _AUTHORIZATION_POLICY,
    }
)
"""The shape of ``spec`` for each Istio kind, by kind name (every served apiVersion alike)."""

OBJECT_META: Final = fields(
    "name generateName namespace selfLink uid resourceVersion generation"
    " creationTimestamp deletionTimestamp deletionGracePeriodSeconds finalizers",
    labels=FREE,
    annotations=FREE,
    ownerReferences=fields("apiVersion kind name uid controller blockOwnerDeletion"),
    managedFields=fields("manager operation apiVersion time fieldsType fieldsV1 subresource"),
)
"""Kubernetes ``ObjectMeta``: the fields ``metadata`` may carry."""

ISTIO_TOP_LEVEL: Final = fields("apiVersion kind metadata spec status")
"""The top-level keys of an Istio object; ``status`` is free-form."""


def unknown_fields(kind: str, spec: object) -> list[str]:
    """Paths (``spec.http[0].retires``) of the keys of ``spec`` that ``kind`` does not know.

    A kind not in ``ISTIO_SPECS`` yields ``[]``.
    """
    shape = ISTIO_SPECS.get(kind)
    return [] if shape is None else find_unknown(shape, spec, "spec")


def unknown_metadata_fields(metadata: object) -> list[str]:
    """Paths (``metadata.lables``) of the keys of ``metadata`` that ``ObjectMeta`` does not know."""
    return find_unknown(OBJECT_META, metadata, "metadata")


def unknown_top_level(kind: str, doc: object) -> list[str]:
    """The top-level keys of ``doc`` (``spce``) that an object of ``kind`` may not carry.

    Only the top level is looked at; a kind not in ``ISTIO_SPECS`` yields ``[]``.
    """
    if kind not in ISTIO_SPECS or not isinstance(doc, Mapping):
        return []
    return [str(key) for key in doc if not (isinstance(key, str) and key in ISTIO_TOP_LEVEL.names)]


def unknown_document_fields(kind: str, doc: object) -> list[UnknownField]:
    """Every unknown key of a whole document: for an Istio ``kind`` its top level, metadata
    and spec; for any other kind its metadata only (its spec is not described here)."""
    if not isinstance(doc, Mapping):
        return []
    metadata = find_unknown_fields(OBJECT_META, doc.get("metadata"), "metadata")
    spec = ISTIO_SPECS.get(kind)
    if spec is None:
        return metadata
    top = {k: None for k in doc if k != "metadata" and k != "spec"}
    return [
        *find_unknown_fields(ISTIO_TOP_LEVEL, top, ""),
        *metadata,
        *find_unknown_fields(spec, doc.get("spec"), "spec"),
    ]
