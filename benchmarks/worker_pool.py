"""The parent's side of the load generator: W worker processes driven in lock step."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from benchmarks.load_worker import WorkerSpec, worker_main

_SLACK = 30.0
"""How much longer than its own timeout a worker may take to answer."""


class WorkerPool:
    """Worker processes, each simulating a contiguous slice of the proxies.

    Workers are spawned (not forked): grpc does not survive a fork, and a spawned
    worker imports only what it needs.
    """

    def __init__(
        self,
        address: str,
        proxies: int,
        workers: int,
        delta: bool,
        per_channel: int,
        target: Callable[..., None] = worker_main,
        extra: tuple[Any, ...] = (),
        tls: tuple[str, str, str] | None = None,
    ):
        """``target(conn, spec, *extra)`` is each worker's entry point (``benchmarks.soak``
        runs its own); ``tls`` as ``WorkerSpec.tls`` (``address`` then the TLS port)."""
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[BaseProcess] = []
        workers = max(1, min(workers, proxies))
        first = 0
        for w in range(workers):
            count = proxies // workers + (1 if w < proxies % workers else 0)
            spec = WorkerSpec(address, delta, first, count, per_channel, tls)
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=target, args=(child, spec, *extra), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
            first += count

    def command(self, cmd: tuple[Any, ...], timeout: float) -> list[dict[str, Any]]:
        """Send ``cmd`` to every worker; their replies, in worker order."""
        for conn in self.conns:
            conn.send(cmd)
        return [self._reply(conn, timeout) for conn in self.conns]

    def _reply(self, conn: Connection, timeout: float) -> dict[str, Any]:
        if not conn.poll(timeout + _SLACK):
            raise TimeoutError(f"a load worker did not answer within {timeout + _SLACK:.0f} s")
        reply: dict[str, Any] = conn.recv()
        return reply

    def stop(self) -> None:
        """Ask every worker to stop; terminate any that does not within 10 s."""
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        for conn in self.conns:
            conn.close()


def concat(replies: Sequence[dict[str, Any]], key: str) -> list[Any]:
    """The per-proxy lists under ``key`` of every worker, joined in proxy order."""
    return [item for reply in replies for item in reply[key]]
