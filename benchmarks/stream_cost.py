"""What pyistiod's own code costs per proxy per change, with no gRPC: a measurement script.

Usage::

    python -m benchmarks.stream_cost [--services 1000] [--proxies 2000] [--mode sotw|delta]
        [--repeats 3] [--json OUT.json] [--profile OUT.prof]

``push_latency`` measures a change end to end, and the server's CPU in it is mostly gRPC's
(a read and a write per proxy) and the event loop's. This script takes gRPC out: P
simulated proxies (the load generator's own ``sim_proxy`` state machines) are wired to P
``XdsStream``s in one process, on one event loop. A stream's ``write`` hands the response
bytes to its proxy (``sim_wire.read``, ``on_response``), and the proxy's requests come back
to the stream's reader as gRPC would deliver them (bytes in state of the world, decoded
messages in delta). The registry, cache, snapshot builder, protocol core and shared
responses are the server's own, as ``pyistiod serve`` wires them for plain-text streams.

After the connect storm, each change is applied as ``ConfigWatcher`` applies it (the
mesh's files edited and read again, then ``ProxyRegistry.apply_model``) and the script
waits until every proxy holds it. The figure is the process CPU time from
``apply_model`` until the last proxy converged, per proxy, in microseconds (median of
``--repeats`` changes of each kind), and of that the part ``apply_model`` takes before
any stream is woken (``*_apply_us_per_proxy``); reading the files is in neither. It
includes the simulated proxies' handling of each response (a walk of its top-level fields
and one ACK written as bytes: a few microseconds), which the server does not pay. Last, every
stream is cancelled at once, as when a load balancer drops every proxy: the CPU per
proxy until the registry has forgotten them all.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from envoy.service.discovery.v3 import discovery_pb2

from benchmarks import report, sim_wire
from benchmarks.mesh_gen import ROUTES_FILE, SLICES_FILE, prepare, write_atomically
from benchmarks.sim_proxy import DeltaProxy, SotwProxy, milestones
from pyistiod import logging_setup
from pyistiod.registry import ProxyRegistry
from translators.mesh.model.mesh import MeshModel
from translators.sources.files import load_dir
from xds_server import types, wire
from xds_server.cache import SnapshotCache
from xds_server.transport.push_limit import PushLimiter
from xds_server.transport.responses import SharedResponses
from xds_server.transport.stream import StreamConfig, XdsStream

_END: Any = object()
WAIT_S = 300.0
"""How long the storm and each change may take before the run fails."""


class Wire:
    """One proxy's end of a stream: what gRPC would carry both ways, minus gRPC."""

    def __init__(self, proxy: SotwProxy | DeltaProxy, delta: bool, done: Callable[[], None]):
        self.proxy = proxy
        self.delta = delta
        self.done = done
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        for request in proxy.initial():
            self._send(request)

    def _send(self, request: bytes | Any) -> None:
        data = sim_wire.to_bytes(request)
        # gRPC hands a delta stream decoded requests and a SotW stream bytes (server.py).
        self.requests.put_nowait(
            discovery_pb2.DeltaDiscoveryRequest.FromString(data) if self.delta else data
        )

    async def incoming(self) -> AsyncIterator[Any]:
        """The requests, as the server's handler iterates them."""
        while (item := await self.requests.get()) is not _END:
            yield item

    async def write(self, data: bytes) -> None:
        """The server's ``context.write``: the proxy reads the response and answers it."""
        proxy = self.proxy
        pending = proxy.mark_pending
        for request in proxy.on_response(sim_wire.read(data, self.delta), time.monotonic()):
            self._send(request)
        if any(milestones(proxy, pending)):
            self.done()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:15000"

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"stream aborted: {code} {details}")


class Bench:
    """P streams and their proxies on one loop, and a counter of proxies done."""

    def __init__(self, model: MeshModel, proxies: int, delta: bool) -> None:
        self.cache = SnapshotCache()
        self.registry = ProxyRegistry(self.cache, model)
        self.delta = delta
        cls = DeltaProxy if delta else SotwProxy
        self.proxies = [cls(i) for i in range(proxies)]
        self.count = 0
        self.all_done = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def _done(self) -> None:
        self.count += 1
        if self.count == len(self.proxies):
            self.all_done.set()

    async def _wait(self) -> None:
        await asyncio.wait_for(self.all_done.wait(), WAIT_S)
        self.count = 0
        self.all_done.clear()

    async def storm(self) -> None:
        """Open every stream; return once every proxy ACKed CDS, EDS, LDS and RDS."""
        config = StreamConfig(self.delta, types.KNOWN_TYPES)
        cp = wire.control_plane("stream_cost")
        responses = SharedResponses(cp)
        limiter = PushLimiter()
        for i, proxy in enumerate(self.proxies):
            end = Wire(proxy, self.delta, self._done)
            stream = XdsStream(
                config, self.cache, self.registry, cp, None, limiter, None, 60.0, i, responses
            )
            self.tasks.append(asyncio.create_task(stream.run(end.incoming(), end)))
        await self._wait()

    async def change(self, model: MeshModel, type_urls: list[str]) -> tuple[float, float]:
        """Apply ``model``; the process CPU seconds of ``apply_model`` (every snapshot built,
        before any stream is woken) and until every proxy holds ``type_urls``."""
        for proxy in self.proxies:
            proxy.mark(type_urls)
        started = time.process_time()
        self.registry.apply_model(model, time.monotonic())
        applied = time.process_time() - started
        await self._wait()
        return applied, time.process_time() - started

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(
    services: int, proxies: int, delta: bool, repeats: int, profile: cProfile.Profile | None
) -> dict[str, Any]:
    """Storm, then ``repeats`` endpoint changes and VirtualService edits (``profile``: of
    the changes only)."""
    workdir, config_dir, mesh = prepare(services, "stream-cost-")
    try:
        bench = Bench(load_dir(config_dir).model, proxies, delta)
        started = time.process_time()
        await bench.storm()
        result: dict[str, Any] = {"storm_us_per_proxy": _us(time.process_time() - started, proxies)}
        edits: list[tuple[str, str, Callable[[int], str], list[str]]] = [
            ("endpoint", SLICES_FILE, mesh.move_endpoint, [types.ENDPOINT]),
            ("vs", ROUTES_FILE, mesh.edit_timeout, [types.ROUTE]),
        ]
        for name, file, edit, type_urls in edits:
            runs, applies = [], []
            for _ in range(repeats):
                write_atomically(config_dir / file, edit(0))
                model = load_dir(config_dir).model
                if profile is not None:
                    profile.enable()
                applied, total = await bench.change(model, type_urls)
                applies.append(_us(applied, proxies))
                runs.append(_us(total, proxies))
                if profile is not None:
                    profile.disable()
            result[f"{name}_us_per_proxy"] = statistics.median(runs)
            result[f"{name}_us_runs"] = runs
            result[f"{name}_apply_us_per_proxy"] = statistics.median(applies)
        started = time.process_time()
        await bench.stop()
        result["disconnect_us_per_proxy"] = _us(time.process_time() - started, proxies)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _us(seconds: float, proxies: int) -> float:
    return round(seconds / proxies * 1e6, 1)


def main(argv: list[str] | None = None) -> None:
    """Run the measurement (``argv``: the command-line arguments, ``sys.argv`` if None)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_cost", description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--proxies", type=int, default=2000)
    parser.add_argument("--mode", choices=("sotw", "delta"), default="sotw")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--profile", help="write a cProfile of the changes here")
    args = parser.parse_args(argv)
    profile = cProfile.Profile() if args.profile else None
    result = asyncio.run(
        measure(args.services, args.proxies, args.mode == "delta", args.repeats, profile)
    )
    if profile is not None:
        profile.dump_stats(args.profile)
    result = {"services": args.services, "proxies": args.proxies, "mode": args.mode, **result}
    print(result)
    if args.json:
        report.write_results(Path(args.json), "stream_cost", result)


if __name__ == "__main__":
    # As push_latency runs the server; not in main(), which tests call: structlog's
    # configuration is the process's, and loggers cache it on first use.
    logging_setup.configure("warning")
    main()
