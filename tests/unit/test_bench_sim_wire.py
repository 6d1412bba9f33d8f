"""``benchmarks.sim_wire``: what the simulated sidecars read is what protobuf would decode,
and what they write is what protobuf would encode."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import sim_wire
from xds_server.transport.repeats import encoding
from xds_server.types import ENDPOINT

texts = st.text(max_size=12)
names = st.lists(texts, max_size=40)
nodes = st.one_of(st.none(), st.builds(base_pb2.Node, id=st.text(min_size=1, max_size=12)))


@st.composite
def sotw_responses(draw: st.DrawFn) -> discovery_pb2.DiscoveryResponse:
    resp = discovery_pb2.DiscoveryResponse(
        version_info=draw(texts), type_url=draw(texts), nonce=draw(texts)
    )
    for value in draw(st.lists(st.binary(max_size=20), max_size=sim_wire.MAX_WALKED + 3)):
        resp.resources.add(type_url="type.googleapis.com/x", value=value)
    if draw(st.booleans()):
        resp.control_plane.identifier = draw(texts)
    return resp


@st.composite
def delta_responses(draw: st.DrawFn) -> discovery_pb2.DeltaDiscoveryResponse:
    resp = discovery_pb2.DeltaDiscoveryResponse(
        system_version_info=draw(texts),
        type_url=draw(texts),
        nonce=draw(texts),
        removed_resources=draw(names),
    )
    for name in draw(st.lists(texts, max_size=sim_wire.MAX_WALKED + 3)):
        resp.resources.add(name=name, version=draw(texts)).resource.value = b"\x08\x01"
    if draw(st.booleans()):
        resp.control_plane.identifier = draw(texts)
    return resp


@settings(max_examples=600)
@given(st.one_of(sotw_responses(), delta_responses()))
def test_a_response_reads_as_protobuf_decodes_it(resp: Any) -> None:
    """``read`` gives what protobuf's decoding gives, SotW and delta, and decodes only past
    ``MAX_WALKED`` resources."""
    delta = isinstance(resp, discovery_pb2.DeltaDiscoveryResponse)
    got = sim_wire.read(resp.SerializeToString(), delta=delta)
    version = resp.system_version_info if delta else resp.version_info
    removed = list(resp.removed_resources) if delta else []
    assert (got.type_url, got.version, got.nonce, got.count, got.removed) == (
        resp.type_url, version, resp.nonce, len(resp.resources), removed,
    )  # fmt: skip
    assert (got.message is None) == (len(resp.resources) <= sim_wire.MAX_WALKED)
    assert got.decoded() == resp


def test_only_a_response_with_many_resources_is_decoded_by_protobuf() -> None:
    few = discovery_pb2.DiscoveryResponse(type_url="t", nonce="n")
    for _ in range(sim_wire.MAX_WALKED):
        few.resources.add(value=b"x")
    many = discovery_pb2.DiscoveryResponse()
    many.CopyFrom(few)
    many.resources.add(value=b"x")
    assert sim_wire.read(few.SerializeToString(), delta=False).message is None
    assert sim_wire.read(many.SerializeToString(), delta=False).message == many


def test_bytes_protobuf_cannot_decode_are_refused_as_protobuf_refuses_them() -> None:
    truncated = discovery_pb2.DiscoveryResponse(nonce="abc").SerializeToString()[:-1]
    with pytest.raises(DecodeError):
        sim_wire.read(truncated, delta=False)


def _encoded(node: base_pb2.Node | None) -> bytes:
    return b"" if node is None else node.SerializeToString()


@settings(max_examples=300)
@given(texts, texts, texts, names, names, nodes)
def test_requests_are_what_protobuf_encodes(
    type_url: str, version: str, nonce: str, first: list[str], second: list[str], node: Any
) -> None:
    """SotW (``first`` the watched names) and delta (``first`` subscribed, ``second``
    unsubscribed), with or without a node."""
    on_wire = _encoded(node)
    sotw = discovery_pb2.DiscoveryRequest(node=node, type_url=type_url, resource_names=first)
    sotw.version_info, sotw.response_nonce = version, nonce
    got = sim_wire.sotw_request(
        type_url, version=version, nonce=nonce, names=tuple(first), node=on_wire
    )
    assert got == sotw.SerializeToString()
    delta = discovery_pb2.DeltaDiscoveryRequest(node=node, type_url=type_url, response_nonce=nonce)
    delta.resource_names_subscribe.extend(first)
    delta.resource_names_unsubscribe.extend(second)
    got = sim_wire.delta_request(
        type_url, nonce=nonce, subscribe=first, unsubscribe=second, node=on_wire
    )
    assert got == delta.SerializeToString()


def test_a_long_name_list_is_encoded_once_per_tuple() -> None:
    watched = tuple(f"outbound|8080||svc-{i}.default.svc.cluster.local" for i in range(100))
    first = sim_wire.sotw_request(ENDPOINT, names=watched)
    assert sim_wire._names(watched) is encoding(watched)  # the server's memo, per tuple
    other = (*watched[:-1], "another")
    assert sim_wire.sotw_request(ENDPOINT, names=other) != first
    assert sim_wire.sotw_request(ENDPOINT, names=watched) == first
