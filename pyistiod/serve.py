"""``pyistiod serve``: the control plane process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from ca.authority import KeyKind, SigningBundle
from ca.storage import load_ca, load_or_create_token_key
from pyistiod.authn import TokenAuthenticator
from pyistiod.ca_service import CertificateService
from pyistiod.config_sources import config_sources
from pyistiod.config_watcher import ConfigWatcher, commit, read_and_report
from pyistiod.debug_views import config_dump, configz
from pyistiod.istiod_cert import issue_istiod_cert
from pyistiod.monitoring import Monitoring, View, istiod_text, on_loop
from pyistiod.registry import ProxyRegistry
from pyistiod.secret_store import SecretStore
from pyistiod.settings import Settings, host_port
from pyistiod.worker_channel import BundlePem
from pyistiod.worker_pool import WorkerPool
from pyistiod.worker_views import WorkerViews
from pyistiod.workload_certs import CertificateIssuer
from translators.mesh.model.mesh import MeshModel
from translators.sources.changes import Changes
from translators.sources.debounce import Debouncer
from translators.sources.loader import Loader
from xds_server.cache import SnapshotCache
from xds_server.transport.server import TlsListener, XdsServer
from xds_server.transport.stream import Authenticator

if TYPE_CHECKING:  # Kubernetes mode only: a 40 MB import
    from kubernetes_asyncio.client import ApiClient

log = structlog.get_logger("serve")


def wall_clock() -> datetime:
    """Now, in UTC (certificates and tokens are about wall-clock time)."""
    return datetime.now(UTC)


@dataclass
class ControlPlane:
    """A started control plane: its server, registry and bound ports."""

    server: XdsServer
    registry: ProxyRegistry
    cache: SnapshotCache
    xds_port: int
    secure_xds_port: int
    bundle: SigningBundle

    @property
    def root_pem(self) -> bytes:
        """The mesh roots (PEM) proxies trust."""
        return self.bundle.roots_pem


async def start_control_plane(
    settings: Settings,
    model: MeshModel,
    authenticate: Authenticator | None = None,
    bundle: SigningBundle | None = None,
    worker: tuple[int, int] | None = None,
) -> ControlPlane:
    """Load the CA, then serve ``model`` on the plain and TLS xDS ports.

    Proxies on the TLS port authenticate with ``authenticate`` (in Kubernetes
    mode their ServiceAccount tokens), else with the CA's workload tokens. The
    CA is ``bundle`` (in Kubernetes mode, from ``istio-ca-secret``), else the
    one in ``settings.ca_dir``. Raises ``CAError`` for an unusable CA.

    ``worker`` is (index, count) in a worker of ``serve --workers N``: the ports are
    shared with the other workers, and connection IDs numbered apart from theirs.
    """
    if bundle is None:
        bundle = load_ca(settings.ca_dir, settings.trust_domain, wall_clock(), KeyKind.ECDSA_P256)
    authn = authenticate or TokenAuthenticator(
        load_or_create_token_key(settings.ca_dir), settings.trust_domain, wall_clock
    )
    cache = SnapshotCache()
    secrets = SecretStore(CertificateIssuer(bundle, settings.workload_cert_ttl, wall_clock))
    registry = ProxyRegistry(cache, model, secrets)
    ca_service = CertificateService(bundle, authn, settings.workload_cert_ttl, wall_clock)
    server = XdsServer(
        cache,
        registry,
        settings.identifier,
        authn,
        [ca_service.handler()],
        push_limit=settings.push_concurrency,
        connection_rate=settings.connection_rate / (1 if worker is None else worker[1]),
        numbering=(1, 1) if worker is None else (worker[0] + 1, worker[1]),
    )
    tls = None
    if settings.secure_xds_address:
        serving = issue_istiod_cert(
            bundle, settings.trust_domain, settings.system_namespace, wall_clock()
        )
        tls = TlsListener(settings.secure_xds_address, serving.chain_pem, serving.key_pem)
    plain, secure = await server.start(settings.xds_address, tls, share_ports=worker is not None)
    return ControlPlane(server, registry, cache, plain, secure, bundle)


def proxy_views(cp: ControlPlane, loop: asyncio.AbstractEventLoop) -> dict[str, View]:
    """The per-proxy debug views of ``cp`` (which runs on ``loop``), for a monitoring port."""
    return {
        "/debug/syncz": on_loop(loop, lambda _: cp.server.sync_status()),
        "/debug/adsz": on_loop(loop, lambda query: cp.server.ads_clients(query.get("proxyID", ""))),
        "/debug/config_dump": on_loop(
            loop, lambda query: config_dump(cp.cache, query.get("proxyID", ""))
        ),
    }


async def serve(settings: Settings, log_level: str = "info") -> None:
    """Serve xDS (and the CA) from the config sources until cancelled.

    Invalid objects in the initial load are refused alone and logged, as in
    every later load. ``ConfigInvalid`` (no such config directory) and
    ``SourceUnavailable`` (a Kubernetes API server that cannot be reached)
    propagate to the caller, as does a ``CAError`` for an unusable CA
    directory. The monitoring port answers ``/ready`` with 503 until every
    source is synced and xDS serves, and again while stopping.

    With ``settings.workers`` above 1 this process is the supervisor: it reads the
    config, holds the CA and the monitoring port, and N worker processes serve xDS
    (``pyistiod.worker_pool``), logging at ``log_level``; the monitoring port merges
    their views into one.
    """
    ready = threading.Event()
    views: dict[str, View] = {}
    pool: WorkerPool | None = None

    def worker_ports() -> list[int]:
        return pool.monitoring_ports() if pool is not None else []

    merged = WorkerViews(worker_ports)
    async with contextlib.AsyncExitStack() as stack:
        if settings.monitoring_address:
            host, port = host_port(settings.monitoring_address)
            metrics = merged.metrics(istiod_text) if settings.workers > 1 else istiod_text
            monitoring = Monitoring(host, port, ready.is_set, views, metrics=metrics)
            monitoring.start()
            stack.callback(monitoring.stop)
        changes = Changes(Debouncer(settings.debounce_after, settings.debounce_max))
        found = await stack.enter_async_context(config_sources(settings, changes))
        loader = Loader(found.sources, settings.domain_suffix)
        initial = read_and_report(loader)
        commit(loader, initial)
        bundle = await _signing_bundle(settings, found.kube_api)
        loop = asyncio.get_running_loop()
        if settings.workers > 1:
            pool = WorkerPool(settings, settings.workers, BundlePem.of(bundle), log_level)
            await pool.start(initial.model)
            stack.push_async_callback(pool.stop)
            apply, ports = pool.apply_model, (pool.xds_port, pool.secure_xds_port)
            views.update(merged.views())  # asked of every worker, in the monitoring thread
        else:
            cp = await control_plane(settings, initial.model, found.kube_api, bundle)
            stack.push_async_callback(cp.server.stop)
            apply, ports = cp.registry.apply_model, (cp.xds_port, cp.secure_xds_port)
            views.update(proxy_views(cp, loop))
        views["/debug/configz"] = on_loop(loop, lambda _: configz(loader))
        if found.kube_api is not None and settings.webhook_address:
            from pyistiod.webhook import admission_webhook

            await stack.enter_async_context(
                admission_webhook(settings, bundle, found.kube_api, wall_clock())
            )
        log.info(
            "serve.ready",
            xds_port=ports[0],
            secure_xds_port=ports[1],
            workers=settings.workers,
            config_dir=str(settings.config_dir) if settings.config_dir else None,
            kubernetes=found.kube_api is not None,
            services=len(initial.model.services),
            monitoring=settings.monitoring_address,
        )
        stack.callback(ready.clear)  # registered last, so it runs first: not ready while stopping
        ready.set()
        watcher = ConfigWatcher(settings, loader, apply, changes)
        if pool is None:
            await watcher.run()
            return
        await _until_one_ends(watcher.run(), pool.run())


async def _until_one_ends(*work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` together until one ends; its exception (a ``WorkerFailed``) is raised
    as itself, for ``serve`` to say in one line, and the others are cancelled."""
    tasks = [asyncio.create_task(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()


async def _signing_bundle(settings: Settings, kube_api: ApiClient | None) -> SigningBundle:
    """The CA: in Kubernetes mode from ``istio-ca-secret`` (created if absent), else from
    ``settings.ca_dir`` (a root created there on first start)."""
    if kube_api is None:
        bundle = load_ca(settings.ca_dir, settings.trust_domain, wall_clock(), KeyKind.ECDSA_P256)
        load_or_create_token_key(settings.ca_dir)  # after the root, as one process always did
        return bundle
    from pyistiod.kube_ca import load_or_create_ca_secret

    return await load_or_create_ca_secret(
        kube_api, settings.system_namespace, settings.trust_domain, wall_clock()
    )


async def control_plane(
    settings: Settings,
    model: MeshModel,
    kube_api: ApiClient | None,
    bundle: SigningBundle,
    worker: tuple[int, int] | None = None,
) -> ControlPlane:
    """The control plane (of one process, or of worker ``worker``); in Kubernetes mode
    (``kube_api``) proxies authenticate with ServiceAccount tokens, as istiod's."""
    if kube_api is None:
        return await start_control_plane(settings, model, bundle=bundle, worker=worker)
    from pyistiod.kube_authn import KubernetesTokenAuthenticator

    authn = KubernetesTokenAuthenticator(kube_api, settings.trust_domain)
    return await start_control_plane(settings, model, authn, bundle, worker)


YOUNG_COLLECTION_THRESHOLD = 50_000
"""Allocations between two young-generation garbage collections (Python's default: 700).

A control plane holds hundreds of thousands of long-lived objects (the model,
every proxy's snapshot and stream state); at 700 a push to 1,000 proxies runs
enough collections that their scans of the older generations cost a fifth of
its CPU, and every object a stream keeps (its sync record, its watchdog) adds
to each scan. Same-hour runs at 1,000 proxies (``benchmarks/results/
gc-threshold-ab-*.json``): endpoint change p50 0.53-0.70 s at 700, 0.38-0.45 s
at 50,000, 0.36-0.38 s before the streams kept those records; memory alike.
"""


def run(settings: Settings, log_level: str = "info") -> None:
    """Run ``serve`` on a fresh event loop until Ctrl-C or SIGTERM, then stop cleanly."""
    run_until_signalled(lambda: serve(settings, log_level))
    log.info("serve.stopped")


def run_until_signalled(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``work()`` on a fresh event loop, with the control plane's collection threshold,
    until it ends or Ctrl-C or SIGTERM stops it (``serve``, and each of its workers)."""
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])

    async def until_signalled() -> None:
        main = asyncio.current_task()
        if main is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await work()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(until_signalled())
