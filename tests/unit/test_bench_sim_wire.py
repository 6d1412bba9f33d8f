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

texts = st.text(max_size=12)
names = st.lists(texts, max_size=40)


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


def _reads_as_decoded(resp: Any, delta: bool) -> None:
    """``read`` of ``resp``'s bytes gives what protobuf's decoding gives, and decodes only
    past ``MAX_WALKED`` resources."""
    got = sim_wire.read(resp.SerializeToString(), delta=delta)
    version = resp.system_version_info if delta else resp.version_info
    removed = list(resp.removed_resources) if delta else []
    assert (got.type_url, got.version, got.nonce, got.count, got.removed) == (
        resp.type_url, version, resp.nonce, len(resp.resources), removed,
    )  # fmt: skip
    assert (got.message is None) == (len(resp.resources) <= sim_wire.MAX_WALKED)
    assert got.decoded() == resp


@settings(max_examples=300)
@given(sotw_responses())
def test_a_sotw_response_reads_as_protobuf_decodes_it(
    resp: discovery_pb2.DiscoveryResponse,
) -> None:
    _reads_as_decoded(resp, delta=False)


@settings(max_examples=300)
@given(delta_responses())
def test_a_delta_response_reads_as_protobuf_decodes_it(
    resp: discovery_pb2.DeltaDiscoveryResponse,
) -> None:
    _reads_as_decoded(resp, delta=True)


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


@settings(max_examples=200)
@given(texts, texts, texts, names, st.booleans())
def test_a_sotw_request_is_what_protobuf_encodes(
    type_url: str, version: str, nonce: str, watched: list[str], with_node: bool
) -> None:
    node = base_pb2.Node(id="sidecar~1") if with_node else None
    expected = discovery_pb2.DiscoveryRequest(
        type_url=type_url, version_info=version, response_nonce=nonce, resource_names=watched
    )
    if node is not None:
        expected.node.CopyFrom(node)
    got = sim_wire.sotw_request(
        type_url,
        version=version,
        nonce=nonce,
        names=tuple(watched),
        node=node.SerializeToString() if node is not None else b"",
    )
    assert got == expected.SerializeToString()


@settings(max_examples=200)
@given(texts, texts, names, names, st.booleans())
def test_a_delta_request_is_what_protobuf_encodes(
    type_url: str, nonce: str, subscribe: list[str], unsubscribe: list[str], with_node: bool
) -> None:
    node = base_pb2.Node(id="sidecar~1") if with_node else None
    expected = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        response_nonce=nonce,
        resource_names_subscribe=subscribe,
        resource_names_unsubscribe=unsubscribe,
    )
    if node is not None:
        expected.node.CopyFrom(node)
    got = sim_wire.delta_request(
        type_url,
        nonce=nonce,
        subscribe=subscribe,
        unsubscribe=unsubscribe,
        node=node.SerializeToString() if node is not None else b"",
    )
    assert got == expected.SerializeToString()


def test_a_long_name_list_is_encoded_once_per_tuple() -> None:
    watched = tuple(f"outbound|8080||svc-{i}.default.svc.cluster.local" for i in range(100))
    first = sim_wire.names_field(3, watched)
    assert sim_wire.names_field(3, watched) is first
    other = (*watched[:-1], "another")
    assert sim_wire.names_field(3, other) != first
    assert sim_wire.names_field(4, watched) != first  # another field number, its own entry
