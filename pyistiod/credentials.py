"""The credential a sidecar's bootstrap carries: trust in the mesh root and a workload token."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

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
