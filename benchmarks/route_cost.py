"""What a route configuration costs, piece by piece, with no pyistiod server: a measurement script.

Usage::

    python -m benchmarks.route_cost [--services 1000] [--ports 1 10] [--messages 1000]
        [--json OUT.json]

For each K in ``--ports``: generate push_latency's mesh with its S services
spread over K port numbers (``benchmarks.mesh_gen``), load it as ``pyistiod
serve`` does, and build one sidecar's route configurations (``build_routes``,
named by port as in Istio). Then time, each the median of several repeats:

- ``translate_ms``: ``build_routes`` for the proxy (all K configurations);
- ``listeners_ms``: ``build_outbound_listeners`` for the proxy, each serialized into a
  ``Resource`` (K listeners). pyistiod binds each sidecar's outbound listeners at its own
  loopback address, so it builds them per proxy, and again for every proxy when routing
  (a VirtualService) changes, even though their bytes then stay the same;
- ``serialize_ms``: ``SerializeToString(deterministic=True)`` of the configuration a
  VirtualService edit of ``svc-0`` changes (port 8080's), which the server does
  once per change and shares between proxies;
- ``resource_ms``: ``Resource.from_bytes`` of it (its hash and ``Any`` encoding, once per change);
- ``encode_ms``: ``wire.sotw_response`` around it, done for every proxy;
- ``parse_ms``: ``RouteConfiguration.FromString`` of it in Python (upb), a stand-in for what
  each receiving proxy does (Envoy parses in C++ and then builds its route tables, so
  its cost differs; push_latency's simulated proxies never parse routes);
- ``transport``: the rest of the per-proxy part. A ``grpc.aio`` server in a child process
  sends ``--messages`` copies of that response (already encoded, as pyistiod sends
  them) over 100 streams of one channel to a ``grpc.aio`` client here, which decodes
  each ``DiscoveryResponse`` as the simulated proxies do; the server's and the
  client's CPU time per message, medians of 3.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2

from benchmarks import report
from benchmarks.mesh_gen import HTTP_PORT, Mesh
from benchmarks.server_proc import cpu_seconds
from benchmarks.sim_proxy import node_id
from translators.envoy.listeners.sidecar import build_outbound_listeners, outbound_listener_ports
from translators.envoy.routes.sidecar import build_routes
from translators.mesh.model.proxy import proxy_from_node
from translators.sources.files import load_dir
from xds_server import wire
from xds_server.snapshot import Resource
from xds_server.types import LISTENER, ROUTE

STREAMS = 100
_METHOD = "/bench.Bytes/Send"


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 3)


def isolated(services: int, ports: int) -> tuple[dict[str, Any], bytes]:
    """The in-process costs for S services over K ports, and the encoded RDS response."""
    with tempfile.TemporaryDirectory() as tmp:
        Mesh(services, service_ports=ports).write(Path(tmp))
        model = load_dir(Path(tmp)).model
    proxy = proxy_from_node(node_id(0), {}, model)
    configs = build_routes(model, proxy)
    changed = next(c for c in configs if c.name == str(HTTP_PORT))
    body = changed.SerializeToString(deterministic=True)
    resource = Resource.from_bytes(ROUTE, changed.name, body)

    plan = outbound_listener_ports(model)[0]

    def listeners() -> list[Resource]:
        built = build_outbound_listeners(model, proxy.outbound_address, plan, proxy=proxy)
        return [Resource.of(LISTENER, ls.name, ls) for ls in built]

    def encode() -> bytes:
        entries = [(resource.sotw_header, resource.any_bytes)]
        return wire.sotw_response(version="v", type_url=ROUTE, nonce="1", entries=entries)

    result = {
        "services": services,
        "service_ports": ports,
        "route_configurations": len(configs),
        "changed_virtual_hosts": len(changed.virtual_hosts),
        "changed_bytes": len(body),
        "all_configurations_bytes": sum(c.ByteSize() for c in configs),
        "translate_ms": _ms(median_s(lambda: build_routes(model, proxy), 5)),
        "listeners_ms": _ms(median_s(listeners, 20)),
        "serialize_ms": _ms(median_s(lambda: changed.SerializeToString(deterministic=True), 20)),
        "resource_ms": _ms(median_s(lambda: Resource.from_bytes(ROUTE, "r", body), 20)),
        "encode_ms": _ms(median_s(encode, 50)),
        "parse_ms": _ms(median_s(lambda: route_pb2.RouteConfiguration.FromString(body), 20)),
    }
    return result, encode()


async def _serve(response: bytes) -> None:
    """The child: answer each call (a count) with that many copies of ``response``."""

    async def send(request: bytes, context: object) -> AsyncIterator[bytes]:
        for _ in range(int(request)):
            yield response

    handler = grpc.method_handlers_generic_handler(
        "bench.Bytes", {"Send": grpc.unary_stream_rpc_method_handler(send)}
    )
    server = grpc.aio.server(options=[("grpc.max_send_message_length", -1)])
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


async def _receive(port: int, messages: int) -> None:
    options = [("grpc.max_receive_message_length", -1)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        call = channel.unary_stream(_METHOD, request_serializer=None, response_deserializer=None)

        async def one(count: int) -> None:
            async for data in call(str(count).encode()):
                discovery_pb2.DiscoveryResponse.FromString(data)

        await channel.channel_ready()
        await asyncio.gather(*(one(messages // STREAMS) for _ in range(STREAMS)))


def transport(response: bytes, messages: int, repeats: int = 3) -> dict[str, Any]:
    """Per message: server and client CPU to move ``response`` over gRPC (medians)."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(response)
        f.flush()
        cmd = [sys.executable, "-m", "benchmarks.route_cost", "--serve", f.name]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            runs = []
            for _ in range(repeats):
                server0, client0, wall0 = cpu_seconds(child.pid), time.process_time(), time.time()
                asyncio.run(_receive(port, messages))
                runs.append(
                    (
                        (cpu_seconds(child.pid) - server0) / messages,
                        (time.process_time() - client0) / messages,
                        time.time() - wall0,
                    )
                )
        finally:
            child.kill()
            child.wait(5)
    server_s, client_s, wall_s = (statistics.median(r[i] for r in runs) for i in range(3))
    mb = len(response) / 1e6
    return {
        "messages": messages,
        "message_bytes": len(response),
        "server_cpu_ms_per_message": _ms(server_s),
        "client_cpu_ms_per_message": _ms(client_s),
        "server_cpu_ms_per_mb": _ms(server_s / mb),
        "client_cpu_ms_per_mb": _ms(client_s / mb),
        "wall_s": round(wall_s, 3),
        "runs": [[_ms(s), _ms(c), round(w, 3)] for s, c, w in runs],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure and print each K's costs; write them as JSON if asked."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.route_cost", description=__doc__)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--ports", type=int, nargs="+", default=[1, 10], help="K values")
    p.add_argument("--messages", type=int, default=1000, help="responses per transport run")
    p.add_argument("--json", type=Path)
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the child's role
    a = p.parse_args(argv)
    if a.serve is not None:
        asyncio.run(_serve(a.serve.read_bytes()))
        return 0
    results = []
    for ports in a.ports:
        result, response = isolated(a.services, ports)
        result["transport"] = transport(response, a.messages)
        print(result, flush=True)
        results.append(result)
    if a.json is not None:
        report.write_results(a.json, "route_cost", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
