"""One load process of the soak: simulated proxies that churn, NACK, read slowly or not at all.

Each proxy gets one behaviour for the whole run (``SoakMix.behaviour``, a fixed
spread over the indexes, so every run gives the same proxies the same role):

- ``steady``: connects once and ACKs everything (``sim_proxy.SotwProxy``);
- ``churn``: the same, but hangs up after an exponentially distributed time
  (mean ``churn_period``) and reconnects as a fresh Envoy would;
- ``nack``: after its first config, rejects about half of the responses it
  gets (Envoy's NACK: the previous version, the new nonce, an ``error_detail``);
- ``slow``: waits up to ``slow_delay`` seconds before reading each response;
- ``stuck``: sends its first request and reads nothing for ``stuck_for``
  seconds; the server's watchdog must have closed the stream by then (it
  answered nothing for 60 s), which the proxy checks before it reconnects,
  stuck again.

The parent drives it like ``load_worker`` (same pipe, plain tuples):
``("start", timeout)``, ``("mark", type_urls)``, ``("collect", timeout)``,
``("stop",)``. A change is measured on the ``steady``, ``churn`` and ``slow``
proxies that hold a full config at the mark; one that hangs up before it
converges counts as ``left``, not as a failure.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

import grpc
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from benchmarks.load_worker import CHANNEL_OPTIONS, WorkerSpec, close_streams, serve_commands
from benchmarks.sim_proxy import SotwProxy, open_call, run_proxy
from benchmarks.sim_wire import Response
from xds_server.types import short_name

MEASURED: Final = ("steady", "churn", "slow")
"""Behaviours whose convergence is measured (``nack`` and ``stuck`` are not expected to)."""
WATCHDOG_CLOSE: Final = "answered no response"
"""What the server's watchdog says when it closes a silent stream."""
_POLL: Final = 0.02


@dataclass(frozen=True, slots=True)
class SoakMix:
    """Shares of the misbehaving proxies (the rest are ``steady``) and their pace."""

    churn: float = 0.2
    nack: float = 0.05
    slow: float = 0.05
    stuck: float = 0.04
    churn_period: float = 40.0
    """Mean seconds a churning proxy stays connected."""
    slow_delay: float = 1.0
    """Most seconds a slow reader waits before reading a response."""
    stuck_for: float = 75.0
    """Seconds a stuck proxy reads nothing (the server's watchdog closes at 60 s)."""

    def behaviour(self, index: int) -> str:
        """Proxy ``index``'s role: a low-discrepancy spread, so every share is met early."""
        u = (index * 0.6180339887498949) % 1.0
        for name, share in (
            ("stuck", self.stuck),
            ("nack", self.nack),
            ("slow", self.slow),
            ("churn", self.churn),
        ):
            if u < share:
                return name
            u -= share
        return "steady"


class NackProxy(SotwProxy):
    """Accepts the first response of each type, then NACKs about half of the rest."""

    nacks = 0

    def on_response(self, resp: Response, now: float) -> list[bytes | Any]:
        """ACK as Envoy does, or reject: the version held so far, this nonce, a reason."""
        t = resp.type_url
        if t not in self.versions or random.random() < 0.5:
            return super().on_response(resp, now)
        self.nacks += 1
        self.bytes_received += len(resp.data)
        self.nonces[t] = resp.nonce
        detail = status_pb2.Status(code=13, message=f"soak: simulated rejection of {t}")
        return [
            discovery_pb2.DiscoveryRequest(
                type_url=t,
                version_info=self.versions[t],
                response_nonce=resp.nonce,
                resource_names=self.names.get(t, ()),
                error_detail=detail,
            )
        ]


class _Delayed:
    """A call whose reads wait first: a slow reader (``delay`` > 0 s before each read), or a
    stuck one (``stuck_for``: it reads nothing for that long, then finds how its stream ended).

    A client that never reads never learns that its stream ended either (gRPC delivers the
    status after the messages), so a stuck proxy wakes up after ``stuck_for`` seconds, longer
    than the server's watchdog, drains what it was sent and takes the stream's status.
    """

    def __init__(self, call: Any, delay: float, stuck_for: float | None = None) -> None:
        self.call = call
        self.delay = delay
        self.stuck_for = stuck_for
        self.status = ""

    async def read(self) -> Any:
        """The next response after a pause; for a stuck reader, EOF once it woke up."""
        if self.stuck_for is None:
            await asyncio.sleep(random.uniform(0, self.delay))
            return await self.call.read()
        await asyncio.sleep(self.stuck_for)
        try:
            while await asyncio.wait_for(self.call.read(), 5.0) is not grpc.aio.EOF:
                pass
            self.status = "OK: the server ended the stream"
        except grpc.aio.AioRpcError as err:
            self.status = f"{err.code().name}: {err.details()}"
        except TimeoutError:
            self.status = f"still open after {self.stuck_for:g} s unread"
            self.call.cancel()
        return grpc.aio.EOF

    def __getattr__(self, name: str) -> Any:
        return getattr(self.call, name)


def _nothing() -> None:
    pass


class SoakWorker:
    """This process's proxies, each living its behaviour until stopped."""

    def __init__(self, spec: WorkerSpec, mix: SoakMix) -> None:
        self.spec = spec
        self.mix = mix
        self.roles = {spec.first + i: mix.behaviour(spec.first + i) for i in range(spec.count)}
        self.proxies = [
            NackProxy(i) if self.roles[i] == "nack" else SotwProxy(i) for i in self.roles
        ]
        self.connection = dict.fromkeys(self.roles, 0)
        self.channels: list[grpc.aio.Channel] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.counts: Counter[str] = Counter()
        self.errors: list[tuple[int, str, str, float]] = []
        self.marked: dict[int, int] = {}
        self.cpu = 0.0

    async def start(self, timeout: float) -> dict[str, Any]:
        """Start every proxy's life; wait until every proxy but the stuck ones holds a config."""
        self.cpu = time.process_time()
        per = max(1, self.spec.streams_per_channel)
        for i, proxy in enumerate(self.proxies):
            if i % per == 0:
                channel = grpc.aio.insecure_channel(self.spec.address, options=CHANNEL_OPTIONS)
                self.channels.append(channel)
            self.tasks.append(asyncio.create_task(self._life(proxy, self.channels[-1])))
        want = [p for p in self.proxies if self.roles[p.index] != "stuck"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.storm_done_at is None for p in want):
            await asyncio.sleep(_POLL)
        return {"done_at": [p.storm_done_at for p in want], **self._state()}

    async def _life(self, proxy: SotwProxy, channel: grpc.aio.Channel) -> None:
        role = self.roles[proxy.index]
        calls: list[_Delayed] = []

        def opener() -> Any:
            call = open_call(channel, delta=False)
            if role not in ("slow", "stuck"):
                return call
            stuck_for = self.mix.stuck_for if role == "stuck" else None
            calls[:] = [_Delayed(call, self.mix.slow_delay, stuck_for)]
            return calls[0]

        while True:
            proxy.reset()
            proxy.storm_done_at, proxy.error, proxy.reconnects = None, None, 0
            self.connection[proxy.index] += 1
            task = asyncio.create_task(
                run_proxy(proxy, opener, _nothing, _nothing, max_reconnects=0)
            )
            lifetime = random.expovariate(1 / self.mix.churn_period) if role == "churn" else None
            done, _ = await asyncio.wait({task}, timeout=lifetime)
            if not done:  # churn: hang up, come back soon
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                self.counts["churn_disconnects"] += 1
                await asyncio.sleep(random.uniform(0.2, 1.0))
                continue
            why = (calls[0].status if calls and calls[0].status else "") or proxy.error or ""
            if role == "stuck" and WATCHDOG_CLOSE in why:
                self.counts["stuck_closed_by_server"] += 1
            else:
                self.errors.append((proxy.index, role, why, time.monotonic()))
            await asyncio.sleep(random.uniform(0.5, 1.0))

    def mark(self, types: list[str]) -> dict[str, Any]:
        """Start measuring a change on every measured proxy that holds a full config now."""
        self.marked = {}
        for p in self.proxies:
            if self.roles[p.index] in MEASURED and p.storm_done_at is not None:
                p.mark(types)
                self.marked[p.index] = self.connection[p.index]
        self.cpu = time.process_time()
        return {"marked": len(self.marked)}

    async def collect(self, timeout: float) -> dict[str, Any]:
        """Wait until each marked proxy converged or hung up; per proxy: role, time (None: not
        converged), whether it left, the types it got."""
        byindex = {p.index: p for p in self.proxies}

        def open_ones() -> list[SotwProxy]:
            return [
                byindex[i]
                for i, conn in self.marked.items()
                if self.connection[i] == conn and byindex[i].mark_pending
            ]

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and open_ones():
            await asyncio.sleep(_POLL)
        results = []
        for i, conn in self.marked.items():
            p, left = byindex[i], self.connection[i] != conn
            done = None if left or p.mark_pending else max(p.converged.values())
            results.append((self.roles[i], done, left, sorted(map(short_name, p.converged))))
        return {"results": results, **self._state()}

    def _state(self) -> dict[str, Any]:
        errors, self.errors = self.errors, []
        nacks = sum(p.nacks for p in self.proxies if isinstance(p, NackProxy))
        synced = sum(1 for p in self.proxies if p.storm_done_at is not None)
        return {
            "counts": {**self.counts, "nacks_sent": nacks},
            "synced": synced,
            "errors": errors,
            "cpu_s": time.process_time() - self.cpu,
        }

    async def stop(self) -> None:
        """Cancel every proxy and close every channel."""
        await close_streams(self.tasks, self.channels)


async def _serve(conn: Connection, spec: WorkerSpec, mix: SoakMix) -> None:
    await serve_commands(conn, SoakWorker(spec, mix))


def soak_worker_main(conn: Connection, spec: WorkerSpec, mix: SoakMix) -> None:
    """Process entry point (``WorkerPool(target=...)``); SIGINT is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(conn, spec, mix))
