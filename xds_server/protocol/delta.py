"""The incremental (delta) xDS protocol for one stream.

Invariants:

1. ``known`` holds, per type, the version of every resource the proxy holds
   as far as the server knows ("" for a name it was told does not exist). It
   starts from the first request's ``initial_resource_versions`` (a proxy
   reconnecting to this or another replica), and is updated when a response
   is sent, so a NACKed version is not sent again.
2. Responses carry only resources whose version differs from ``known``, and
   ``removed_resources`` for names the proxy holds or asked for that the
   snapshot lacks (xDS protocol, "Incremental xDS": the server signals that a
   requested resource does not exist through ``removed_resources``).
3. Subscription changes are applied whatever the nonce: in delta they are
   increments and would be lost if dropped. Only the ACK/NACK part of a
   request with a stale nonce is ignored.
4. A snapshot-triggered response waits while one is outstanding; requests are
   answered at once. The first request of a type is always answered, even
   with nothing, so the proxy's initialization completes.
5. Nonces come from ``nonces``, as in ``sotw`` rule 2 (``protocol.nonces``).
6. After each response, ``known`` agrees with the set it was cut from
   (``synced``) for every name of interest, except the ``dirty`` names a
   request touched since. So the next response need only look at the names
   that changed between ``synced`` and the new set (one comparison shared by
   every stream with the same ``synced``) plus the dirty ones, not at every
   resource the proxy holds.
7. As in ``sotw`` rule 7: the endpoints of a cluster that was updated (not
   added) are sent again after it, since Envoy re-creates the cluster and it
   warms until it has them (envoyproxy/envoy#13009).
8. A stream that holds nothing of a type (no ``known`` version) is sent every
   resource it wants, and knows their versions from a mapping made once and
   shared: per part for a wildcard (``Part.versions``: a proxy's clusters are the
   shared outbound part and its own inbound one), per set and name set otherwise
   (``ResourceSet.select``), not rebuilt name by name per stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from xds_server.protocol.events import (
    Acked,
    Action,
    DeltaRequest,
    Ignored,
    IgnoreReason,
    Nacked,
    Send,
)
from xds_server.protocol.gate import gate
from xds_server.protocol.nonces import NonceSource, counter
from xds_server.protocol.subscription import Subscription, delta_subscription
from xds_server.snapshot import Resource, ResourceSet, Snapshot
from xds_server.types import ADS_ORDER, CLUSTER, ENDPOINT, KNOWN_TYPES

ABSENT = ""
"""``known`` value for a name the proxy was told does not exist."""


@dataclass(slots=True)
class DeltaTypeState:
    """One type's delta protocol state on one stream."""

    subscription: Subscription
    known: dict[str, str] = field(default_factory=dict)
    nonce: str = ""
    sent_version: str = ""
    outstanding: bool = False
    pending: bool = False
    synced: ResourceSet | None = None
    """The set ``known`` was last reconciled with (rule 6); None: compare everything."""
    dirty: set[str] = field(default_factory=set)
    """Names whose state changed by request since ``synced`` (rule 6)."""


@dataclass(slots=True)
class DeltaStream:
    """Protocol state of one delta stream; same contract as ``SotwStream``."""

    allowed: frozenset[str] = KNOWN_TYPES
    denied: Mapping[str, str] = field(default_factory=dict)
    """Types refused with PERMISSION_DENIED, with the reason (``gate`` rule 3)."""
    snapshot: Snapshot = field(default_factory=lambda: Snapshot.of(()))
    types: dict[str, DeltaTypeState] = field(default_factory=dict)
    nonces: NonceSource = field(default_factory=counter)

    def on_snapshot(self, snapshot: Snapshot) -> list[Action]:
        """A new snapshot: send the differences for every idle subscribed type."""
        self.snapshot = snapshot
        actions: list[Action] = []
        for type_url in (t for t in ADS_ORDER if t in self.types):
            state = self.types[type_url]
            if state.outstanding:
                state.pending = True
            else:
                actions.extend(self._respond(type_url, always=False))
        return actions

    def on_request(self, req: DeltaRequest) -> list[Action]:
        """Apply a request's ACK/NACK and subscription changes; answer them."""
        refused = gate(req.type_url, req.response_nonce, self.allowed, self.denied)
        if refused is not None:
            return refused
        first = req.type_url not in self.types
        state = self._state(req)
        actions: list[Action] = []
        if req.response_nonce and req.response_nonce == state.nonce and state.outstanding:
            state.outstanding = False
            if req.error_detail is not None:
                actions.append(
                    Nacked(req.type_url, state.sent_version, req.response_nonce, req.error_detail)
                )
            else:
                actions.append(Acked(req.type_url, state.sent_version, req.response_nonce))
        elif req.response_nonce and not first and not (req.subscribe or req.unsubscribe):
            return [Ignored(req.type_url, IgnoreReason.STALE_NONCE, req.response_nonce)]
        self._resubscribe(state, req)
        if not state.outstanding or req.subscribe or req.unsubscribe:
            actions.extend(self._respond(req.type_url, always=first))
        return actions

    def _state(self, req: DeltaRequest) -> DeltaTypeState:
        state = self.types.get(req.type_url)
        if state is None:
            state = DeltaTypeState(
                subscription=delta_subscription(None, req.type_url, (), ()),
                known=dict(req.initial_resource_versions),
            )
            self.types[req.type_url] = state
        return state

    def _owe_endpoints(self, updated_clusters: list[str]) -> None:
        """Rule 7: an updated cluster's endpoints are sent again, changed or not."""
        eds = self.types.get(ENDPOINT)
        if eds is not None and updated_clusters:
            _forget(eds, updated_clusters)

    def _resubscribe(self, state: DeltaTypeState, req: DeltaRequest) -> None:
        before = state.subscription
        state.subscription = delta_subscription(
            before, req.type_url, req.subscribe, req.unsubscribe
        )
        if state.subscription.wildcard != before.wildcard:
            state.synced = None  # interest changed wholesale: compare everything next time
        if state.synced is not None:  # else the next response compares every name anyway
            state.dirty.update(req.subscribe)
        for name in req.unsubscribe:
            if not state.subscription.wants(name):
                state.known.pop(name, None)

    def _respond(self, type_url: str, *, always: bool) -> list[Action]:
        state = self.types[type_url]
        current = self.snapshot.get(type_url)
        fresh: list[Mapping[str, str]] | None = None
        sub = state.subscription
        if state.synced is None and not state.known and sub.wildcard:
            # A proxy holding nothing of the type: everything (rule 8), part by part.
            changed, fresh = tuple(current), [p.versions() for p in current.parts]
            removed = tuple(sorted(n for n in sub.names if n not in current))
        elif state.synced is None and not state.known:
            chosen = current.select(sub.names)  # shared by the streams with these names
            changed, fresh = chosen.resources, [chosen.versions]
            removed = tuple(sorted(sub.names - chosen.names))
        elif state.synced is None:
            changed = _changed(current, state.subscription, state.known)
            removed = _removed(current, state.subscription, state.known)
        else:
            diff, gone = current.changed_since(state.synced)
            changed, removed = _reconcile(current, state, diff | gone | state.dirty)
        state.synced, state.dirty = current, set()
        state.pending = False
        if not changed and not removed and not always:
            return []
        if type_url == CLUSTER and state.known:  # a fresh stream owes nothing: skip the scan
            self._owe_endpoints([r.name for r in changed if r.name in state.known])
        if fresh is not None:
            for versions in fresh:
                state.known.update(versions)
        else:
            for r in changed:
                state.known[r.name] = r.version
        for name in removed:
            if name in state.subscription.names:
                state.known[name] = ABSENT
            else:
                state.known.pop(name, None)
        state.nonce = self.nonces(type_url, current.version, changed, (), removed)
        state.sent_version = current.version
        state.outstanding = True
        return [Send(type_url, current.version, state.nonce, changed, removed, delta=True)]


def _forget(state: DeltaTypeState, names: list[str]) -> None:
    for name in names:
        if state.known.pop(name, None) is not None:
            state.dirty.add(name)


def _reconcile(
    current: ResourceSet, state: DeltaTypeState, names: frozenset[str] | set[str]
) -> tuple[tuple[Resource, ...], tuple[str, ...]]:
    """``_changed`` and ``_removed`` restricted to ``names``, the only ones that can differ."""
    sub, known = state.subscription, state.known
    changed: list[Resource] = []
    removed: list[str] = []
    for name in sorted(names):
        r = current.get(name)
        if r is None:
            held = known.get(name)
            if (held is not None and held != ABSENT) or (name in sub.names and held != ABSENT):
                removed.append(name)
        elif sub.wants(name) and known.get(name) != r.version:
            changed.append(r)
    return tuple(changed), tuple(removed)


def _changed(
    current: ResourceSet, sub: Subscription, known: dict[str, str]
) -> tuple[Resource, ...]:
    if sub.wildcard:
        candidates = list(current)
    else:
        candidates = [r for n in sorted(sub.names) if (r := current.get(n)) is not None]
    return tuple(r for r in candidates if known.get(r.name) != r.version)


def _removed(current: ResourceSet, sub: Subscription, known: dict[str, str]) -> tuple[str, ...]:
    gone = {n for n, v in known.items() if v != ABSENT and current.get(n) is None}
    never = {n for n in sub.names if current.get(n) is None and known.get(n) != ABSENT}
    return tuple(sorted(gone | never))
