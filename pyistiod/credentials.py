"""The credential a sidecar's bootstrap carries: trust in the mesh root and a workload token.

File mode: a token the CA mints (``ca.tokens``). Kubernetes mode: the
ServiceAccount token the API server issues (TokenRequest), which pyistiod
checks with a TokenReview (``kube_authn``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ca import tokens
from ca.authority import KeyKind
from ca.spiffe import SpiffeId
from ca.storage import load_ca, load_or_create_token_key
from translators.envoy.bootstrap import XdsTls


def workload_xds_tls(
    ca_dir: Path, identity: SpiffeId, now: datetime, token_ttl: timedelta
) -> XdsTls:
    """TLS settings for ``identity``'s bootstrap, from the CA directory pyistiod serves from."""
    bundle = load_ca(ca_dir, identity.trust_domain, now, KeyKind.ECDSA_P256)
    token = tokens.issue(load_or_create_token_key(ca_dir), identity, now, token_ttl)
    return XdsTls(root_pem=bundle.roots_pem.decode(), token=token)


async def kubernetes_xds_tls(
    ca_dir: Path, identity: SpiffeId, now: datetime, token_ttl: timedelta, kubeconfig: Path
) -> XdsTls:
    """TLS settings carrying a ServiceAccount token from the TokenRequest API (Kubernetes mode).

    The token is the ``istio-ca`` audience token a projected volume would hold; the
    ServiceAccount must exist. Raises ``ApiException`` when the API server refuses.
    """
    from kubernetes_asyncio import client, config  # Kubernetes mode only: a slow import

    bundle = load_ca(ca_dir, identity.trust_domain, now, KeyKind.ECDSA_P256)
    body: Any = {
        "spec": {
            "audiences": [tokens.AUDIENCE],
            "expirationSeconds": int(token_ttl.total_seconds()),
        }
    }
    async with await config.new_client_from_config(str(kubeconfig)) as api:
        answer = await client.CoreV1Api(api).create_namespaced_service_account_token(
            identity.service_account, identity.namespace, body
        )
    return XdsTls(root_pem=bundle.roots_pem.decode(), token=answer.status.token)
