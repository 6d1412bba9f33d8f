"""Whether a stream may serve a type at all, before any protocol state is touched.

1. An unknown type URL is ignored and the stream stays up (a newer proxy may
   ask for types this server does not know).
2. A known type that this service does not serve (EDS on the CDS service)
   closes the stream with INVALID_ARGUMENT.
3. A type denied to this stream (secrets to an unauthenticated proxy) is
   refused: a single-type stream (the SDS service) is closed with
   PERMISSION_DENIED and the reason; on ADS the request is ignored and
   reported, and the stream goes on serving the other types, as istiod's
   SDS generator does for a proxy without a verified identity. Closing ADS
   would cut the proxy off from everything it may have.
"""

from __future__ import annotations

from collections.abc import Mapping

from xds_server.protocol.events import Action, Close, Ignored, IgnoreReason
from xds_server.types import KNOWN_TYPES


def gate(
    type_url: str, nonce: str, allowed: frozenset[str], denied: Mapping[str, str]
) -> list[Action] | None:
    """The actions that end the request here, or None if the stream serves the type."""
    if type_url not in KNOWN_TYPES:
        return [Ignored(type_url, IgnoreReason.UNKNOWN_TYPE, nonce)]
    if type_url not in allowed:
        return [Close("INVALID_ARGUMENT", f"type {type_url} is not served on this stream")]
    if type_url in denied:
        if len(allowed) > 1:
            return [Ignored(type_url, IgnoreReason.DENIED, nonce)]
        return [Close("PERMISSION_DENIED", denied[type_url])]
    return None
