"""Seeded random request sequences against the real server: a proxy's nonsense never crashes it.

Each sequence is what a confused or hostile client might send on one stream:
known and unknown type URLs, stale, future and garbage nonces, versions,
subscriptions and unsubscriptions of real and made-up names, NACKs with long
details, node IDs valid and not. Whatever arrives, the server answers with
well-formed responses of the requested type or ends the stream with a status
that says why; it never fails with an unexpected error (UNKNOWN or INTERNAL,
which is what an exception escaping a handler turns into), and a well-behaved
client connected beside the noise keeps being served.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2
from xds_client import ADS, CDS, DELTA_ADS, FRONTEND, Running, node, open_stream, start

from pyistiod.cli import EXAMPLE_MESH
from translators.sources.files import load_dir
from xds_server import types

SEQUENCES = 60
"""Streams per run; each sends 1-12 requests (seeded, so a failure replays exactly)."""

TYPES = [*sorted(types.KNOWN_TYPES), "", "type.googleapis.com/x.Unknown", "garbage"]
NAMES = [
    "outbound|9080||backend.default.svc.cluster.local", "9080", "default", "ROOTCA",
    "kubernetes://nope", "*", "", "x" * 3000, "inbound|8080||",
]  # fmt: skip
NODES = [FRONTEND, "", "not-a-node", "sidecar~1.2.3.4~x.y~y.svc.cluster.local", "a" * 2000]
ALLOWED_ENDINGS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNAVAILABLE,
}


def ended_as_allowed(err: grpc.aio.AioRpcError) -> bool:
    """The stream ended as the server may end it. Under load the client may also queue one
    more request just as the server ends the stream: gRPC then reports the client's own
    failed send (INTERNAL, "Failed execute_batch ... SendMessageOperation") instead of the
    server's status; that says nothing about the server, whose failures carry no such
    client-side operation."""
    if err.code() in ALLOWED_ENDINGS:
        return True
    debug = err.debug_error_string() or ""
    return err.code() is grpc.StatusCode.INTERNAL and "SendMessageOperation" in debug


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    r = await start(load_dir(EXAMPLE_MESH).model)
    yield r
    await r.server.stop(0)


def sotw_request(rng: random.Random, first: bool, nonces: list[str]) -> Any:
    req = discovery_pb2.DiscoveryRequest(
        type_url=rng.choice(TYPES),
        version_info=rng.choice(["", "1", "v-999", "\x00bad"]),
        response_nonce=rng.choice([*nonces, "", "99999", "garbage"]),
        resource_names=rng.sample(NAMES, rng.randint(0, 3)),
    )
    if first or rng.random() < 0.1:
        req.node.CopyFrom(node(rng.choice(NODES)))
    if rng.random() < 0.2:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message="n" * rng.randint(0, 50_000)))
    return req


def delta_request(rng: random.Random, first: bool, nonces: list[str]) -> Any:
    req = discovery_pb2.DeltaDiscoveryRequest(
        type_url=rng.choice(TYPES),
        response_nonce=rng.choice([*nonces, "", "garbage"]),
        resource_names_subscribe=rng.sample(NAMES, rng.randint(0, 3)),
        resource_names_unsubscribe=rng.sample(NAMES, rng.randint(0, 2)),
        initial_resource_versions={n: rng.choice(["", "v1"]) for n in rng.sample(NAMES, 1)},
    )
    if first or rng.random() < 0.1:
        req.node.CopyFrom(node(rng.choice(NODES)))
    if rng.random() < 0.2:
        req.error_detail.CopyFrom(status_pb2.Status(code=3, message="nack"))
    return req


def check_response(msg: Any, delta: bool) -> str:
    """The response is well formed: a nonce, and every resource of the response's type."""
    assert msg.nonce
    assert msg.type_url in types.KNOWN_TYPES
    for resource in msg.resources:
        any_msg = resource.resource if delta else resource
        assert any_msg.type_url == msg.type_url
    return str(msg.nonce)


async def one_sequence(running: Running, seed: int) -> None:
    rng = random.Random(seed)
    delta = rng.random() < 0.4
    method = DELTA_ADS if delta else rng.choice([ADS, ADS, CDS])
    make = delta_request if delta else sotw_request
    nonces: list[str] = []
    async with running.channel() as ch:
        stream = open_stream(ch, method, delta=delta)
        for i in range(rng.randint(1, 12)):
            await stream.send(make(rng, i == 0, nonces))
            try:
                msg = await asyncio.wait_for(stream.incoming.get(), 0.05)
            except TimeoutError:
                continue
            if isinstance(msg, grpc.aio.AioRpcError):
                assert ended_as_allowed(msg), (seed, msg.code(), msg.details())
                return
            nonces.append(check_response(msg, delta))
        await stream.close()


async def test_random_request_sequences_never_crash_the_server(running: Running) -> None:
    async with running.channel() as ch:
        good = open_stream(ch, ADS)
        await good.send(discovery_pb2.DiscoveryRequest(node=node(), type_url=types.CLUSTER))
        first = await good.expect_response()
        for seed in range(SEQUENCES):
            await one_sequence(running, seed)
        await good.send(
            discovery_pb2.DiscoveryRequest(
                type_url=types.CLUSTER, version_info=first.version_info, response_nonce=first.nonce
            )
        )
        await good.send(discovery_pb2.DiscoveryRequest(type_url=types.LISTENER))
        assert (await good.expect_response()).type_url == types.LISTENER
        await good.close()
