"""The supervisor-worker channel: models sent as deltas, frames, the CA as PEM."""

from __future__ import annotations

import asyncio
import pickle
import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ca.authority import KeyKind
from ca.storage import load_ca
from pyistiod.cli import EXAMPLE_MESH
from pyistiod.worker_channel import BundlePem, ModelDelta, encode, model_delta, receive
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import Service
from translators.sources.files import load_dir

BACKEND = "backend.default.svc.cluster.local"


def example() -> MeshModel:
    return load_dir(EXAMPLE_MESH).model


def with_endpoints_of(model: MeshModel, host: str, address: str) -> MeshModel:
    endpoints = dict(model.endpoints)
    endpoints[host] = tuple(replace(e, address=address) for e in endpoints[host])
    return replace(model, endpoints=endpoints)


def assert_same_model(got: MeshModel, want: MeshModel) -> None:
    assert got == want
    for name in ("endpoints", "workloads"):  # in the same order, as build() sorts them
        assert list(getattr(got, name)) == list(getattr(want, name)), name


def test_an_endpoint_edit_ships_that_service_only_and_keeps_every_other_object() -> None:
    old = example()
    fresh = example()  # equal, but every object new: as a file source reads it again
    new = with_endpoints_of(fresh, BACKEND, "127.0.0.99")
    delta = model_delta(old, new)
    assert delta.replaced == {}
    assert delta.keyed == {"endpoints": ({BACKEND: new.endpoints[BACKEND]}, ())}
    got = delta.apply(old)
    assert_same_model(got, new)
    assert got.services is old.services and got.workloads is old.workloads
    assert all(got.endpoints[k] is old.endpoints[k] for k in old.endpoints if k != BACKEND)
    assert len(pickle.dumps(delta)) < len(pickle.dumps(new)) / 4


def test_added_and_removed_services_and_endpoints_round_trip() -> None:
    old = example()
    extra = replace(old.services[0], hostname="extra.default.svc.cluster.local", name="extra")
    services: tuple[Service, ...] = (*old.services[1:], extra)
    endpoints = dict(old.endpoints)
    removed = next(iter(endpoints))
    del endpoints[removed]
    endpoints[extra.hostname] = old.endpoints[BACKEND]
    new = MeshModel.build(services, endpoints, old.workloads.values(), old.policies)
    delta = model_delta(old, new)
    assert set(delta.replaced) == {"services"}
    changed, gone = delta.keyed["endpoints"]
    assert set(changed) == {extra.hostname} and gone == (removed,)
    assert_same_model(delta.apply(old), new)


def test_workloads_removed_and_an_equal_model_gives_an_empty_delta() -> None:
    old = example()
    assert model_delta(old, example()) == ModelDelta({}, {})
    first = next(iter(old.workloads))
    new = MeshModel.build(
        old.services, old.endpoints, [w for k, w in old.workloads.items() if k != first]
    )
    delta = model_delta(old, new)
    assert delta.keyed == {"workloads": ({}, (first,))}
    assert_same_model(delta.apply(old), new)


async def test_frames_cross_a_socket_pair_and_the_end_reads_as_none() -> None:
    ours, theirs = socket.socketpair()
    _, writer = await asyncio.open_unix_connection(sock=ours)
    reader, _ = await asyncio.open_unix_connection(sock=theirs)
    model = example()
    writer.write(encode(model) + encode({"n": 1}))
    assert await receive(reader) == model  # MappingProxyType fields pickle
    assert await receive(reader) == {"n": 1}
    writer.close()
    assert await receive(reader) is None


def test_the_ca_crosses_as_pem_and_comes_back_the_same(tmp_path: Path) -> None:
    bundle = load_ca(tmp_path, "cluster.local", datetime.now(UTC), KeyKind.ECDSA_P256)
    again = pickle.loads(pickle.dumps(BundlePem.of(bundle))).bundle()
    assert again.signing_cert == bundle.signing_cert and again.roots == bundle.roots
    assert again.signing_key.public_key() == bundle.signing_key.public_key()
    assert again.ca_chain_pem == bundle.ca_chain_pem
