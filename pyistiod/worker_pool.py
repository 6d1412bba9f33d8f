"""The workers of ``serve --workers N``, started, fed and stopped by the supervisor.

The supervisor (the ``serve`` process) keeps what there must be one of: the config
sources and the loader (so each object is read, validated and logged once, and
Kubernetes is watched once), the CA, the admission webhook and the monitoring port.
Workers (``pyistiod.worker``) only translate and serve. Invariants:

1. The xDS ports are held (``pyistiod.port_lock``) before any worker starts and for as
   long as the pool runs: only this supervisor's workers share them.
2. Each model in force is sent to every worker as its delta from the one sent before
   (``worker_channel.ModelDelta``), pickled once; a worker started later (a replacement)
   starts from the latest model, whole, and gets every delta after it, even while it
   starts. A worker applies deltas to the last model it received, whether or not that
   one translated. Versions are hashes of content, so
   every worker serves the same version for the same config, and a proxy that
   reconnects to another worker is not re-sent what it holds.
3. A worker that exits is replaced, and logged with its exit code. One that exits
   within ``CRASH_WINDOW`` of its start twice in a row stops the pool (``WorkerFailed``):
   a crash loop is reported, not hidden.
4. ``stop`` ends every worker: SIGTERM, then SIGKILL after ``STOP_GRACE`` seconds; a
   worker whose supervisor died sees its channel end and stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace

import structlog

from pyistiod.port_lock import HeldPort, hold
from pyistiod.settings import Settings, host_port
from pyistiod.worker_channel import (
    Apply,
    ApplyFailed,
    BundlePem,
    Serving,
    Start,
    encode,
    model_delta,
    receive,
)
from translators.mesh.model.mesh import MeshModel

log = structlog.get_logger("serve")

START_TIMEOUT = 60.0
"""Seconds a worker may take from spawn to serving (imports, first translation)."""
CRASH_WINDOW = 10.0
"""A worker that exits this soon after it started is crashing, not ageing."""
STOP_GRACE = 10.0


class WorkerFailed(Exception):
    """A worker could not start, or keeps exiting right after it starts."""


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader
    started: float
    monitoring_port: int = 0


@dataclass
class WorkerPool:
    """N worker processes serving one supervisor's models on its held ports."""

    settings: Settings
    count: int
    bundle: BundlePem
    log_level: str = "info"
    command: tuple[str, ...] = (sys.executable, "-m", "pyistiod.worker")
    """How a worker is started; its channel's file descriptor is appended."""
    workers: list[_Worker | None] = field(default_factory=list)
    held: list[HeldPort] = field(default_factory=list)
    model: MeshModel | None = None
    listening: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def xds_port(self) -> int:
        """The plain-text xDS port the workers share."""
        return host_port(self.held[0].address)[1]

    @property
    def secure_xds_port(self) -> int:
        """The TLS xDS port the workers share (0 for none)."""
        return host_port(self.held[1].address)[1] if len(self.held) > 1 else 0

    def monitoring_ports(self) -> list[int]:
        """The monitoring port of every serving worker."""
        return [w.monitoring_port for w in self.workers if w is not None and w.monitoring_port]

    async def start(self, model: MeshModel) -> None:
        """Hold the ports, start every worker on ``model`` and wait until each serves.

        ``OSError`` naming the address if a port is taken; ``WorkerFailed`` if a worker
        does not come up (its exit code, or the timeout).
        """
        self.model = model
        self.held.append(hold(self.settings.xds_address))
        if self.settings.secure_xds_address:
            self.held.append(hold(self.settings.secure_xds_address))
        self.workers = [None] * self.count
        try:
            await asyncio.gather(*(self._spawn(i) for i in range(self.count)))
        except BaseException:
            await self.stop()
            raise

    def apply_model(self, model: MeshModel, changed_at: float) -> None:
        """Send ``model`` to every worker: its delta from the model sent before, pickled once."""
        assert self.model is not None, "start() first"
        frame = encode(Apply(model_delta(self.model, model), changed_at))
        self.model = model
        for worker in self.workers:
            if worker is not None:
                worker.writer.write(frame)

    async def run(self) -> None:
        """Replace workers that exit, until cancelled; ``WorkerFailed`` on a crash loop."""
        crashes = [0] * self.count
        while True:
            worker, code = await self._next_exit()
            quick = time.monotonic() - worker.started < CRASH_WINDOW
            crashes[worker.index] = crashes[worker.index] + 1 if quick else 0
            log.error("serve.worker_exited", worker=worker.index, exit_code=code)
            self.workers[worker.index] = None
            if crashes[worker.index] >= 2:
                raise WorkerFailed(
                    f"worker {worker.index} exited twice within {CRASH_WINDOW:.0f} s of "
                    f"starting (exit code {code}); see its log lines above"
                )
            await self._spawn(worker.index)

    async def stop(self) -> None:
        """End every worker (SIGTERM, then SIGKILL after ``STOP_GRACE``) and let the ports go."""
        running = [w for w in self.workers if w is not None]
        for worker in running:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*(asyncio.to_thread(_reap, w.proc) for w in running))
        for worker in running:
            worker.writer.close()
        for held in self.held:
            held.release()
        self.held.clear()

    async def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(
            [*self.command, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        worker = _Worker(index, proc, writer, reader, time.monotonic())
        assert self.model is not None
        settings = replace(
            self.settings,
            xds_address=self.held[0].address,
            secure_xds_address=self.held[1].address if len(self.held) > 1 else "",
        )
        start = Start(settings, index, self.count, self.log_level, self.bundle, self.model)
        writer.write(encode(start))
        self.workers[index] = worker  # from now on every delta follows its Start (invariant 2)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                serving = await receive(reader)
        except TimeoutError:
            proc.kill()
            self.workers[index] = None
            raise WorkerFailed(
                f"worker {index} did not serve within {START_TIMEOUT:.0f} s"
            ) from None
        if not isinstance(serving, Serving):
            code = await asyncio.to_thread(proc.wait)
            self.workers[index] = None
            raise WorkerFailed(
                f"worker {index} exited before serving (exit code {code}); see its log lines above"
            )
        worker.monitoring_port = serving.monitoring_port
        task = asyncio.create_task(self._listen(worker))
        self.listening.add(task)
        task.add_done_callback(self.listening.discard)

    async def _listen(self, worker: _Worker) -> None:
        """Log what a worker reports after it serves."""
        while (message := await receive(worker.reader)) is not None:
            if isinstance(message, ApplyFailed):
                log.error("serve.worker_apply_failed", worker=worker.index, error=message.error)

    async def _next_exit(self) -> tuple[_Worker, int]:
        """The first worker to exit, and its exit code."""
        while True:
            for worker in self.workers:
                if worker is not None and (code := worker.proc.poll()) is not None:
                    return worker, code
            await asyncio.sleep(0.5)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
