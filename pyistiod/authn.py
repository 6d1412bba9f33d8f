"""Who a gRPC caller is: the workload token it presents over TLS.

Rules:

1. Only a call that arrived over TLS can authenticate; a token sent on the
   plain-text port (15010) is ignored, so that port never serves secrets.
2. No ``authorization`` metadata: not authenticated (None). A bearer token
   that fails ``ca.tokens.verify``: ``CAError(UNAUTHENTICATED)`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ca import tokens
from ca.spiffe import SpiffeId


def over_tls(context: Any) -> bool:
    """Whether the call came over TLS (grpc's auth context says ``ssl``)."""
    kinds = context.auth_context().get("transport_security_type", [])
    return b"ssl" in kinds


def bearer_token(context: Any) -> str | None:
    """The token of an ``authorization: Bearer ...`` metadata entry, if any."""
    for key, value in context.invocation_metadata() or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else text
    return None


def presented_token(context: Any) -> str | None:
    """The bearer token of a call that came over TLS (rules 1 and 2); None otherwise."""
    return bearer_token(context) if over_tls(context) else None


class TokenAuthenticator:
    """The transport's ``Authenticator``: verifies workload tokens with the CA's token key."""

    def __init__(self, key: bytes, trust_domain: str, clock: Callable[[], datetime]) -> None:
        self.key = key
        self.trust_domain = trust_domain
        self.clock = clock

    async def __call__(self, context: Any) -> SpiffeId | None:
        """The caller's identity, None if it presented none (or not over TLS)."""
        token = presented_token(context)
        if token is None:
            return None
        return tokens.verify(self.key, token, self.trust_domain, self.clock())
