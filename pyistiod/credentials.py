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
from ca.storage import load_ca, load_or_create_token_key, parse_certs
from translators.envoy.bootstrap import XdsTls


def workload_xds_tls(
    ca_dir: Path, identity: SpiffeId, now: datetime, token_ttl: timedelta
) -> XdsTls:
    """TLS settings for ``identity``'s bootstrap, from the CA directory pyistiod serves from."""
    bundle = load_ca(ca_dir, identity.trust_domain, now, KeyKind.ECDSA_P256)
    token = tokens.issue(load_or_create_token_key(ca_dir), identity, now, token_ttl)
    return XdsTls(root_pem=bundle.roots_pem.decode(), token=token)


async def kubernetes_xds_tls(
    identity: SpiffeId, token_ttl: timedelta, kubeconfig: Path, system_namespace: str
) -> XdsTls:
    """TLS settings for Kubernetes mode: the mesh root from ``istio-ca-secret`` and a
    ServiceAccount token from the TokenRequest API (the ``istio-ca`` audience token a
    projected volume would hold). The ServiceAccount must exist. Raises ``SourceUnavailable``
    for a kubeconfig that cannot be used, ``ApiException`` when the API server refuses,
    ``CAError`` when no CA Secret exists yet.
    """
    from kubernetes_asyncio import client  # Kubernetes mode only: a slow import

    from pyistiod.kube_ca import read_root_pem
    from pyistiod.kube_client import api_client

    body: Any = {
        "spec": {
            "audiences": [tokens.AUDIENCE],
            "expirationSeconds": int(token_ttl.total_seconds()),
        }
    }
    async with await api_client(kubeconfig) as api:
        root = await read_root_pem(api, system_namespace)
        answer = await client.CoreV1Api(api).create_namespaced_service_account_token(
            identity.service_account, identity.namespace, body
        )
    return XdsTls(root_pem=root.decode(), token=answer.status.token)


def projected_xds_tls(token_file: Path, root_cert: Path) -> XdsTls:
    """TLS settings from files a pod has: the projected ServiceAccount token (audience
    ``istio-ca``) and the mesh root, as Istio's agent reads them. Raises ``OSError`` for a
    missing file, ``ValueError`` for an empty token file and ``CAError`` for a root file
    that holds no PEM certificate."""
    token = token_file.read_text().strip()
    root = root_cert.read_bytes()
    if not token:
        raise ValueError(f"{token_file} holds no token")
    parse_certs(root, str(root_cert))
    return XdsTls(root_pem=root.decode(), token=token)
