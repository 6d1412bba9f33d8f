"""The state-of-the-world xDS protocol for one stream (ADS or a single-type service).

Invariants:

1. At most one response per type is unanswered. A snapshot arriving while one
   is outstanding marks the type pending; the proxy's ACK or NACK releases it
   and the newest snapshot is sent. A slow proxy therefore coalesces to the
   latest state and never queues stale ones (backpressure, as go-control-plane
   closes a watch until the next request).
2. Nonces come from ``nonces`` (``protocol.nonces``): distinct on the stream for
   distinct content, and equal across streams for equal content with the transport's
   source, so equal responses are encoded once.
3. Nothing is sent for a type the stream has not subscribed to.
4. CDS and LDS responses carry every wanted resource (absence means deletion).
   EDS, RDS and SDS responses carry only resources that differ from what the
   proxy acknowledged, plus newly subscribed ones (xDS protocol, "Resource
   types": only LDS and CDS are full state-of-the-world for deletion).
5. A rejected version is never sent again to the proxy that rejected it.
7. A cluster that changes is re-created by Envoy and warms until it gets its
   endpoints again, even when they did not change: the endpoints of every
   changed cluster are owed to the stream and follow the CDS response
   (envoyproxy/envoy#13009; istiod pushes EDS with every full push for the
   same reason). EDS resources are named after their clusters here.
6. A stale request is not an ACK and gets no reply, but its resource names
   are recorded: they are the proxy's newest subscription. Every newly
   subscribed name is *owed* until a response carries it, even if it is
   absent from the snapshot for a while (a cluster removed and re-added while
   a response was in flight), since the proxy no longer holds it.
8. A response is answered once: the same NACK repeated for its nonce is
   ignored (``ANSWERED``), so it is counted and logged once (as in delta,
   where a repeat is stale).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from xds_server.protocol.decision import Decision, classify
from xds_server.protocol.events import (
    Acked,
    Action,
    Ignored,
    IgnoreReason,
    Nacked,
    Send,
    SotwRequest,
)
from xds_server.protocol.gate import gate
from xds_server.protocol.nonces import NonceSource, counter
from xds_server.protocol.subscription import Subscription, sotw_subscription
from xds_server.snapshot import Part, Resource, ResourceSet, Snapshot
from xds_server.types import ADS_ORDER, CLUSTER, ENDPOINT, KNOWN_TYPES, WILDCARD_TYPES


@dataclass(slots=True)
class TypeState:
    """One type's protocol state on one stream."""

    subscription: Subscription | None = None
    nonce: str = ""
    """Nonce of the last response sent; "" before the first."""
    sent: ResourceSet | None = None
    """The set the last response was cut from."""
    basis: ResourceSet | None = None
    """The set last ACKed: for every subscribed name not in ``owed``, the proxy
    holds this set's version (or nothing, if the set lacks it). None after a
    NACK or before the first ACK: the next response carries everything."""
    owed: frozenset[str] = frozenset()
    """Names subscribed since the proxy last received them (rule 6)."""
    names: tuple[str, ...] = ()
    """The resource names of the last request, as sent: most requests repeat them."""
    outstanding: bool = False
    nacked_version: str = ""


@dataclass(slots=True)
class SotwStream:
    """Protocol state of one state-of-the-world stream.

    ``allowed`` is every known type on ADS, or the one type of a per-type
    service. Feed it ``on_snapshot`` (before the first request, and on every
    publish) and ``on_request``; carry out the returned actions in order.
    """

    allowed: frozenset[str] = KNOWN_TYPES
    denied: Mapping[str, str] = field(default_factory=dict)
    """Types refused with PERMISSION_DENIED, with the reason (``gate`` rule 3)."""
    snapshot: Snapshot = field(default_factory=lambda: Snapshot.of(()))
    types: dict[str, TypeState] = field(default_factory=dict)
    nonces: NonceSource = field(default_factory=counter)

    def on_snapshot(self, snapshot: Snapshot) -> list[Action]:
        """A new snapshot for this proxy: respond for every subscribed, idle type."""
        self.snapshot = snapshot
        actions: list[Action] = []
        for type_url in _ordered(self.types):
            actions.extend(self._respond(type_url, initial=False))
        return actions

    def on_request(self, req: SotwRequest) -> list[Action]:
        """A request from the proxy: ACK, NACK, (re)subscription or stale."""
        refused = gate(req.type_url, req.response_nonce, self.allowed, self.denied)
        if refused is not None:
            return refused
        state = self.types.setdefault(req.type_url, TypeState())
        if state.subscription is not None and req.resource_names == state.names:
            new_sub = state.subscription  # the usual ACK: same names, nothing to rebuild
        else:
            new_sub = sotw_subscription(state.subscription, req.type_url, req.resource_names)
            added = new_sub.added_since(state.subscription)
            if added or state.owed:
                owed = state.owed | added
                state.owed = owed if new_sub.wildcard else owed & new_sub.names
            state.names = req.resource_names
        decision = classify(state.nonce, state.subscription, new_sub, req)
        state.subscription = new_sub
        if decision is Decision.STALE:
            return [Ignored(req.type_url, IgnoreReason.STALE_NONCE, req.response_nonce)]
        actions: list[Action] = []
        if decision is Decision.NACK and not state.outstanding:
            # The same NACK again (a retrying client): counted and logged once.
            actions.append(Ignored(req.type_url, IgnoreReason.ANSWERED, req.response_nonce))
        elif decision is Decision.NACK:
            actions.append(self._nacked(state, req))
        elif decision in (Decision.ACK, Decision.RESUBSCRIBE):
            actions.append(self._acked(state, req))
        actions.extend(self._respond(req.type_url, initial=decision is Decision.INITIAL))
        if (
            req.type_url == CLUSTER
            and ENDPOINT in self.types
            and actions
            and isinstance(actions[-1], Send)
        ):
            actions.extend(self._respond(ENDPOINT, initial=False))  # rule 7
        return actions

    def _acked(self, state: TypeState, req: SotwRequest) -> Acked:
        state.outstanding = False
        state.basis = state.sent
        return Acked(req.type_url, req.version_info, req.response_nonce)

    def _nacked(self, state: TypeState, req: SotwRequest) -> Nacked:
        state.outstanding = False
        state.basis = None
        state.nacked_version = state.sent.version if state.sent else ""
        return Nacked(
            req.type_url, state.nacked_version, req.response_nonce, req.error_detail or ""
        )

    def _respond(self, type_url: str, *, initial: bool) -> list[Action]:
        state = self.types[type_url]
        sub = state.subscription
        if sub is None or state.outstanding:
            return []
        current = self.snapshot.get(type_url)
        owed_here = any(n in current for n in state.owed)
        if not initial and not owed_here:
            if state.sent is not None and current.version == state.sent.version:
                return []
            if current.version == state.nacked_version:
                return []
        resources: tuple[Resource, ...] = ()
        whole: tuple[Part, ...] = ()
        sent: frozenset[str] | None = None
        if sub.wildcard and type_url in WILDCARD_TYPES:
            whole = current.parts  # CDS and LDS go whole: shared pre-encoded parts
        else:
            resources, sent = _select(current, sub, None if initial else state.basis, state.owed)
        if not resources and not whole and not initial and type_url not in WILDCARD_TYPES:
            state.sent = current  # nothing the proxy holds changed
            return []
        if state.owed:
            state.owed = state.owed - (sent if sent is not None else {r.name for r in resources})
        if type_url == CLUSTER and state.sent is not None:
            self._owe_endpoints(state.sent, current)
        state.nonce = self.nonces(type_url, current.version, resources, whole, ())
        state.sent = current
        state.outstanding = True
        return [Send(type_url, current.version, state.nonce, resources, whole=whole)]

    def _owe_endpoints(self, before: ResourceSet, after: ResourceSet) -> None:
        """Rule 7: the endpoints of every changed cluster go out again, changed or not."""
        eds = self.types.get(ENDPOINT)
        if eds is None or eds.subscription is None:
            return
        changed, _ = after.changed_since(before)
        renew = {name for name in changed if eds.subscription.wants(name)}
        if renew:
            eds.owed = eds.owed | renew


def _select(
    current: ResourceSet, sub: Subscription, basis: ResourceSet | None, owed: frozenset[str]
) -> tuple[tuple[Resource, ...], frozenset[str] | None]:
    """The resources a response carries, named explicitly (invariant 4), and their names
    when they come at no cost.

    Without a basis, every subscribed name present: one selection per set and name set,
    shared by the streams subscribed with that set (``ResourceSet.select``). With a
    basis, only the names that changed since it (a comparison shared by every stream
    holding the same basis) and the owed ones are looked at, not every resource.
    """
    if basis is None or current.type_url in WILDCARD_TYPES:
        if not sub.wildcard:
            chosen = current.select(sub.names)
            return chosen.resources, chosen.names
        return tuple(current), None
    changed, _ = current.changed_since(basis)
    names = sorted({n for n in changed if sub.wants(n)} | owed)
    return tuple(r for n in names if (r := current.get(n)) is not None), None


def _ordered(types: dict[str, TypeState]) -> list[str]:
    """Subscribed types in ADS order (CDS, EDS, LDS, RDS, SDS)."""
    return [t for t in ADS_ORDER if t in types]
