"""What one stream has subscribed to for one type.

Rules (xDS protocol, "How the client specifies what resources to return"):

1. ``*`` among the names subscribes to every resource of the type (wildcard);
   other names may be listed beside it.
2. Legacy wildcard: for LDS and CDS, a stream that has never named a
   resource for the type is subscribed to everything. In SotW that means every
   request so far had an empty list; in delta, no request so far subscribed to
   a name. Naming a resource (without ``*``) ends it for good.
3. For every other case, an empty list subscribes to nothing.
4. Equal name sets are one object across streams (``names.SHARED``): a thousand
   sidecars subscribed to the same thousand endpoints hold one frozenset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xds_server.protocol.names import SHARED
from xds_server.types import WILDCARD_TYPES

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Subscription:
    """Explicit names plus whether the stream asked for everything."""

    names: frozenset[str] = frozenset()
    wildcard: bool = False
    legacy: bool = False
    """The wildcard came from an empty first request (rule 2)."""

    def wants(self, name: str) -> bool:
        """Whether a resource of this name belongs in responses."""
        return self.wildcard or name in self.names

    def added_since(self, previous: Subscription | None) -> frozenset[str]:
        """Names that ``previous`` did not ask for (all of them for wildcard gains)."""
        if previous is None:
            return self.names
        if previous is self:
            return frozenset()
        return self.names - previous.names


def sotw_subscription(
    previous: Subscription | None, type_url: str, names: Iterable[str]
) -> Subscription:
    """The subscription after a state-of-the-world request listing ``names``."""
    listed = frozenset(names)
    if WILDCARD in listed:
        return Subscription(SHARED.intern(listed - {WILDCARD}), wildcard=True)
    legacy_allowed = previous is None or previous.legacy
    if not listed and type_url in WILDCARD_TYPES and legacy_allowed:
        return Subscription(wildcard=True, legacy=True)
    return Subscription(SHARED.intern(listed))


def delta_subscription(
    previous: Subscription | None,
    type_url: str,
    subscribe: Iterable[str],
    unsubscribe: Iterable[str],
) -> Subscription:
    """The subscription after a delta request subscribing and unsubscribing names.

    Legacy wildcard lasts until the stream first subscribes to any name (rule 2
    as the protocol states it for the incremental variant).
    """
    sub_set = frozenset(subscribe)
    unsub_set = frozenset(unsubscribe)
    if previous is None:
        legacy = type_url in WILDCARD_TYPES
        previous = Subscription(wildcard=legacy, legacy=legacy)
    wildcard, legacy = previous.wildcard, previous.legacy
    if legacy and sub_set:
        wildcard, legacy = False, False
    if WILDCARD in sub_set:
        wildcard = True
    if WILDCARD in unsub_set:
        wildcard, legacy = False, False
    if not sub_set and not unsub_set:
        names = previous.names  # an ACK: nothing to rebuild
    elif not previous.names and not unsub_set and WILDCARD not in sub_set:
        names = SHARED.intern(sub_set)  # a first subscription: the names as they came
    else:
        names = SHARED.intern((previous.names | sub_set) - unsub_set - {WILDCARD})
    return Subscription(names, wildcard=wildcard, legacy=legacy)
