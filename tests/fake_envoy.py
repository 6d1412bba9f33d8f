"""A fake Envoy for protocol tests: applies responses and answers as Envoy does.

It subscribes to CDS by wildcard and to EDS for exactly the clusters it holds,
as a real sidecar does, ACKs every response, and NACKs any response carrying
a resource whose bytes contain ``bad``. ``Link`` pairs it with a protocol
stream over in-memory queues, in the spirit of h11's ``ConnectionPair``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from xds_server import types
from xds_server.protocol.events import Send, SotwRequest
from xds_server.protocol.sotw import SotwStream
from xds_server.snapshot import Snapshot


@dataclass
class FakeEnvoy:
    """The client half: what this proxy holds, per type."""

    held: dict[str, dict[str, str]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    nonces: dict[str, str] = field(default_factory=dict)
    nacks: int = 0
    eds_subscription: tuple[str, ...] = ()

    def start(self) -> list[SotwRequest]:
        """The first request of a new stream."""
        return [SotwRequest(types.CLUSTER)]

    def receive(self, send: Send) -> list[SotwRequest]:
        """Apply (or reject) a response; return the requests Envoy would send next."""
        t = send.type_url
        self.nonces[t] = send.nonce
        if any(b"bad" in r.any_bytes for r in send.items()):
            self.nacks += 1
            return [
                SotwRequest(
                    t,
                    self.versions.get(t, ""),
                    send.nonce,
                    self._names(t),
                    error_detail="rejected: bad",
                )
            ]
        held = self.held.setdefault(t, {})
        if t in types.WILDCARD_TYPES:
            held.clear()
        wanted = self._names(t)
        held.update(
            {r.name: r.version for r in send.items() if t != types.ENDPOINT or r.name in wanted}
        )  # Envoy ignores EDS resources it has no cluster for
        self.versions[t] = send.version
        out = [SotwRequest(t, send.version, send.nonce, self._names(t))]
        if t == types.CLUSTER:
            eds_names = self._names(types.ENDPOINT)
            if eds_names != self.eds_subscription:
                self.eds_subscription = eds_names
                self.held[types.ENDPOINT] = {
                    n: v for n, v in self.held.get(types.ENDPOINT, {}).items() if n in eds_names
                }
                out.append(
                    SotwRequest(
                        types.ENDPOINT,
                        self.versions.get(types.ENDPOINT, ""),
                        self.nonces.get(types.ENDPOINT, ""),
                        eds_names,
                    )
                )
        return out

    def _names(self, type_url: str) -> tuple[str, ...]:
        if type_url == types.ENDPOINT:
            return tuple(sorted(self.held.get(types.CLUSTER, {})))
        return ()


@dataclass
class Link:
    """A protocol stream and a fake Envoy joined by two in-order queues."""

    server: SotwStream = field(default_factory=SotwStream)
    client: FakeEnvoy = field(default_factory=FakeEnvoy)
    to_client: deque[Send] = field(default_factory=deque)
    to_server: deque[SotwRequest] = field(default_factory=deque)
    sent: list[Send] = field(default_factory=list)

    def connect(self, snapshot: Snapshot) -> None:
        """Open the stream: the server learns the snapshot, Envoy sends its first request."""
        self._deliver_actions(self.server.on_snapshot(snapshot))
        self.to_server.extend(self.client.start())

    def publish(self, snapshot: Snapshot) -> None:
        """The control plane publishes a snapshot for this proxy."""
        self._deliver_actions(self.server.on_snapshot(snapshot))

    def step_server(self) -> None:
        """Deliver one request to the server."""
        if self.to_server:
            self._deliver_actions(self.server.on_request(self.to_server.popleft()))

    def step_client(self) -> None:
        """Deliver one response to Envoy."""
        if self.to_client:
            self.to_server.extend(self.client.receive(self.to_client.popleft()))

    def drain(self, limit: int = 1000) -> None:
        """Run both sides until nothing is in flight."""
        for _ in range(limit):
            if not self.to_client and not self.to_server:
                return
            self.step_client()
            self.step_server()
        raise AssertionError("link did not go quiet: a response loop")

    def _deliver_actions(self, actions: list[object]) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.sent.append(a)
                self.to_client.append(a)
