"""Hypothesis: a delta stream and an applying client converge on the latest snapshot.

The client applies every response (resources and removals), ACKs it, and
changes its subscription at random; once everything is delivered it must
hold exactly the latest snapshot's resources it is interested in. This pins
the incremental reconciliation (``delta`` rule 6) to the full comparison.
"""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fixtures import snap

from xds_server import types
from xds_server.protocol.delta import DeltaStream
from xds_server.protocol.events import DeltaRequest, Send
from xds_server.snapshot import Snapshot

EDS = types.ENDPOINT
NAMES = ["a", "b", "c", "d"]

snapshots = st.builds(
    lambda d: snap(eds=d),
    st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["1", "2", "3"]), max_size=4),
)
subscribe = st.tuples(st.just("sub"), st.lists(st.sampled_from(NAMES), max_size=2))
unsubscribe = st.tuples(st.just("unsub"), st.lists(st.sampled_from(NAMES), max_size=2))
steps = st.lists(
    st.one_of(snapshots, subscribe, unsubscribe, st.just("server"), st.just("client")),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(
    first=snapshots,
    initial=st.lists(st.sampled_from(NAMES), max_size=3),
    plan=steps,
    last=snapshots,
)
def test_client_converges_to_latest_snapshot(
    first: Snapshot, initial: list[str], plan: list[object], last: Snapshot
) -> None:
    server = DeltaStream()
    server.on_snapshot(first)
    to_client: deque[Send] = deque()
    to_server: deque[DeltaRequest] = deque([DeltaRequest(EDS, subscribe=tuple(initial))])
    held: dict[str, str] = {}
    interest = set(initial)
    nonce = ""

    def run(actions: list[object]) -> None:
        to_client.extend(a for a in actions if isinstance(a, Send))

    def deliver_client() -> None:
        nonlocal nonce
        send = to_client.popleft()
        nonce = send.nonce
        for r in send.items():
            held[r.name] = r.version
        for name in send.removed:
            held.pop(name, None)
        to_server.append(DeltaRequest(EDS, response_nonce=send.nonce))

    for step in plan:
        if isinstance(step, Snapshot):
            run(server.on_snapshot(step))
        elif step == "server" and to_server:
            run(server.on_request(to_server.popleft()))
        elif step == "client" and to_client:
            deliver_client()
        elif isinstance(step, tuple) and step[0] == "sub":
            interest |= set(step[1])
            to_server.append(DeltaRequest(EDS, response_nonce=nonce, subscribe=tuple(step[1])))
        elif isinstance(step, tuple) and step[0] == "unsub":
            interest -= set(step[1])
            for name in step[1]:
                held.pop(name, None)
            to_server.append(DeltaRequest(EDS, response_nonce=nonce, unsubscribe=tuple(step[1])))
    run(server.on_snapshot(last))
    for _ in range(200):
        if to_server:
            run(server.on_request(to_server.popleft()))
        elif to_client:
            deliver_client()
        else:
            break
    want = {r.name: r.version for r in last.get(EDS) if r.name in interest}
    assert {n: v for n, v in held.items() if n in interest} == want
