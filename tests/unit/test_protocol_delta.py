"""Delta (incremental) protocol scenarios, message by message, without sockets."""

from __future__ import annotations

from protocol_fixtures import snap

from xds_server import types
from xds_server.protocol.delta import DeltaStream
from xds_server.protocol.events import Acked, DeltaRequest, Ignored, IgnoreReason, Nacked, Send

CDS, EDS = types.CLUSTER, types.ENDPOINT


def one_send(actions: list[object]) -> Send:
    (send,) = [a for a in actions if isinstance(a, Send)]
    return send


def no_send(actions: list[object]) -> bool:
    return not any(isinstance(a, Send) for a in actions)


def names(send: Send) -> list[str]:
    return [r.name for r in send.items()]


def ack(send: Send) -> DeltaRequest:
    return DeltaRequest(send.type_url, response_nonce=send.nonce)


def wildcard_stream() -> tuple[DeltaStream, Send]:
    s = DeltaStream()
    s.on_snapshot(snap(cds={"a": "1", "b": "1"}))
    return s, one_send(s.on_request(DeltaRequest(CDS)))


def test_legacy_wildcard_initial_gets_everything() -> None:
    _, first = wildcard_stream()
    assert names(first) == ["a", "b"] and first.delta and first.removed == ()


def test_only_changed_resources_and_removals_are_sent() -> None:
    s, first = wildcard_stream()
    assert s.on_request(ack(first)) == [Acked(CDS, first.version, first.nonce)]
    push = one_send(s.on_snapshot(snap(cds={"a": "2", "c": "1"})))
    assert names(push) == ["a", "c"]
    assert push.removed == ("b",)


def test_first_request_is_answered_even_when_empty() -> None:
    s = DeltaStream()
    s.on_snapshot(snap(cds={}))
    first = one_send(s.on_request(DeltaRequest(CDS)))
    assert first.items() == () and first.removed == ()


def test_explicit_subscription_of_missing_name_is_reported_removed_once() -> None:
    s = DeltaStream()
    s.on_snapshot(snap(eds={"a": "1"}))
    first = one_send(s.on_request(DeltaRequest(EDS, subscribe=("a", "ghost"))))
    assert names(first) == ["a"] and first.removed == ("ghost",)
    s.on_request(ack(first))
    assert no_send(s.on_snapshot(snap(eds={"a": "1", "zzz": "1"})))
    appeared = one_send(s.on_snapshot(snap(eds={"a": "1", "ghost": "1"})))
    assert names(appeared) == ["ghost"]


def test_unsubscribe_forgets_the_resource() -> None:
    s = DeltaStream()
    s.on_snapshot(snap(eds={"a": "1", "b": "1"}))
    first = one_send(s.on_request(DeltaRequest(EDS, subscribe=("a", "b"))))
    s.on_request(ack(first))
    s.on_request(DeltaRequest(EDS, response_nonce=first.nonce, unsubscribe=("b",)))
    assert no_send(s.on_snapshot(snap(eds={"a": "1", "b": "2"})))
    assert "b" not in s.types[EDS].known


def test_reconnect_with_initial_versions_sends_only_differences() -> None:
    s = DeltaStream()
    current = snap(cds={"a": "1", "b": "1"})
    s.on_snapshot(current)
    a_version = current.get(CDS).get("a").version  # type: ignore[union-attr]
    req = DeltaRequest(
        CDS, subscribe=("*",), initial_resource_versions={"a": a_version, "b": "old", "gone": "x"}
    )
    first = one_send(s.on_request(req))
    assert names(first) == ["b"]
    assert first.removed == ("gone",)


def test_nack_is_reported_and_not_resent() -> None:
    s, first = wildcard_stream()
    s.on_request(ack(first))
    bad = one_send(s.on_snapshot(snap(cds={"a": "bad", "b": "1"})))
    actions = s.on_request(DeltaRequest(CDS, response_nonce=bad.nonce, error_detail="no"))
    assert actions == [Nacked(CDS, bad.version, bad.nonce, "no")]
    assert no_send(s.on_snapshot(snap(cds={"a": "bad", "b": "1"})))


def test_stale_ack_is_ignored_but_stale_subscription_is_applied() -> None:
    s = DeltaStream()
    s.on_snapshot(snap(eds={"a": "1", "b": "1"}))
    first = one_send(s.on_request(DeltaRequest(EDS, subscribe=("a",))))
    s.on_request(ack(first))
    push = one_send(s.on_snapshot(snap(eds={"a": "2", "b": "1"})))
    assert s.on_request(ack(first)) == [Ignored(EDS, IgnoreReason.STALE_NONCE, first.nonce)]
    sub = one_send(s.on_request(DeltaRequest(EDS, response_nonce=first.nonce, subscribe=("b",))))
    assert names(sub) == ["b"]
    assert int(sub.nonce) > int(push.nonce)


def test_snapshot_waits_for_outstanding_response() -> None:
    s, _ = wildcard_stream()
    assert no_send(s.on_snapshot(snap(cds={"a": "2"})))
    assert no_send(s.on_snapshot(snap(cds={"a": "3"})))
    latest = one_send(s.on_request(ack(_)))
    assert names(latest) == ["a"] and latest.removed == ("b",)


def test_denied_type_closes_a_single_type_delta_stream() -> None:
    s = DeltaStream(allowed=frozenset({types.SECRET}), denied={types.SECRET: "no"})
    s.on_snapshot(snap(sds={"default": "key"}))
    actions = s.on_request(DeltaRequest(types.SECRET, subscribe=("default",)))
    assert [type(a).__name__ for a in actions] == ["Close"]
    assert no_send(actions)


def test_updated_cluster_gets_its_unchanged_endpoints_again() -> None:
    s = DeltaStream()
    s.on_snapshot(snap(cds={"a": "1"}, eds={"a": "e"}))
    cds = one_send(s.on_request(DeltaRequest(CDS)))
    s.on_request(ack(cds))
    eds = one_send(s.on_request(DeltaRequest(EDS, subscribe=("a",))))
    s.on_request(ack(eds))
    pushed = [a for a in s.on_snapshot(snap(cds={"a": "2"}, eds={"a": "e"})) if isinstance(a, Send)]
    assert [p.type_url for p in pushed] == [CDS, EDS]
    assert names(pushed[1]) == ["a"]
