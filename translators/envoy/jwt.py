"""What the JWT pieces of a proxy's config share: the clusters Envoy fetches JWKS through,
and where a verified token's claims are found.

Invariants:

1. Envoy's ``jwt_authn`` filter writes the payload of every verified token into
   its dynamic metadata under ``PAYLOAD_KEY`` (Istio's ``payload_in_metadata``),
   so a claim is found at filter ``JWT_AUTHN_FILTER``, path
   ``[PAYLOAD_KEY, claim, inner...]``. Istio's RBAC reads Istio's own
   ``istio_authn`` filter (``request.auth.principal``, claims as lists), a
   filter of Istio's proxy that upstream Envoy 1.40 lacks; pyistiod matches on
   ``jwt_authn``'s payload instead (``claim_matcher``).
2. A claim is a string or a list of strings (``groups``, ``aud``); a match on it
   accepts either: the string matches, or one element of the list does.
3. A ``jwksUri`` is fetched by Envoy through cluster ``outbound|PORT||HOST``
   (``jwks_cluster_name``), Istio's name: the service's own cluster when the
   host and port are a mesh service (Istio's ``LookupCluster``), else a cluster
   of the proxy's own (``build_jwks_clusters``): STATIC for an IP, STRICT_DNS
   for a name, with TLS to the host for ``https``: SNI and SAN the host,
   verified against ``SYSTEM_CA_BUNDLE``, the file Istio's proxies trust as the
   system's roots (Envoy refuses a SAN check without a trusted CA, and its
   ``system_root_certs`` does not count as one).
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.type.matcher.v3 import metadata_pb2, string_pb2, value_pb2
from google.protobuf import duration_pb2

from translators.envoy.clusters import (
    CONNECT_TIMEOUT_SECONDS,
    load_assignment,
    outbound_cluster_name,
)
from translators.envoy.tls.mtls import TLS_SOCKET, transport_socket
from translators.envoy.tls.origination import SYSTEM_CA_BUNDLE
from translators.envoy.tls.san import DNS, IP_ADDRESS, names_required
from translators.mesh.model.addresses import is_ip
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import JwksUri
from translators.mesh.model.proxy import Proxy
from translators.mesh.selection.request_authentication import jwt_rules_for

JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn"
PAYLOAD_KEY = "payload"
"""Istio's ``payload_in_metadata``: where ``jwt_authn`` puts a verified token's claims."""


def jwks_cluster_name(uri: JwksUri) -> str:
    """The cluster Envoy fetches ``uri`` through (invariant 3)."""
    return outbound_cluster_name(uri.port, uri.host)


def build_jwks_clusters(model: MeshModel, proxy: Proxy) -> list[cluster_pb2.Cluster]:
    """The clusters for the ``jwksUri`` of the JWT rules ``proxy`` enforces that are no
    mesh service (invariant 3), one per host and port, by name."""
    rules = jwt_rules_for(model.policies, proxy.namespace, proxy.labels)
    uris = {
        jwks_cluster_name(rule.jwks_uri): rule.jwks_uri
        for rule in rules
        if rule.jwks_uri is not None and not _is_mesh_service(model, rule.jwks_uri)
    }
    return [_cluster(name, uris[name]) for name in sorted(uris)]


def _is_mesh_service(model: MeshModel, uri: JwksUri) -> bool:
    return any(s.hostname == uri.host and s.port(uri.port) is not None for s in model.services)


def _cluster(name: str, uri: JwksUri) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(
        name=name,
        connect_timeout=duration_pb2.Duration(seconds=CONNECT_TIMEOUT_SECONDS),
        load_assignment=load_assignment(name, [(uri.host, uri.port)]),
    )
    if is_ip(uri.host):
        cluster.type = cluster_pb2.Cluster.STATIC
    else:
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_ONLY
    if uri.scheme == "https":
        cluster.transport_socket.CopyFrom(transport_socket(TLS_SOCKET, _tls(uri.host)))
    return cluster


def _tls(host: str) -> tls_pb2.UpstreamTlsContext:
    context = tls_pb2.UpstreamTlsContext(sni="" if is_ip(host) else host)
    validation = context.common_tls_context.validation_context
    validation.CopyFrom(names_required([host], IP_ADDRESS if is_ip(host) else DNS))
    validation.trusted_ca.filename = SYSTEM_CA_BUNDLE
    return context


def claim_value(matcher: string_pb2.StringMatcher) -> value_pb2.ValueMatcher:
    """A claim that is ``matcher``'s string or a list holding one (invariant 2)."""
    one = value_pb2.ValueMatcher(string_match=matcher)
    listed = value_pb2.ValueMatcher(list_match=value_pb2.ListMatcher(one_of=one))
    return value_pb2.ValueMatcher(
        or_match=value_pb2.OrMatcher(value_matchers=[one, listed]),
    )


def claim_matcher(
    path: Sequence[str], value: value_pb2.ValueMatcher
) -> metadata_pb2.MetadataMatcher:
    """The metadata matcher of claim ``path`` (outermost name first) of a verified token."""
    return metadata_pb2.MetadataMatcher(
        filter=JWT_AUTHN_FILTER,
        path=[metadata_pb2.MetadataMatcher.PathSegment(key=k) for k in (PAYLOAD_KEY, *path)],
        value=value,
    )
