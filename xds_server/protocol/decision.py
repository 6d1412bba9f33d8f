"""The one decision a state-of-the-world request asks for, as Istio's ``ShouldRespond``.

Rules, in the order they are checked (xDS protocol, "ACK/NACK and resource
type instance version", "When to send an update", "Resource warming"):

1. INITIAL: no response of this type was sent on this stream yet. Whatever the
   request's version and nonce (a reconnecting proxy carries the nonce and
   version another stream or replica gave it), answer with the full
   subscription.
2. STALE: the nonce is not the one of the last response sent. The request
   answers a response that has been superseded: it is no ACK or NACK and gets
   no reply. The proxy will answer the newer response. (The stream still
   records its names; see ``sotw`` rule 6.)
3. NACK: ``error_detail`` is set. The proxy kept its previous config; never
   resend the rejected version.
4. RESUBSCRIBE: an ACK whose resource names differ from the subscription.
5. ACK: the proxy applied the last response.
"""

from __future__ import annotations

import enum

from xds_server.protocol.events import SotwRequest
from xds_server.protocol.subscription import Subscription


class Decision(enum.Enum):
    """What a state-of-the-world request means for the stream."""

    INITIAL = "initial"
    STALE = "stale"
    NACK = "nack"
    RESUBSCRIBE = "resubscribe"
    ACK = "ack"


def classify(
    last_nonce: str, subscription: Subscription | None, new: Subscription, req: SotwRequest
) -> Decision:
    """Classify ``req`` given the nonce last sent ("" for none) and the subscriptions."""
    if not last_nonce or subscription is None:
        return Decision.INITIAL
    if req.response_nonce != last_nonce:
        return Decision.STALE
    if req.error_detail is not None:
        return Decision.NACK
    if new != subscription:
        return Decision.RESUBSCRIBE
    return Decision.ACK
