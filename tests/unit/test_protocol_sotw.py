"""State-of-the-world protocol scenarios, message by message, without sockets."""

from __future__ import annotations

from protocol_fixtures import snap

from xds_server import types
from xds_server.protocol.events import (
    Acked,
    Close,
    Ignored,
    IgnoreReason,
    Nacked,
    Send,
    SotwRequest,
)
from xds_server.protocol.sotw import SotwStream

CDS, EDS = types.CLUSTER, types.ENDPOINT


def sends(actions: list[object]) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def names(send: Send) -> list[str]:
    return [r.name for r in send.items()]


def started(snapshot: object = None, **kw: dict[str, str]) -> tuple[SotwStream, Send]:
    s = SotwStream()
    s.on_snapshot(snap(cds={"a": "1", "b": "1"}, eds={"a": "e1", "b": "e1"}, **kw))
    (first,) = sends(s.on_request(SotwRequest(CDS)))
    return s, first


def ack(send: Send, names: tuple[str, ...] = ()) -> SotwRequest:
    return SotwRequest(send.type_url, send.version, send.nonce, names)


def test_initial_wildcard_request_gets_every_cluster() -> None:
    _, first = started()
    assert names(first) == ["a", "b"]
    assert first.nonce == "1"


def test_ack_sends_nothing_and_is_reported() -> None:
    s, first = started()
    actions = s.on_request(ack(first))
    assert actions == [Acked(CDS, first.version, first.nonce)]


def test_new_snapshot_is_pushed_when_idle() -> None:
    s, first = started()
    s.on_request(ack(first))
    (push,) = sends(s.on_snapshot(snap(cds={"a": "2", "b": "1"}, eds={})))
    assert push.version != first.version
    assert names(push) == ["a", "b"]  # CDS is always the full set
    assert push.nonce == "2"


def test_unchanged_type_is_not_resent() -> None:
    s, first = started()
    s.on_request(ack(first))
    assert sends(s.on_snapshot(snap(cds={"a": "1", "b": "1"}, eds={"a": "zz"}))) == []


def test_snapshots_while_outstanding_coalesce_to_the_latest() -> None:
    s, first = started()
    assert sends(s.on_snapshot(snap(cds={"a": "2"}))) == []
    assert sends(s.on_snapshot(snap(cds={"a": "3"}))) == []
    (push,) = sends(s.on_request(ack(first)))
    assert push.version == snap(cds={"a": "3"}).version(CDS)


def test_nack_is_reported_and_the_rejected_version_not_resent() -> None:
    s, first = started()
    s.on_request(ack(first))
    (bad,) = sends(s.on_snapshot(snap(cds={"a": "bad"})))
    nack = SotwRequest(CDS, first.version, bad.nonce, (), error_detail="invalid cluster a")
    actions = s.on_request(nack)
    assert actions == [Nacked(CDS, bad.version, bad.nonce, "invalid cluster a")]
    assert sends(s.on_snapshot(snap(cds={"a": "bad"}))) == []
    (good,) = sends(s.on_snapshot(snap(cds={"a": "good"})))
    assert names(good) == ["a"]


def test_a_nack_repeated_for_its_nonce_is_reported_once() -> None:
    s, first = started()
    s.on_request(ack(first))
    (bad,) = sends(s.on_snapshot(snap(cds={"a": "bad"})))
    nack = SotwRequest(CDS, first.version, bad.nonce, (), error_detail="invalid cluster a")
    assert isinstance(s.on_request(nack)[0], Nacked)
    assert s.on_request(nack) == [Ignored(CDS, IgnoreReason.ANSWERED, bad.nonce)]


def test_stale_nonce_is_ignored() -> None:
    s, first = started()
    s.on_request(ack(first))
    s.on_snapshot(snap(cds={"a": "2"}))  # nonce 2 outstanding
    actions = s.on_request(SotwRequest(CDS, first.version, first.nonce))
    assert actions == [Ignored(CDS, IgnoreReason.STALE_NONCE, first.nonce)]


def test_eds_sends_only_changed_and_newly_subscribed_resources() -> None:
    s, _ = started()
    (e1,) = sends(s.on_request(SotwRequest(EDS, resource_names=("a", "b"))))
    assert names(e1) == ["a", "b"]
    s.on_request(ack(e1, ("a", "b")))
    (e2,) = sends(s.on_snapshot(snap(cds={"a": "1", "b": "1"}, eds={"a": "e2", "b": "e1"})))
    assert names(e2) == ["a"]
    s.on_request(ack(e2, ("a", "b")))
    s2 = snap(cds={"a": "1", "b": "1", "c": "1"}, eds={"a": "e2", "b": "e1", "c": "e1"})
    s.on_snapshot(s2)
    (e3,) = sends(s.on_request(ack(e2, ("a", "b", "c"))))
    assert names(e3) == ["c"]


def test_unsubscribed_resources_are_not_sent() -> None:
    s, _ = started()
    (e1,) = sends(s.on_request(SotwRequest(EDS, resource_names=("a",))))
    assert names(e1) == ["a"]
    s.on_request(ack(e1, ("a",)))
    assert sends(s.on_snapshot(snap(cds={"a": "1", "b": "1"}, eds={"a": "e1", "b": "new"}))) == []


def test_legacy_wildcard_ends_when_names_are_given() -> None:
    s, first = started()
    s.on_request(ack(first))
    (push,) = sends(s.on_snapshot(snap(cds={"a": "9", "b": "9"})))
    (only_a,) = sends(s.on_request(ack(push, ("a",))))
    assert names(only_a) == ["a"]


def test_explicit_wildcard_with_names() -> None:
    s = SotwStream()
    s.on_snapshot(snap(cds={"a": "1", "b": "1"}))
    (first,) = sends(s.on_request(SotwRequest(CDS, resource_names=("*", "a"))))
    assert names(first) == ["a", "b"]


def test_reconnect_with_another_replicas_nonce_gets_a_full_response() -> None:
    s = SotwStream()
    s.on_snapshot(snap(cds={"a": "1"}, eds={"a": "e"}))
    req = SotwRequest(
        EDS, version_info="old-version", response_nonce="other-7", resource_names=("a",)
    )
    (first,) = sends(s.on_request(req))
    assert names(first) == ["a"]
    assert first.nonce == "1"


def test_unknown_type_is_ignored_and_the_stream_stays_usable() -> None:
    s, first = started()
    actions = s.on_request(SotwRequest("type.googleapis.com/some.Unknown"))
    assert actions == [Ignored("type.googleapis.com/some.Unknown", IgnoreReason.UNKNOWN_TYPE)]
    assert s.on_request(ack(first)) == [Acked(CDS, first.version, first.nonce)]


def test_per_type_stream_closes_on_another_type() -> None:
    s = SotwStream(allowed=frozenset({CDS}))
    (close,) = s.on_request(SotwRequest(EDS, resource_names=("a",)))
    assert isinstance(close, Close) and close.code == "INVALID_ARGUMENT"


def test_nothing_is_sent_for_types_never_subscribed() -> None:
    s, first = started()
    s.on_request(ack(first))
    actions = s.on_snapshot(snap(cds={"a": "1", "b": "1"}, eds={"a": "x"}, lds={"l": "1"}))
    assert sends(actions) == []


def test_snapshot_pushes_follow_ads_order() -> None:
    s = SotwStream()
    s.on_snapshot(snap(cds={"a": "1"}, eds={"a": "1"}, lds={"l": "1"}, rds={"r": "1"}))
    pending = []
    for req in (
        SotwRequest(types.ROUTE, resource_names=("r",)),
        SotwRequest(types.LISTENER),
        SotwRequest(EDS, resource_names=("a",)),
        SotwRequest(CDS),
    ):
        pending += sends(s.on_request(req))
    for p in pending:
        names_ = ("r",) if p.type_url == types.ROUTE else ("a",) if p.type_url == EDS else ()
        s.on_request(ack(p, names_))
    pushed = sends(
        s.on_snapshot(snap(cds={"a": "2"}, eds={"a": "2"}, lds={"l": "2"}, rds={"r": "2"}))
    )
    assert [p.type_url for p in pushed] == list(types.ADS_ORDER[:4])


def test_denied_type_on_ads_is_refused_and_the_stream_goes_on() -> None:
    s = SotwStream(denied={types.SECRET: "secrets need an authenticated stream"})
    s.on_snapshot(snap(cds={"a": "1"}, sds={"default": "key"}))
    refused = s.on_request(SotwRequest(types.SECRET, resource_names=("default",)))
    assert refused == [Ignored(types.SECRET, IgnoreReason.DENIED)]
    assert names(sends(s.on_request(SotwRequest(CDS)))[0]) == ["a"]


def test_denied_type_closes_a_single_type_stream_with_permission_denied() -> None:
    s = SotwStream(allowed=frozenset({types.SECRET}), denied={types.SECRET: "no identity"})
    s.on_snapshot(snap(sds={"default": "key"}))
    (close,) = s.on_request(SotwRequest(types.SECRET, resource_names=("default",)))
    assert close == Close("PERMISSION_DENIED", "no identity")


def test_changed_cluster_gets_its_unchanged_endpoints_again() -> None:
    # Envoy re-creates a changed cluster, which warms until EDS arrives (envoy#13009).
    s, first = started()
    s.on_request(ack(first))
    (e1,) = sends(s.on_request(SotwRequest(EDS, resource_names=("a", "b"))))
    s.on_request(ack(e1, ("a", "b")))
    pushed = sends(s.on_snapshot(snap(cds={"a": "2", "b": "1"}, eds={"a": "e1", "b": "e1"})))
    assert [p.type_url for p in pushed] == [CDS, EDS]
    assert names(pushed[1]) == ["a"]  # only the changed cluster's endpoints, unchanged as they are
    assert pushed[1].version == e1.version


def test_resource_count_includes_whole_parts() -> None:
    _, first = started()
    assert first.resource_count() == len(first.items()) == 2
