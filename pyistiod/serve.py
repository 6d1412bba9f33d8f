"""``pyistiod serve``: the control plane process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import prometheus_client
import structlog

from pyistiod.config_watcher import ConfigWatcher, load_and_report
from pyistiod.registry import ProxyRegistry
from pyistiod.settings import Settings
from xds_server.cache import SnapshotCache
from xds_server.transport.server import XdsServer

log = structlog.get_logger("serve")


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    """Serve xDS from the config directory until cancelled.

    The initial load must be valid (there is no last good config yet):
    ``ConfigInvalid`` propagates to the caller.
    """
    initial = load_and_report(settings.config_dir, settings.domain_suffix)
    cache = SnapshotCache()
    registry = ProxyRegistry(cache, initial.model)
    server = XdsServer(cache, registry, settings.identifier)
    port = await server.start(settings.xds_address)
    if settings.monitoring_address:
        host, mport = _split(settings.monitoring_address)
        prometheus_client.start_http_server(mport, addr=host)
    log.info(
        "serve.ready",
        xds=f"{_split(settings.xds_address)[0]}:{port}",
        config_dir=str(settings.config_dir),
        services=len(initial.model.services),
        monitoring=settings.monitoring_address,
    )
    if on_ready is not None:
        on_ready(port)
    watcher = ConfigWatcher(settings, registry.apply_model)
    try:
        await watcher.run()
    finally:
        await server.stop()


def run(settings: Settings) -> None:
    """Run ``serve`` on a fresh event loop until Ctrl-C."""
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        log.info("serve.stopped")
