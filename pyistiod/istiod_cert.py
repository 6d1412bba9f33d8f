"""istiod's serving certificate: what proxies verify on the TLS xDS port (15012) and the API
server on the admission webhook (15017).

The mesh CA issues it for ``spiffe://<trust domain>/ns/<system namespace>/sa/istiod`` and
istiod's Service name in its namespace, ``istiod.<system namespace>.svc``, plus
``istiod.istio-system.svc``, the name every bootstrap verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ca.authority import SigningBundle, generate_workload_key, issue_server_cert, private_key_to_pem
from ca.spiffe import SpiffeId

BOOTSTRAP_SERVER_NAME = "istiod.istio-system.svc"
LIFETIME = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class ServingCert:
    """A certificate chain and its private key, both PEM."""

    chain_pem: bytes
    key_pem: bytes


def issue_istiod_cert(
    bundle: SigningBundle,
    trust_domain: str,
    system_namespace: str,
    now: datetime,
    ips: Sequence[str] = (),
) -> ServingCert:
    """A fresh key and istiod's certificate for it, also naming ``ips`` (a webhook the API
    server dials by URL)."""
    key = generate_workload_key()
    identity = SpiffeId(trust_domain, system_namespace, "istiod")
    names = tuple(dict.fromkeys((BOOTSTRAP_SERVER_NAME, f"istiod.{system_namespace}.svc")))
    cert = issue_server_cert(bundle, key, identity, names, LIFETIME, now, ips)
    return ServingCert(cert.chain_pem, private_key_to_pem(key))
