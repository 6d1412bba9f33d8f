"""SDS for gateways: the ``credentialName`` secrets a router's listeners refer to.

Invariants:

1. ``gateway_secrets(model, proxy)`` returns, for every server of every
   Gateway the router runs, the secrets its TLS context names (see
   ``gateway``): ``kubernetes://NAME`` from the Secret ``NAME`` in the
   Gateway's namespace (Istio reads credentials from the Gateway's
   namespace), and for MUTUAL/OPTIONAL_MUTUAL ``kubernetes://NAME-cacert``
   from a Secret ``NAME-cacert`` if there is one, else from the Secret
   ``NAME``'s ``ca.crt`` (Istio's ``GetCaCert`` order).
2. A credential that does not exist yields no secret: Envoy keeps that
   listener warming until it appears, as with Istio. Sidecars get none.
3. Pure: the result depends on the model's gateways and credentials and the
   proxy's labels; each name appears once, sorted.
"""

from __future__ import annotations

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from translators.envoy.tls.gateway import ca_secret, certificate_secret
from translators.mesh.model.gateways import CA_SUFFIX, Gateway, TlsMode
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy
from translators.mesh.selection.gateway_binding import gateways_for

_VERIFIES = (TlsMode.MUTUAL, TlsMode.OPTIONAL_MUTUAL)


def gateway_secrets(model: MeshModel, proxy: Proxy) -> list[secret_pb2.Secret]:
    """Every ``kubernetes://...`` secret the router's gateway listeners need (invariant 1)."""
    found: dict[str, secret_pb2.Secret] = {}
    for gateway in gateways_for(model, proxy):
        for secret in _gateway_secrets(model, gateway):
            found.setdefault(secret.name, secret)
    return [found[name] for name in sorted(found)]


def _gateway_secrets(model: MeshModel, gateway: Gateway) -> list[secret_pb2.Secret]:
    out: list[secret_pb2.Secret] = []
    for server in gateway.servers:
        tls = server.tls
        if tls is None or not tls.credential_name or not tls.mode.terminates:
            continue
        name = tls.credential_name
        credential = model.credential(gateway.namespace, name)
        if credential is not None and credential.cert_pem:
            out.append(certificate_secret(name, credential))
        if tls.mode in _VERIFIES:
            ca_holder = model.credential(gateway.namespace, name + CA_SUFFIX) or credential
            ca = ca_holder.ca_pem if ca_holder is not None else b""
            if ca:
                out.append(ca_secret(name, ca))
    return out
