"""One worker of ``serve --workers N``: serves xDS and the CA to the proxies it is handed.

Started by the supervisor (``pyistiod.worker_pool``) as ``python -m pyistiod.worker FD``,
FD being its end of the channel (``pyistiod.worker_channel``). Invariants:

1. It reads no config source: every model comes from the supervisor, which read,
   validated and logged it once, so a refusal is logged once, not once per worker.
2. It listens on the supervisor's xDS ports with SO_REUSEPORT; the kernel hands each
   new connection to one worker, and a proxy's streams on that connection stay there.
3. Its monitoring server listens on an ephemeral loopback port with the per-proxy
   views (``/debug/syncz``, ``/debug/adsz``, ``/debug/config_dump``) and ``/metrics``;
   the supervisor's 15014 merges them into one view of every proxy.
4. It stops when the channel ends (the supervisor is gone, however it ended) or on
   SIGTERM; SIGINT (Ctrl-C on a terminal reaches the whole process group) is left to
   the supervisor, which then stops its workers in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from dataclasses import replace

import structlog

from pyistiod import logging_setup
from pyistiod.monitoring import Monitoring
from pyistiod.serve import ControlPlane, control_plane, proxy_views, run_until_signalled
from pyistiod.worker_channel import Apply, ApplyFailed, Serving, Start, encode, receive
from translators.mesh.model.mesh import MeshModel

log = structlog.get_logger("worker")


def main(argv: list[str]) -> int:
    """Serve as a worker over the channel on file descriptor ``argv[0]``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = socket.socket(fileno=int(argv[0]))
    run_until_signalled(lambda: _until_stopped(channel))
    return 0


async def _until_stopped(channel: socket.socket) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=channel)
    start = await receive(reader)
    if not isinstance(start, Start):
        return  # the supervisor went away before it said anything
    logging_setup.configure(start.log_level)
    structlog.contextvars.bind_contextvars(worker=start.index)
    async with contextlib.AsyncExitStack() as stack:
        cp = await _control_plane(start, stack)
        await _serve(cp, reader, writer)


async def _serve(
    cp: ControlPlane, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve until the channel ends: views on a monitoring port of its own, models applied."""
    views = proxy_views(cp, asyncio.get_running_loop())
    monitoring = Monitoring("127.0.0.1", 0, lambda: True, views)
    monitoring.start()
    try:
        writer.write(encode(Serving(monitoring.port)))
        log.debug("worker.serving", xds_port=cp.xds_port, monitoring_port=monitoring.port)
        received = cp.registry.model
        while (message := await receive(reader)) is not None:
            if isinstance(message, Apply):
                received = message.delta.apply(received)
                _apply(cp, received, message.changed_at, writer)
    finally:
        monitoring.stop()
        await cp.server.stop()


async def _control_plane(start: Start, stack: contextlib.AsyncExitStack) -> ControlPlane:
    """The control plane on the shared ports; in Kubernetes mode with an API client of its
    own for TokenReviews (closed by ``stack``)."""
    settings = replace(start.settings, workers=1)
    api = None
    if settings.kubeconfig is not None or settings.in_cluster:
        from pyistiod.kube_client import api_client

        api = await stack.enter_async_context(await api_client(settings.kubeconfig))
    worker = (start.index, start.count)
    return await control_plane(settings, start.model, api, start.bundle.bundle(), worker)


def _apply(
    cp: ControlPlane, model: MeshModel, changed_at: float, writer: asyncio.StreamWriter
) -> None:
    try:
        cp.registry.apply_model(model, changed_at)
    except Exception as err:  # a translator bug must not take the worker down
        log.exception(
            "config.translation_failed",
            error=repr(err),
            detail="the last good config stays in force in this worker",
        )
        writer.write(encode(ApplyFailed(repr(err))))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
