"""Responses with equal content share one nonce and one encoding across streams."""

from __future__ import annotations

from envoy.service.discovery.v3 import discovery_pb2
from protocol_fixtures import snap

from xds_server import types, wire
from xds_server.protocol.delta import DeltaStream
from xds_server.protocol.events import DeltaRequest, Send, SotwRequest
from xds_server.protocol.sotw import SotwStream
from xds_server.transport.convert import encode
from xds_server.transport.responses import SharedResponses

CDS, EDS = types.CLUSTER, types.ENDPOINT
CP = wire.control_plane("test")


def sends(actions: list[object]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def sotw_streams(shared: SharedResponses, count: int) -> list[SotwStream]:
    return [SotwStream(nonces=shared.nonce) for _ in range(count)]


def test_streams_sending_the_same_content_send_the_same_bytes() -> None:
    shared = SharedResponses(CP)
    first = snap(cds={"a": "1", "b": "1"}, eds={"a": "e1"})
    out = []
    for s in sotw_streams(shared, 3):
        s.on_snapshot(first)
        (send,) = sends(s.on_request(SotwRequest(CDS)))
        out.append((send, shared.encode(send)))
    assert len({send.nonce for send, _ in out}) == 1
    assert out[0][1] is out[1][1] is out[2][1]  # one encoding
    assert out[0][1] == encode(out[0][0], CP)  # the bytes a stream would have made itself
    decoded = discovery_pb2.DiscoveryResponse.FromString(out[0][1])
    assert decoded.nonce == out[0][0].nonce and decoded.version_info == out[0][0].version


def test_different_content_never_shares_a_nonce_and_each_stream_moves_on() -> None:
    shared = SharedResponses(CP)
    s1, s2 = sotw_streams(shared, 2)
    s1.on_snapshot(snap(cds={"a": "1"}, eds={}))
    s2.on_snapshot(snap(cds={"a": "2"}, eds={}))
    (a,) = sends(s1.on_request(SotwRequest(CDS)))
    (b,) = sends(s2.on_request(SotwRequest(CDS)))
    assert a.nonce != b.nonce
    assert shared.encode(a) != shared.encode(b)
    s1.on_request(SotwRequest(CDS, a.version, a.nonce))
    (c,) = sends(s1.on_snapshot(snap(cds={"a": "3"}, eds={})))
    assert c.nonce not in (a.nonce, b.nonce)
    stale = s1.on_request(SotwRequest(CDS, b.version, b.nonce))  # another stream's nonce
    assert [type(x).__name__ for x in stale] == ["Ignored"]
    acked = s1.on_request(SotwRequest(CDS, c.version, c.nonce))
    assert [type(x).__name__ for x in acked] == ["Acked"]


def test_delta_streams_share_too() -> None:
    shared = SharedResponses(CP)
    streams = [DeltaStream(nonces=shared.nonce) for _ in range(2)]
    snapshot = snap(cds={"a": "1", "b": "1"}, eds={})  # one snapshot's objects, as in the cache
    got = []
    for s in streams:
        s.on_snapshot(snapshot)
        (send,) = sends(s.on_request(DeltaRequest(CDS, subscribe=("*",))))
        got.append(send)
    assert got[0].nonce == got[1].nonce
    assert shared.encode(got[0]) is shared.encode(got[1])
    decoded = discovery_pb2.DeltaDiscoveryResponse.FromString(shared.encode(got[0]))
    assert {r.name for r in decoded.resources} == {"a", "b"}


def test_the_oldest_content_is_dropped_first_and_still_encodes_right() -> None:
    shared = SharedResponses(CP, max_entries=2)
    sent = []
    for version in ("1", "2", "3"):
        s = SotwStream(nonces=shared.nonce)
        s.on_snapshot(snap(cds={"a": version}, eds={}))
        (send,) = sends(s.on_request(SotwRequest(CDS)))
        sent.append(send)
    assert len(shared) == 2
    dropped = sent[0]
    assert shared.encode(dropped) == encode(dropped, CP)  # encoded alone, nonce kept
    again = SotwStream(nonces=shared.nonce)
    again.on_snapshot(snap(cds={"a": "1"}, eds={}))
    (send,) = sends(again.on_request(SotwRequest(CDS)))
    assert send.nonce not in {s.nonce for s in sent}  # a new nonce, never a reused one


def test_encodings_held_stay_within_the_budget() -> None:
    shared = SharedResponses(CP, budget=1)
    for version in ("1", "2", "3"):
        s = SotwStream(nonces=shared.nonce)
        s.on_snapshot(snap(cds={"a": version, "b": version}, eds={}))
        (send,) = sends(s.on_request(SotwRequest(CDS)))
        assert shared.encode(send) == encode(send, CP)
    assert len(shared) == 1  # only the newest is kept when one exceeds the budget


def test_the_content_just_asked_for_keeps_its_nonce_only_while_its_entry_lives() -> None:
    shared = SharedResponses(CP, max_entries=1)
    r = snap(cds={"a": "1"}, eds={}).get(CDS)
    resources = tuple(r)
    first = shared.nonce(CDS, r.version, resources, (), ())
    assert shared.nonce(CDS, r.version, resources, (), ()) == first  # the same tuple again
    assert shared.nonce(CDS, r.version, tuple(r), (), ()) == first  # an equal tuple too
    assert shared.nonce(CDS, "other", resources, (), ()) != first  # other content
    assert shared.nonce(CDS, r.version, resources, (), ()) != first  # its entry was dropped
