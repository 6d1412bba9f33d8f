"""One load-generator process: a slice of the simulated proxies on a few gRPC channels.

The parent drives each worker over a ``multiprocessing`` pipe with commands
(plain tuples, so nothing but builtins crosses the pipe):

- ``("start", storm_timeout)``: open every stream, wait until each proxy has
  ACKed CDS, EDS, LDS and RDS (or the timeout); reply with per-proxy times;
- ``("mark", type_urls)``: start measuring a change; reply once every proxy is marked,
  so the parent edits the config only after;
- ``("collect", timeout)``: wait until every proxy received every marked type
  (or the timeout); reply with per-proxy times and bytes since the mark;
- ``("stop",)``: cancel the streams, close the channels, reply and exit.

Replies carry the worker's own CPU seconds for the phase (``cpu_s``), to show
whether the load generator, not the server, was the bottleneck. Times are
``time.monotonic()``: on Linux CLOCK_MONOTONIC is system-wide, so the
parent may compare them with its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import grpc

from benchmarks.sim_proxy import DeltaProxy, SotwProxy, open_call, run_proxy
from xds_server.types import short_name

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # Without a local pool, channels to one target share one TCP connection.
    ("grpc.use_local_subchannel_pool", 1),
]
_POLL = 0.02


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker simulates."""

    address: str
    delta: bool
    first: int
    """Index of the first proxy; this worker runs ``first .. first+count-1``."""
    count: int
    streams_per_channel: int
    tls: tuple[str, str, str] | None = None
    """(root PEM, token, server name): dial the TLS port as a sidecar does (its token for the
    identity ``default/default``, which every simulated node claims); None: plain text, where
    pyistiod serves the config without secret references (no mTLS transport sockets)."""


class Worker:
    """The proxies of one process, their streams and milestone counters."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        cls = DeltaProxy if spec.delta else SotwProxy
        self.proxies = [cls(spec.first + i) for i in range(spec.count)]
        self.channels: list[grpc.aio.Channel] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.storm_done = 0
        self.converged = 0
        self.mark_cpu = 0.0

    def _channel(self) -> grpc.aio.Channel:
        if self.spec.tls is None:
            return grpc.aio.insecure_channel(self.spec.address, options=CHANNEL_OPTIONS)
        root, token, server_name = self.spec.tls
        creds = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root.encode()), grpc.access_token_call_credentials(token)
        )
        options = [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", server_name)]
        return grpc.aio.secure_channel(self.spec.address, creds, options=options)

    def _storm(self) -> None:
        self.storm_done += 1

    def _converge(self) -> None:
        self.converged += 1

    def _failed(self) -> int:
        return sum(1 for p in self.proxies if p.error is not None)

    async def _wait(self, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and done() + self._failed() < len(self.proxies):
            await asyncio.sleep(_POLL)

    async def start(self, timeout: float) -> dict[str, Any]:
        """Open every stream; wait for every proxy's four ACKs."""
        cpu = time.process_time()
        per = max(1, self.spec.streams_per_channel)
        for i, proxy in enumerate(self.proxies):
            if i % per == 0:
                self.channels.append(self._channel())
            opener = functools.partial(open_call, self.channels[-1], self.spec.delta)
            self.tasks.append(
                asyncio.create_task(run_proxy(proxy, opener, self._storm, self._converge))
            )
        await self._wait(lambda: self.storm_done, timeout)
        return {
            "done_at": [p.storm_done_at for p in self.proxies],
            "bytes": [p.bytes_received for p in self.proxies],
            "errors": self._errors(),
            "reconnects": [
                (p.index, p.reconnects, p.last_failure) for p in self.proxies if p.reconnects
            ],
            "cpu_s": time.process_time() - cpu,
        }

    def mark(self, types: list[str]) -> dict[str, Any]:
        """Start measuring a change of ``types`` on every proxy."""
        self.converged = 0
        for p in self.proxies:
            p.mark(types)
        self.mark_cpu = time.process_time()
        return {"marked": len(self.proxies)}

    async def collect(self, timeout: float) -> dict[str, Any]:
        """Wait for every proxy to receive every marked type; per-proxy times and bytes."""
        await self._wait(lambda: self.converged, timeout)
        return {
            "times": [{short_name(t): v for t, v in p.converged.items()} for p in self.proxies],
            "bytes": [p.bytes_received - p.mark_bytes for p in self.proxies],
            "errors": self._errors(),
            "cpu_s": time.process_time() - self.mark_cpu,
        }

    def _errors(self) -> list[tuple[int, str, float]]:
        return [(p.index, p.error, p.error_at) for p in self.proxies if p.error]

    async def stop(self) -> None:
        """Cancel every stream and close every channel."""
        await close_streams(self.tasks, self.channels)


async def close_streams(tasks: list[asyncio.Task[None]], channels: list[grpc.aio.Channel]) -> None:
    """Cancel ``tasks`` (the proxies' streams), wait for them, then close ``channels``."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in channels:
        await ch.close(grace=None)


async def _serve(conn: Connection, spec: WorkerSpec) -> None:
    await serve_commands(conn, Worker(spec))


async def serve_commands(conn: Connection, worker: Any) -> None:
    """Answer the parent's commands (start, mark, collect, stop) with ``worker``'s results
    (``Worker``, or ``benchmarks.soak_worker.SoakWorker``) until told to stop."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd[0] == "start":
                conn.send(await worker.start(cmd[1]))
            elif cmd[0] == "mark":
                conn.send(worker.mark(cmd[1]))
            elif cmd[0] == "collect":
                conn.send(await worker.collect(cmd[1]))
            else:
                break
    finally:
        await worker.stop()
        with contextlib.suppress(OSError):
            conn.send({"stopped": True})


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Process entry point: serve the parent's commands until ``stop``.

    Ctrl-C goes to the whole process group; the parent handles it and stops
    its workers, so a worker ignores SIGINT.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(conn, spec))
