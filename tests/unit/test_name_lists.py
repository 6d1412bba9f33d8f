"""Equal resource-name lists are held once across streams, and never change meaning."""

from __future__ import annotations

from envoy.service.discovery.v3 import discovery_pb2
from protocol_fixtures import snap

from xds_server import types
from xds_server.protocol.delta import DeltaStream
from xds_server.protocol.events import DeltaRequest, SotwRequest
from xds_server.protocol.names import NameLists
from xds_server.protocol.sotw import SotwStream
from xds_server.transport.convert import Requests

EDS = types.ENDPOINT
NAMES = [f"outbound|8080||svc-{i}.ns.svc.cluster.local" for i in range(40)]


def fresh(names: list[str]) -> list[str]:
    """Equal strings that are other objects, as each request brings."""
    return [n.encode().decode() for n in names]


def wire_request(
    names: list[str], nonce: str = "", version: str = ""
) -> discovery_pb2.DiscoveryRequest:
    """A request as gRPC hands it over: decoded from bytes, every name a fresh string."""
    req = discovery_pb2.DiscoveryRequest(
        type_url=EDS, resource_names=names, response_nonce=nonce, version_info=version
    )
    return discovery_pb2.DiscoveryRequest.FromString(req.SerializeToString())


def test_equal_lists_come_back_as_the_first_one_held() -> None:
    lists = NameLists(min_length=2)
    first = lists.intern(tuple(NAMES))
    again = lists.intern(tuple(fresh(NAMES)))
    assert again is first
    assert lists.intern(frozenset(NAMES)) is lists.intern(frozenset(reversed(NAMES)))
    assert lists.intern(tuple(NAMES[:3])) == tuple(NAMES[:3])  # different content: its own
    assert len(lists) == 3


def test_short_lists_are_not_held() -> None:
    lists = NameLists(min_length=16)
    short = ("a", "b")
    assert lists.intern(short) is short
    assert len(lists) == 0


def test_memory_is_bounded_by_entries_and_by_names() -> None:
    by_entries = NameLists(min_length=1, max_entries=2)
    kept = [by_entries.intern((f"n{i}",)) for i in range(5)]
    assert len(by_entries) == 2 and by_entries.held == 2
    assert kept[0] == ("n0",)  # a dropped value stays valid for whoever holds it
    fresh = ("n0",)
    assert by_entries.intern(fresh) is fresh  # and is shared anew from now on

    by_names = NameLists(min_length=1, max_names=50)
    by_names.intern(tuple(NAMES))  # 40
    by_names.intern(tuple(NAMES[:20]))  # 60 > 50: the 40 go
    assert len(by_names) == 1 and by_names.held == 20


def test_a_streams_acks_hold_the_same_tuple_as_other_streams() -> None:
    one, two = Requests(delta=False, default_type=""), Requests(delta=False, default_type="")
    first = one(wire_request(NAMES))
    ack = one(wire_request(NAMES, nonce="1", version="v1"))
    other = two(wire_request(NAMES))
    assert isinstance(first, SotwRequest) and isinstance(ack, SotwRequest)
    assert isinstance(other, SotwRequest)
    assert ack.resource_names is first.resource_names is other.resource_names
    assert list(first.resource_names) == NAMES
    assert (ack.response_nonce, ack.version_info, ack.type_url) == ("1", "v1", EDS)
    changed = one(wire_request(NAMES[1:]))
    assert isinstance(changed, SotwRequest) and list(changed.resource_names) == NAMES[1:]


def test_subscriptions_of_different_streams_share_one_name_set() -> None:
    snapshot = snap(eds={n: "e1" for n in NAMES})
    sotw = [SotwStream() for _ in range(2)]
    delta = [DeltaStream() for _ in range(2)]
    for s in sotw:
        s.on_snapshot(snapshot)
        s.on_request(SotwRequest(EDS, resource_names=tuple(fresh(NAMES))))
    for d in delta:
        d.on_snapshot(snapshot)
        d.on_request(DeltaRequest(EDS, subscribe=tuple(NAMES)))
    subs = [s.types[EDS].subscription for s in (*sotw, *delta)]
    sets = [sub.names for sub in subs if sub is not None]
    assert len(sets) == 4 and sets[0] == frozenset(NAMES)
    assert all(names is sets[0] for names in sets)
