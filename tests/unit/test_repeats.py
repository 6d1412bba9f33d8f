"""A SotW request that repeats its stream's names is read from its bytes, exactly as
decoding it would read it, and anything else is left to the decoder."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from xds_server import types
from xds_server.protocol.events import SotwRequest
from xds_server.transport import convert
from xds_server.transport.convert import Requests
from xds_server.transport.repeats import encoding, read_repeat

EDS = types.ENDPOINT
NAMES = tuple(f"outbound|8080||svc-{i}.ns.svc.cluster.local" for i in range(40))


def raw(**fields: Any) -> bytes:
    return discovery_pb2.DiscoveryRequest(**fields).SerializeToString()


def test_the_encoding_decodes_to_the_names() -> None:
    decoded = discovery_pb2.DiscoveryRequest.FromString(encoding(NAMES))
    assert tuple(decoded.resource_names) == NAMES
    assert encoding(NAMES) is encoding(NAMES)  # made once per tuple
    assert tuple(discovery_pb2.DiscoveryRequest.FromString(encoding(("", "é"))).resource_names) == (
        "",
        "é",
    )


def test_an_ack_as_envoy_writes_it_is_read() -> None:
    ack = raw(version_info="v1", resource_names=NAMES, type_url=EDS, response_nonce="7")
    assert read_repeat(ack, encoding(NAMES)) == ("v1", EDS, "7")
    assert read_repeat(raw(resource_names=NAMES), encoding(NAMES)) == ("", "", "")


def test_anything_else_is_left_to_the_decoder() -> None:
    held = encoding(NAMES)
    others = [
        raw(version_info="v1", resource_names=NAMES[:-1], type_url=EDS),  # one name fewer
        raw(version_info="v1", resource_names=(*NAMES, "x"), type_url=EDS),  # one more
        raw(version_info="v1", resource_names=NAMES[::-1], type_url=EDS),  # another order
        raw(resource_names=NAMES, node=base_pb2.Node(id="a")),  # a node
        raw(resource_names=NAMES, error_detail=status_pb2.Status(message="bad")),  # a NACK
        raw(resource_names=NAMES, type_url=EDS) + raw(type_url=EDS),  # a field twice
        raw(resource_names=NAMES) + b"\x3a\x00",  # an unknown field 7
        raw(resource_names=NAMES, type_url=EDS)[:-3],  # cut short
        raw(resource_names=NAMES) + b"\x22\x02\xff\xfe",  # a type_url that is not UTF-8
    ]
    for other in others:
        assert read_repeat(other, held) is None


@settings(max_examples=300, deadline=None)
@given(
    version=st.text(max_size=5),
    type_url=st.text(max_size=5),
    nonce=st.text(max_size=5),
    drop=st.integers(0, len(NAMES)),
    node=st.booleans(),
    tail=st.binary(max_size=4),
)
def test_whatever_is_read_is_what_decoding_gives(
    version: str, type_url: str, nonce: str, drop: int, node: bool, tail: bytes
) -> None:
    names = NAMES[:drop] + NAMES[drop + 1 :]
    data = raw(version_info=version, resource_names=names, type_url=type_url, response_nonce=nonce)
    if node:
        data = raw(node=base_pb2.Node(id="n")) + data
    data += tail
    got = read_repeat(data, encoding(NAMES))
    if got is None:
        return
    decoded = discovery_pb2.DiscoveryRequest.FromString(data)
    assert tuple(decoded.resource_names) == NAMES
    assert got == (decoded.version_info, decoded.type_url, decoded.response_nonce)
    assert not decoded.HasField("node") and not decoded.HasField("error_detail")


def test_a_stream_reads_its_acks_from_bytes_as_it_would_decode_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[object] = []

    def counted(data: bytes, names_encoding: bytes) -> tuple[str, str, str] | None:
        answer = read_repeat(data, names_encoding)
        read.append(answer)
        return answer

    monkeypatch.setattr(convert, "read_repeat", counted)
    fast, slow = Requests(False, ""), Requests(False, "")
    requests = [
        raw(node=base_pb2.Node(id="n"), type_url=EDS, resource_names=NAMES),
        raw(version_info="v1", resource_names=NAMES, type_url=EDS, response_nonce="1"),
        raw(version_info="v2", resource_names=NAMES, type_url=EDS, response_nonce="2"),
        raw(
            resource_names=NAMES,
            type_url=EDS,
            response_nonce="3",
            error_detail=status_pb2.Status(message="no"),
        ),
        raw(version_info="v2", resource_names=NAMES[1:], type_url=EDS, response_nonce="4"),
        raw(version_info="v3", resource_names=NAMES[1:], type_url=EDS, response_nonce="5"),
    ]
    for data in requests:
        a, b = fast(data), slow(discovery_pb2.DiscoveryRequest.FromString(data))
        assert isinstance(a, SotwRequest) and a == b
    assert fast.decoded(requests[0]).node.id == "n"
    assert [r[2] for r in read if r is not None] == ["1", "2", "5"]  # the three repeats


def test_made_up_types_leave_nothing_behind() -> None:
    requests = Requests(False, "")
    for i in range(100):
        got = requests(raw(type_url=f"type.googleapis.com/made.up.T{i}", resource_names=NAMES))
        assert isinstance(got, SotwRequest) and got.resource_names == NAMES
    assert requests._names == {} and requests._encodings == {}
