"""Workload tokens: the credential ``pyistiod bootstrap`` hands a proxy for port 15012.

istiod authenticates a proxy by the Kubernetes service-account JWT its agent
sends as a bearer token (checked with a TokenReview), or by a client
certificate it already holds. pyistiod has no Kubernetes API server to review
tokens, so it mints its own: a token bound to one trust domain, namespace and
service account, with an expiry, signed with HMAC-SHA256 under a key only
pyistiod holds (``token-key`` in the CA directory). The bootstrap puts it in
the xDS cluster's gRPC ``initial_metadata`` as ``authorization: Bearer ...``,
over TLS that verifies pyistiod's certificate.

Rules:

1. ``verify`` accepts only a token it could have issued: the right format,
   a MAC that matches (compared in constant time), the ``istio-ca``
   audience, this trust domain, and ``now`` before the expiry.
2. Time is passed in; nothing here reads a clock, a file or a global.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime, timedelta

from ca.errors import CAError, CAErrorKind
from ca.spiffe import SpiffeId

AUDIENCE = "istio-ca"
_PREFIX = "pyistiod.v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, f"{_PREFIX}.{payload}".encode(), hashlib.sha256).digest()


def issue(key: bytes, identity: SpiffeId, now: datetime, ttl: timedelta) -> str:
    """A token for ``identity`` valid from ``now`` for ``ttl``."""
    claims = {
        "aud": AUDIENCE,
        "td": identity.trust_domain,
        "ns": identity.namespace,
        "sa": identity.service_account,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    payload = _b64(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    return f"{_PREFIX}.{payload}.{_b64(_mac(key, payload))}"


def verify(key: bytes, token: str, trust_domain: str, now: datetime) -> SpiffeId:
    """The identity a valid token carries; ``CAError(UNAUTHENTICATED)`` saying why otherwise."""
    parts = token.split(".")
    if len(parts) != 4 or f"{parts[0]}.{parts[1]}" != _PREFIX:
        raise _denied("not a pyistiod token (expected pyistiod.v1.<claims>.<mac>)")
    payload, mac = parts[2], parts[3]
    try:
        given = _unb64(mac)
        claims = json.loads(_unb64(payload))
    except (binascii.Error, ValueError) as e:
        raise _denied(f"token is not decodable: {e}") from e
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise _denied("token signature does not verify")
    if not isinstance(claims, dict) or claims.get("aud") != AUDIENCE:
        raise _denied(f"token audience is not {AUDIENCE!r}")
    if claims.get("td") != trust_domain:
        raise _denied(f"token trust domain {claims.get('td')!r} is not {trust_domain!r}")
    if not isinstance(claims.get("exp"), int) or now.timestamp() >= claims["exp"]:
        raise _denied("token has expired; run `pyistiod bootstrap` again")
    return SpiffeId(trust_domain, str(claims.get("ns", "")), str(claims.get("sa", "")))


def _denied(reason: str) -> CAError:
    return CAError(CAErrorKind.UNAUTHENTICATED, reason)
