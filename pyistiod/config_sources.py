"""The config sources ``serve`` reads from, started and stopped together.

``--config-dir`` gives a ``FileSource`` and the ``DirectoryWatch`` that
reports its edits; ``--kubeconfig`` (or ``--in-cluster``) a
``KubernetesSource`` following the API server. Both report into one
``Changes``, so they are debounced together, and feed one ``Loader``.
Invariants:

1. ``config_sources`` yields only once every source can be read: the
   Kubernetes source has listed every kind once (``KubernetesSource.start``),
   so the first model holds what the cluster already had.
2. A source that cannot be reached at all (no such kubeconfig, an API server
   that never answers) raises ``SourceUnavailable`` with one line saying
   which and why; a kind whose CRD is missing is only logged, once.
3. Leaving the context stops every watch and closes the API client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from pyistiod.kube_client import api_client
from pyistiod.settings import Settings
from translators.sources.changes import Changes
from translators.sources.directory_watch import DirectoryWatch
from translators.sources.files import FileSource
from translators.sources.loader import Source
from xds_server.errors import SourceUnavailable

if TYPE_CHECKING:  # kubernetes-asyncio costs about 40 MB: imported in Kubernetes mode only
    from kubernetes_asyncio import client

    from translators.sources.kubernetes.source import KubernetesSource

log = structlog.get_logger("config")


@dataclass
class Found:
    """The started sources, and the API client of the Kubernetes one (for the webhook)."""

    sources: list[Source] = field(default_factory=list)
    kube_api: client.ApiClient | None = None


@contextlib.asynccontextmanager
async def config_sources(settings: Settings, changes: Changes) -> AsyncIterator[Found]:
    """Every source the settings name, started; stopped when the context ends."""
    found = Found()
    sources = found.sources
    async with contextlib.AsyncExitStack() as stack:
        if settings.config_dir is not None:
            sources.append(FileSource(settings.config_dir))
            watch = asyncio.create_task(DirectoryWatch(settings.config_dir, changes).run())
            stack.callback(watch.cancel)
        if settings.kubeconfig is not None or settings.in_cluster:
            from translators.sources.kubernetes.selectors import parse_selector
            from translators.sources.kubernetes.source import KubernetesSource

            api = await stack.enter_async_context(await api_client(settings.kubeconfig))
            kube = KubernetesSource(
                api,
                changes,
                discovery=[parse_selector(s) for s in settings.discovery_selectors],
                system_namespace=settings.system_namespace,
                on_missing=lambda detail: log.warning("kubernetes.kind_not_served", detail=detail),
                on_error=lambda detail: log.warning("kubernetes.watch_failed", detail=detail),
            )
            stack.push_async_callback(kube.stop)
            await _started(kube, settings)
            sources.append(kube)
            found.kube_api = api
        yield found


async def _started(kube: KubernetesSource, settings: Settings) -> None:
    try:
        await kube.start(timeout=settings.kube_sync_timeout)
    except TimeoutError as err:
        server = str(kube.api.configuration.host)
        raise SourceUnavailable(
            server,
            f"could not list every watched kind within {settings.kube_sync_timeout:.0f} s "
            "(see the kubernetes.watch_failed log lines for why)",
        ) from err
