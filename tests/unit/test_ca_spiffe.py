"""SPIFFE ID parsing and formatting (ca/spiffe.py): spec rules and Istio's ns/sa form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ca import spiffe
from ca.errors import CAError, CAErrorKind, InvalidSpiffeId
from ca.spiffe import SpiffeId
from xds_server.errors import PyistiodError, StatusCode


def test_parse_and_format_round_trip() -> None:
    uri = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    sid = spiffe.parse(uri)
    assert sid == SpiffeId("cluster.local", "default", "bookinfo-productpage")
    assert str(sid) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "spiffe://td/ns/a/sa/b",
        "spiffe://my_td-1.example.org/ns/istio-system/sa/istiod",
        "spiffe://cluster.local/ns/Mixed.Case_ns/sa/..a",  # '..a' is not '..'
        "spiffe://0/ns/n/sa/s",
    ],
)
def test_valid_ids(uri: str) -> None:
    assert str(spiffe.parse(uri)) == uri


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("", "must start with 'spiffe://'"),
        ("SPIFFE://td/ns/a/sa/b", "must start with"),
        ("https://td/ns/a/sa/b", "must start with"),
        ("spiffe:/td/ns/a/sa/b", "must start with"),
        ("spiffe:///ns/a/sa/b", "trust domain is empty"),
        ("spiffe://Cluster.local/ns/a/sa/b", "characters 'C'"),
        ("spiffe://td:8080/ns/a/sa/b", "characters ':'"),
        ("spiffe://user@td/ns/a/sa/b", "characters '@'"),
        ("spiffe://td", "path is missing"),
        ("spiffe://td/", "empty segment"),
        ("spiffe://td/ns//sa/b", "empty segment"),
        ("spiffe://td/ns/a/sa/b/", "empty segment"),
        ("spiffe://td/ns/./sa/b", "'.' is not allowed"),
        ("spiffe://td/ns/../sa/b", "'..' is not allowed"),
        ("spiffe://td/ns/a%20b/sa/b", "characters '%'"),
        ("spiffe://td/ns/a b/sa/b", "characters ' '"),
        ("spiffe://td/ns/a/sa/b?x=1", "no query"),
        ("spiffe://td/ns/a/sa/b#frag", "no fragment"),
        ("spiffe://td/ns/a", "is not Istio's"),
        ("spiffe://td/ns/a/sa/b/c", "is not Istio's"),
        ("spiffe://td/namespace/a/sa/b", "is not Istio's"),
        ("spiffe://td/ns/a/serviceaccount/b", "is not Istio's"),
        ("spiffe://" + "a" * 256 + "/ns/a/sa/b", "above 255 characters"),
        ("spiffe://td/ns/a/sa/" + "b" * 2048, "above the 2048-byte maximum"),
    ],
)
def test_invalid_ids_say_what_is_wrong(uri: str, says: str) -> None:
    with pytest.raises(InvalidSpiffeId) as err:
        spiffe.parse(uri)
    assert says in str(err.value)
    assert err.value.uri == uri
    assert err.value.kind is CAErrorKind.INVALID_SPIFFE_ID
    assert err.value.grpc_status is StatusCode.INVALID_ARGUMENT
    assert isinstance(err.value, CAError)
    assert isinstance(err.value, PyistiodError)


@pytest.mark.parametrize(
    ("td", "ns", "sa"),
    [("", "a", "b"), ("TD", "a", "b"), ("td", "", "b"), ("td", "a", ".."), ("td", "a/b", "c")],
)
def test_constructor_validates_like_parse(td: str, ns: str, sa: str) -> None:
    with pytest.raises(InvalidSpiffeId):
        SpiffeId(td, ns, sa)


def test_spiffe_id_is_frozen_and_hashable() -> None:
    sid = SpiffeId("td", "a", "b")
    with pytest.raises(AttributeError):
        sid.namespace = "c"  # type: ignore[misc]
    assert {sid: 1}[SpiffeId("td", "a", "b")] == 1


_TD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=40)
_SEGMENT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
    min_size=1,
    max_size=40,
).filter(lambda s: s not in (".", ".."))


@given(_TD, _SEGMENT, _SEGMENT)
def test_every_valid_id_round_trips(td: str, ns: str, sa: str) -> None:
    sid = SpiffeId(td, ns, sa)
    assert spiffe.parse(str(sid)) == sid
