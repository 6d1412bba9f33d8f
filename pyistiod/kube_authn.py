"""Who a gRPC caller is, in Kubernetes mode: its ServiceAccount token, as the API server reviews it.

istiod's Kubernetes JWT authenticator: a proxy on the TLS port presents the
token of its pod's ServiceAccount (audience ``istio-ca``, from the TokenRequest
API or a projected volume); a ``TokenReview`` asks the API server whether the
token is valid for that audience and whose it is. Rules:

1. Only a call that arrived over TLS can authenticate, and without an
   ``authorization`` metadata entry nobody is authenticated (None), as with
   the file mode's tokens (``authn``).
2. The identity is the reviewed user ``system:serviceaccount:NS:SA``, taken
   from the API server's answer, never from the token's own claims; it
   becomes ``spiffe://<trust domain>/ns/NS/sa/SA``.
3. A token the API server does not authenticate, one not valid for the
   ``istio-ca`` audience, or one of a user who is no ServiceAccount is
   ``CAError(UNAUTHENTICATED)`` with the reason; an API server that cannot be
   asked is ``CAError(AUTHN_UNAVAILABLE)``, which callers may retry.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ca import tokens
from ca.errors import CAError, CAErrorKind
from ca.spiffe import SpiffeId
from pyistiod.authn import presented_token

AUDIENCE = tokens.AUDIENCE
"""Istio's audience for the tokens its CA accepts."""
SERVICE_ACCOUNT_USER = "system:serviceaccount:"
REVIEW_TIMEOUT = 10.0
"""Seconds a TokenReview may take before the caller is told the API server is unavailable."""


def identity_of(username: str, trust_domain: str) -> SpiffeId:
    """The SPIFFE identity of a reviewed ServiceAccount user (rule 2)."""
    if not username.startswith(SERVICE_ACCOUNT_USER):
        raise CAError(
            CAErrorKind.UNAUTHENTICATED,
            f"the token belongs to {username!r}, not to a ServiceAccount",
        )
    namespace, _, account = username[len(SERVICE_ACCOUNT_USER) :].partition(":")
    if not namespace or not account or ":" in account:
        raise CAError(CAErrorKind.UNAUTHENTICATED, f"malformed ServiceAccount user {username!r}")
    return SpiffeId(trust_domain, namespace, account)


class KubernetesTokenAuthenticator:
    """The transport's ``Authenticator`` in Kubernetes mode: a TokenReview per credential."""

    def __init__(self, api: client.ApiClient, trust_domain: str, audience: str = AUDIENCE):
        self.api = api
        self.trust_domain = trust_domain
        self.audience = audience

    async def __call__(self, context: Any) -> SpiffeId | None:
        """The caller's identity, None if it presented none (or not over TLS)."""
        token = presented_token(context)
        if token is None:
            return None
        return await self.review(token)

    async def review(self, token: str) -> SpiffeId:
        """Ask the API server whose ``token`` is (rules 2, 3)."""
        body: Any = {"spec": {"token": token, "audiences": [self.audience]}}
        try:
            answer = await client.AuthenticationV1Api(self.api).create_token_review(
                body, _request_timeout=REVIEW_TIMEOUT
            )
        except (ApiException, aiohttp.ClientError, TimeoutError) as err:
            raise CAError(
                CAErrorKind.AUTHN_UNAVAILABLE, f"the API server could not review the token: {err}"
            ) from err
        status = answer.status
        if status is None or not status.authenticated:
            reason = (status.error if status is not None else "") or "not authenticated"
            raise CAError(
                CAErrorKind.UNAUTHENTICATED, f"the API server refused the token: {reason}"
            )
        if self.audience not in (status.audiences or ()):
            raise CAError(
                CAErrorKind.UNAUTHENTICATED,
                f"the token is not valid for audience {self.audience!r}",
            )
        username = status.user.username if status.user is not None else ""
        return identity_of(username or "", self.trust_domain)
