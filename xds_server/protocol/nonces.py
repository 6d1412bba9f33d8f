"""Where a stream's response nonces come from.

A nonce names one response on one stream, so that an ACK or NACK can be matched to it
(xDS protocol, "ACK/NACK and resource type instance version"). The protocol cores ask a
``NonceSource`` for each response's nonce, given its content. Invariants:

1. Two responses with different content never share a nonce on a stream.
2. A response whose content equals an earlier one may repeat its nonce. That is safe: an
   ACK or NACK naming it is about that content, whichever of the two it answers, and at
   most one response per type is outstanding when a snapshot triggers one (``sotw`` rule 1,
   ``delta`` rule 4).
3. The transport's source (``transport.responses.SharedResponses``) gives every stream the
   same nonce for the same content, so every stream sends the very same bytes, encoded
   once. ``counter`` (one per stream, increasing by one) is the plain source the cores
   use when given none.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from xds_server.snapshot import Part, Resource

NonceSource = Callable[[str, str, tuple[Resource, ...], tuple[Part, ...], tuple[str, ...]], str]
"""``(type_url, version, resources, whole parts, removed names) -> nonce``."""


def counter() -> NonceSource:
    """Nonces "1", "2", ... whatever the content (one per response)."""
    numbers = itertools.count(1)

    def nonce(*content: object) -> str:
        return str(next(numbers))

    return nonce
