"""Turns each debounced burst of config edits into one model, logged and applied.

The source says when to read again (``DirectoryWatch``); this module reads,
reports and applies. Invariants:

1. A reload either yields a whole valid model, applied in one step, or is
   refused whole with every error logged: the last good model stays served.
2. Edits are debounced by the source: a burst becomes one reload.
3. Time comes from the injected ``clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from pyistiod.settings import Settings
from translators.envoy.listeners.sidecar import listener_conflicts
from translators.mesh.analysis import analyze
from translators.mesh.model.mesh import MeshModel
from translators.sources.debounce import Debouncer
from translators.sources.directory_watch import DirectoryWatch
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
        debouncer = Debouncer(settings.debounce_after, settings.debounce_max)
        self.watch = DirectoryWatch(settings.config_dir, debouncer, clock)

    async def run(self) -> None:
        """Watch forever (until cancelled)."""
        async with contextlib.aclosing(self.watch.bursts()) as bursts:
            async for burst in bursts:
                metrics.DEBOUNCE_TIME.observe(burst.released - burst.first)
                await self.reload(burst.changes, burst.first)

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
