"""Hypothesis over random interleavings of snapshots and a fake Envoy's requests.

Invariants (STYLE.md, "Tests"): nonces are monotonic; nothing is sent for a
type never subscribed; once the link is quiet, Envoy holds the latest snapshot.
"""

from __future__ import annotations

from fake_envoy import Link
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_fixtures import snap

from xds_server import types
from xds_server.snapshot import Snapshot

CLUSTERS = ["a", "b", "c", "d"]


@st.composite
def snapshots(draw: st.DrawFn, allow_bad: bool = False) -> Snapshot:
    names = draw(st.lists(st.sampled_from(CLUSTERS), unique=True, max_size=4))
    contents = st.sampled_from(["1", "2", "3", "bad"] if allow_bad else ["1", "2", "3"])
    cds = {n: draw(contents) for n in names}
    eds = {n: draw(contents) for n in names}
    return snap(cds=cds, eds=eds, lds={"l": draw(contents)})


ops = st.lists(st.one_of(st.just("server"), st.just("client"), snapshots(True)), max_size=40)


def run(link: Link, steps: list[object]) -> None:
    for op in steps:
        if op == "server":
            link.step_server()
        elif op == "client":
            link.step_client()
        else:
            assert isinstance(op, Snapshot)
            link.publish(op)


@settings(max_examples=300, deadline=None)
@given(initial=snapshots(), steps=ops)
def test_nonces_increase_and_unsubscribed_types_are_never_sent(
    initial: Snapshot, steps: list[object]
) -> None:
    link = Link()
    link.connect(initial)
    run(link, steps)
    link.drain()
    nonces = [int(s.nonce) for s in link.sent]
    assert nonces == sorted(nonces) and len(set(nonces)) == len(nonces)
    assert all(s.type_url != types.LISTENER for s in link.sent)


@settings(max_examples=300, deadline=None)
@given(
    initial=snapshots(),
    steps=st.lists(st.one_of(st.just("server"), st.just("client"), snapshots()), max_size=40),
    last=snapshots(),
)
def test_quiet_link_holds_the_latest_snapshot(
    initial: Snapshot, steps: list[object], last: Snapshot
) -> None:
    link = Link()
    link.connect(initial)
    run(link, steps)
    link.publish(last)
    link.drain()
    held = link.client.held
    want_cds = {r.name: r.version for r in last.get(types.CLUSTER)}
    assert held.get(types.CLUSTER, {}) == want_cds
    want_eds = {r.name: r.version for r in last.get(types.ENDPOINT) if r.name in want_cds}
    assert held.get(types.ENDPOINT, {}) == want_eds
