"""Watches the config directory and turns each debounced burst of edits into one model.

Invariants:

1. A reload either yields a whole valid model, applied in one step, or is
   refused whole with every error logged: the last good model stays served.
2. Edits are debounced (``Debouncer``): a burst becomes one reload.
3. Time comes from the injected ``clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import structlog
import watchfiles

from pyistiod.settings import Settings
from translators.envoy.listeners.sidecar import listener_conflicts
from translators.mesh.analysis import analyze
from translators.mesh.model.mesh import MeshModel
from translators.sources.debounce import Debouncer
from translators.sources.files import LoadResult, ParseCache, load_dir
from xds_server import metrics
from xds_server.errors import ConfigInvalid

log = structlog.get_logger("config")


def load_and_report(
    config_dir: Path, domain_suffix: str, cache: ParseCache | None = None
) -> LoadResult:
    """Load the directory, logging warnings; raises ``ConfigInvalid`` after logging each error."""
    try:
        result = load_dir(config_dir, domain_suffix, cache)
    except ConfigInvalid as invalid:
        for err in invalid.errors:
            log.error(
                "config.invalid",
                file=err.path,
                document=err.document,
                object=err.object,
                field=err.field,
                reason=err.reason,
            )
        raise
    for warning in result.warnings:
        log.warning("config.warning", detail=warning)
    for conflict in listener_conflicts(result.model):
        log.warning("config.listener_conflict", detail=conflict)
    for finding in analyze(result.model):  # istioctl analyze's kind: served, but suspicious
        log.warning("config.analysis", detail=finding)
    return result


class ConfigWatcher:
    """Reloads ``settings.config_dir`` after edits and hands each good model to ``apply``."""

    def __init__(
        self,
        settings: Settings,
        apply: Callable[[MeshModel, float], None],
        clock: Callable[[], float] = time.monotonic,
        parse_cache: ParseCache | None = None,
    ) -> None:
        self.settings = settings
        self.parse_cache = parse_cache or ParseCache()
        self.apply = apply
        self.clock = clock
        self.debouncer = Debouncer(settings.debounce_after, settings.debounce_max)
        self.changed = asyncio.Event()

    async def run(self) -> None:
        """Watch forever (until cancelled)."""
        watcher = asyncio.create_task(self._watch())
        try:
            while True:
                await self._wait_until_due()
                burst = self.debouncer.release(self.clock())
                if burst is not None:
                    metrics.DEBOUNCE_TIME.observe(burst.released - burst.first)
                    await self.reload(burst.changes, burst.first)
        finally:
            watcher.cancel()

    async def _wait_until_due(self) -> None:
        due = self.debouncer.deadline()
        timeout = None if due is None else max(0.0, due - self.clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)
        self.changed.clear()

    async def reload(self, merged: int = 1, changed_at: float | None = None) -> bool:
        """Load the directory now; apply it if valid. Returns whether it was applied.

        ``changed_at`` (clock time of the first change) is what proxy
        convergence is measured from.
        """
        started = self.clock()
        metrics.INBOUND_UPDATES.labels("config").inc(merged)
        try:
            result = await asyncio.to_thread(
                load_and_report,
                self.settings.config_dir,
                self.settings.domain_suffix,
                self.parse_cache,
            )
        except ConfigInvalid as invalid:
            log.error(
                "config.rejected",
                errors=len(invalid.errors),
                detail="the last good config stays in force",
            )
            return False
        try:
            self.apply(result.model, started if changed_at is None else changed_at)
        except Exception as err:  # a translator bug must not take the server down
            log.exception(
                "config.translation_failed",
                error=repr(err),
                detail="the last good config stays in force",
            )
            return False
        metrics.SERVICES.set(len(result.model.services))
        log.info(
            "config.applied",
            services=len(result.model.services),
            files=result.files,
            objects=result.objects,
            merged_changes=merged,
            seconds=round(self.clock() - started, 4),
        )
        return True

    async def _watch(self) -> None:
        async for _changes in watchfiles.awatch(
            self.settings.config_dir, debounce=20, step=5, recursive=True
        ):
            self.debouncer.change(self.clock())
            self.changed.set()
