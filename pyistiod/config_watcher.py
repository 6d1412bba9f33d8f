"""Turns each debounced burst of config edits into one model, logged and applied.

The sources say when to read again (``Changes``) and the ``Loader`` what is in
force; this module reads, reports and applies. Invariants:

1. One bad object is refused alone: each refusal is logged (file, document,
   object, field, reason, and whether its last valid version stays) and
   counted (``pilot_total_rejected_configs``); every other change applies.
2. A read that yields no object at all while objects are served (every file
   gone, the directory emptied, the cluster's objects deleted) is refused
   whole, loudly, unless ``allow_empty_config``: an accident must not push an
   empty mesh.
3. A read is committed to the loader only once applied, so a refused or
   failed read leaves what is in force where it was.
4. Changes from every source are debounced together (``Changes``): a burst
   becomes one reload; time comes from the injected ``clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from pyistiod.analysis_report import analysis_findings
from pyistiod.settings import Settings
from translators.envoy.listeners.sidecar import listener_conflicts
from translators.mesh.model.mesh import MeshModel
from translators.sources.changes import Changes
from translators.sources.debounce import Debouncer
from translators.sources.loader import Loader, LoadResult
from xds_server import metrics
from xds_server.errors import ConfigInvalid

log = structlog.get_logger("config")


def report(result: LoadResult) -> None:
    """Log and count what a read refused, and log its warnings and analysis findings."""
    for refusal in result.refusals:
        for err in refusal.errors:
            log.error(
                "config.invalid",
                file=err.path,
                document=err.document,
                object=err.object,
                field=err.field,
                reason=err.reason,
                in_force=refusal.standing(),
            )
        key = refusal.key
        kind, name = (key.kind, f"{key.namespace}/{key.name}") if key else ("document", "")
        metrics.REJECTED_CONFIGS.labels(kind, name).inc()
    for warning in result.warnings:
        log.warning("config.warning", detail=warning)
    if result.endpoints_only:
        return  # the findings below read no endpoints: they were logged when they arose
    for conflict in listener_conflicts(result.model):
        log.warning("config.listener_conflict", detail=conflict)
    for finding in analysis_findings(result):  # istioctl analyze's: served, but suspicious
        message = finding.message
        log.warning(
            "config.analysis",
            code=message.type.code,
            level=str(message.level),
            object=finding.origin,
            where=finding.reference,
            field=message.field,
            message=message.text,
        )


def commit(loader: Loader, result: LoadResult) -> None:
    """Make ``result`` the config in force, and say how many services it has
    (``pilot_services``, right from the first load)."""
    loader.commit(result)
    metrics.SERVICES.set(len(result.model.services))


def read_and_report(loader: Loader) -> LoadResult:
    """``loader.read()`` with its refusals and warnings logged; ``ConfigInvalid`` if a
    source cannot be read at all (the config directory is gone)."""
    result = loader.read()
    report(result)
    return result


class ConfigWatcher:
    """Reloads through ``loader`` after each burst of ``changes`` and applies each good model."""

    def __init__(
        self,
        settings: Settings,
        loader: Loader,
        apply: Callable[[MeshModel, float], None],
        changes: Changes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.loader = loader
        self.apply = apply
        self.clock = clock
        self.changes = changes or Changes(
            Debouncer(settings.debounce_after, settings.debounce_max), clock
        )

    async def run(self) -> None:
        """Reload after every burst of changes, forever (until cancelled)."""
        async with contextlib.aclosing(self.changes.bursts()) as bursts:
            async for burst in bursts:
                metrics.DEBOUNCE_TIME.observe(burst.released - burst.first)
                await self.reload(burst.changes, burst.first)

    async def reload(self, merged: int = 1, changed_at: float | None = None) -> bool:
        """Read every source now and apply what is in force. Returns whether the read is in
        force (applied, or changing nothing a proxy sees, so applying it would push nothing).

        ``changed_at`` (clock time of the first change) is what proxy
        convergence is measured from.
        """
        started = self.clock()
        metrics.INBOUND_UPDATES.labels("config").inc(merged)
        try:
            result = await asyncio.to_thread(read_and_report, self.loader)
        except ConfigInvalid as invalid:
            log.error("config.unreadable", detail=str(invalid), in_force="the last good config")
            return False
        if self._refuses_empty(result):
            return False
        if result.model is self.loader.model:  # e.g. a Pod's status, an excluded namespace
            self.loader.commit(result)
            log.debug("config.unchanged", merged_changes=merged)
            return True
        try:
            self.apply(result.model, started if changed_at is None else changed_at)
        except Exception as err:  # a translator bug must not take the server down
            log.exception(
                "config.translation_failed",
                error=repr(err),
                detail="the last good config stays in force",
            )
            return False
        commit(self.loader, result)
        log.info(
            "config.applied",
            services=len(result.model.services),
            files=result.files,
            objects=result.objects,
            refused=len(result.refusals),
            merged_changes=merged,
            seconds=round(self.clock() - started, 4),
        )
        return True

    def _refuses_empty(self, result: LoadResult) -> bool:
        """Invariant 2: nothing read while objects are served is taken for an accident."""
        if result.documents or not self.loader.in_force or self.settings.allow_empty_config:
            return False
        log.error(
            "config.empty_refused",
            objects_in_force=len(self.loader.in_force),
            detail="the config sources yield no object; the last good config stays in force "
            "(serve with --allow-empty-config to let an empty source empty the mesh)",
        )
        return True
