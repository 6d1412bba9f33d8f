"""The hand-encoded responses decode with the real protobuf classes."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from hypothesis import given
from hypothesis import strategies as st

from xds_server import types, wire
from xds_server.protocol.events import Send
from xds_server.snapshot import Resource
from xds_server.transport.convert import encode

names = st.text(min_size=1, max_size=300)


@given(st.lists(names, unique=True, max_size=5), st.text(max_size=40), st.integers(0, 10**9))
def test_sotw_response_round_trips(cluster_names: list[str], version: str, nonce: int) -> None:
    resources = tuple(
        Resource.of(types.CLUSTER, n, cluster_pb2.Cluster(name=n)) for n in cluster_names
    )
    data = encode(Send(types.CLUSTER, version, str(nonce), resources), wire.control_plane("cp"))
    msg = discovery_pb2.DiscoveryResponse.FromString(data)
    assert msg.version_info == version and msg.nonce == str(nonce)
    assert msg.type_url == types.CLUSTER and msg.control_plane.identifier == "cp"
    assert [cluster_pb2.Cluster.FromString(r.value).name for r in msg.resources] == cluster_names
    assert all(r.type_url == types.CLUSTER for r in msg.resources)


@given(st.lists(names, unique=True, max_size=5), st.lists(names, max_size=3))
def test_delta_response_round_trips(cluster_names: list[str], removed: list[str]) -> None:
    resources = tuple(
        Resource.of(types.CLUSTER, n, cluster_pb2.Cluster(name=n)) for n in cluster_names
    )
    send = Send(types.CLUSTER, "v9", "7", resources, tuple(removed), delta=True)
    msg = discovery_pb2.DeltaDiscoveryResponse.FromString(encode(send, b""))
    assert msg.system_version_info == "v9" and msg.nonce == "7"
    assert [r.name for r in msg.resources] == cluster_names
    assert [r.version for r in msg.resources] == [r.version for r in resources]
    assert [cluster_pb2.Cluster.FromString(r.resource.value).name for r in msg.resources] == (
        cluster_names
    )
    assert list(msg.removed_resources) == removed


def test_large_varints() -> None:
    assert wire.varint(0) == b"\x00"
    assert wire.varint(300) == b"\xac\x02"
    assert wire.varint(2**32) == b"\x80\x80\x80\x80\x10"


def test_a_varint_reads_back_from_any_position() -> None:
    for value in (0, 1, 127, 128, 300, 2**32, 2**63 - 1):
        data = b"\xff" + wire.varint(value) + b"\x01"
        assert wire.read_varint(data, 1) == (value, len(data) - 1)
    with pytest.raises(IndexError):
        wire.read_varint(b"\x80\x80", 0)  # continues past the end
