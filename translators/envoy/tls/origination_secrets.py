"""SDS for TLS origination: the Secrets DestinationRules name with ``credentialName``.

Invariants, as Istio's SDS generator (``pilot/pkg/xds/sds.go``) serves them to a proxy:

1. ``origination_secrets(model, namespace)`` returns the secrets an originating context names
   (``origination`` invariant 5) for every ``credentialName`` of a SIMPLE or MUTUAL client TLS
   in any DestinationRule (rule level, port level, subsets), read from the Secret of that name
   in ``namespace``, the proxy's own: Istio resolves ``kubernetes://NAME`` in the proxy's
   namespace and refuses a sidecar any other namespace's Secret. A rule in another namespace
   (the root namespace, say) still names a Secret of the proxy's namespace.
2. ``kubernetes://NAME``: the Secret's certificate chain and key, for a name some MUTUAL
   settings use. ``kubernetes://NAME-cacert``: the CA of a Secret ``NAME-cacert``, else of
   ``NAME`` (``ca.crt``, or ``cacert`` in Istio's generic form): Istio's ``GetCaCert`` order,
   for a name some settings verify the server with (not ``insecureSkipVerify``).
3. A Secret that is missing, or lacks the part asked for, yields no secret, as Istio's
   generator omits what it "failed to fetch". Envoy then keeps the cluster warming for the
   SDS initial fetch timeout (15 s: like Istio, pyistiod does not set it to wait forever),
   after which the cluster is used without it and its TLS handshakes fail (503); the secret
   arriving later heals it.
4. Every DestinationRule is read, not only those of the proxy's clusters: Envoy asks for SDS
   resources by name (never wildcard), so a secret no cluster names is never sent, and the
   result depends only on the rules, the credentials and the namespace, shared by every
   proxy of that namespace. Pure; each name once, sorted.
"""

from __future__ import annotations

from collections.abc import Iterator

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from translators.envoy.tls.gateway import ca_secret, certificate_secret
from translators.mesh.model.gateways import CA_SUFFIX
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import ClientTls, ClientTlsMode, Policies, TrafficPolicy

_ORIGINATING = (ClientTlsMode.SIMPLE, ClientTlsMode.MUTUAL)


def origination_secrets(model: MeshModel, namespace: str) -> list[secret_pb2.Secret]:
    """The ``kubernetes://`` secrets a proxy in ``namespace`` may be asked for (invariants)."""
    presents: set[str] = set()
    verifies: set[str] = set()
    for tls in credential_settings(model.policies):
        if tls.mode is ClientTlsMode.MUTUAL:
            presents.add(tls.credential_name)
        if not tls.insecure_skip_verify:
            verifies.add(tls.credential_name)
    out: list[secret_pb2.Secret] = []
    for name in sorted(presents | verifies):
        credential = model.credential(namespace, name)
        if name in presents and credential is not None and credential.cert_pem:
            out.append(certificate_secret(name, credential))
        ca_holder = model.credential(namespace, name + CA_SUFFIX)
        ca = ca_holder.ca_pem if ca_holder else credential.ca_pem if credential else b""
        if name in verifies and ca:
            out.append(ca_secret(name, ca))
    return sorted(out, key=lambda secret: secret.name)


def credential_settings(policies: Policies) -> Iterator[ClientTls]:
    """Every SIMPLE or MUTUAL client TLS of the rules that names a ``credentialName``."""
    for rule in policies.destination_rules:
        traffic = [rule.traffic_policy, *(s.traffic_policy for s in rule.subsets)]
        for policy in traffic:
            for tls in _tls_of(policy):
                if tls.mode in _ORIGINATING and tls.credential_name:
                    yield tls


def _tls_of(policy: TrafficPolicy | None) -> Iterator[ClientTls]:
    if policy is None:
        return
    if policy.tls is not None:
        yield policy.tls
    yield from (p.tls for p in policy.port_level if p.tls is not None)
