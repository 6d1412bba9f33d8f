"""The list-then-watch loop of one resource against the API server, through kubernetes-asyncio.

Invariants:

1. List first (in pages of 500), then watch from the list's resource version
   with bookmarks; a watch that ends (the server's timeout, a dropped
   connection) resumes from the last resource version seen.
2. 410 Gone, as a status or as an ``ERROR`` event, relists at once; the
   ``Reflector`` makes the relist lose and duplicate nothing.
3. Any other failure (connection refused while the API server restarts, a
   5xx, an error event, an answer that does not parse) is reported through
   ``on_error``, waits with exponential backoff (``Backoff``) and tries
   again: a watch if a resource version is known, else a list. The backoff
   resets once a list succeeds or the server accepts a watch.
4. A resource the API server does not serve (404: its CRD is missing) is
   reported once through ``on_missing``, counts as synced and empty, and is
   retried every ``missing_retry`` seconds; it is never fatal.
5. Every change is reported through ``on_change`` after the reflector
   applied it. Lines are split by this module, so an object of any size
   (aiohttp's ``readline`` stops at 64 KiB) arrives whole.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient

from translators.sources.kubernetes.reflector import Expired, Key, Reflector, WatchFailed

PAGE = 500
WATCH_SECONDS = 300
"""Server-side watch timeout (client-go picks 5-10 minutes at random)."""


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``first`` doubling up to ``cap`` seconds."""

    first: float = 0.2
    cap: float = 30.0
    _next: float = 0.0

    def delay(self) -> float:
        """The pause before the next attempt."""
        self._next = min(self.cap, self._next * 2 if self._next else self.first)
        return self._next * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        """A success: the next failure starts from ``first`` again."""
        self._next = 0.0


class NotServed(Exception):
    """The API server does not serve the resource (404): its CRD is missing."""


async def follow(
    api: ApiClient,
    reflector: Reflector,
    on_change: Callable[[set[Key]], None],
    on_missing: Callable[[str], None],
    on_error: Callable[[str], None],
    missing_retry: float = 10.0,
) -> None:
    """Keep ``reflector`` in step with the API server until cancelled (invariants 1-5)."""
    backoff = Backoff()
    reported_missing = False
    while True:
        try:
            if reflector.resource_version is None:
                items, version = await _list(api, reflector)
                _notify(on_change, reflector.listed(items, version))
                reported_missing = False
                backoff.reset()
            await _watch(api, reflector, on_change, opened=backoff.reset)
        except Expired:
            reflector.resource_version = None
        except NotServed as missing:
            _notify(on_change, reflector.missing())
            if not reported_missing:
                on_missing(str(missing))
                reported_missing = True
            await asyncio.sleep(missing_retry)
        except Exception as err:  # any other failure: report, back off, retry (invariant 3)
            on_error(f"{type(err).__name__}: {str(err)[:300]}")
            await asyncio.sleep(backoff.delay())


def _notify(on_change: Callable[[set[Key]], None], changed: set[Key]) -> None:
    if changed:
        on_change(changed)


async def _list(api: ApiClient, reflector: Reflector) -> tuple[list[Mapping[str, Any]], str]:
    """Every item of the resource, page by page, and the list's resource version."""
    items: list[Mapping[str, Any]] = []
    token = ""
    while True:
        query: list[tuple[str, object]] = [("limit", PAGE)]
        if token:
            query.append(("continue", token))
        body = await _get_json(api, reflector, query)
        items.extend(body.get("items") or ())
        metadata = body.get("metadata") or {}
        token = metadata.get("continue") or ""
        if not token:
            return items, str(metadata.get("resourceVersion", ""))


async def _watch(
    api: ApiClient,
    reflector: Reflector,
    on_change: Callable[[set[Key]], None],
    opened: Callable[[], None],
) -> None:
    """One watch from the reflector's resource version, until the server ends it; ``opened``
    is called once the server accepted it."""
    query: list[tuple[str, object]] = [
        ("watch", "true"),
        ("allowWatchBookmarks", "true"),
        ("resourceVersion", reflector.resource_version or ""),
        ("timeoutSeconds", WATCH_SECONDS),
    ]
    response = await _get(api, reflector, query, read_timeout=WATCH_SECONDS + 30)
    opened()
    try:
        async for line in _lines(response):
            event = json.loads(line)
            if not isinstance(event, dict):
                raise WatchFailed(0, f"watch event is not an object: {line[:200]!r}")
            _notify(on_change, reflector.event(event))
    finally:
        response.release()


async def _get_json(
    api: ApiClient, reflector: Reflector, query: list[tuple[str, object]]
) -> dict[str, Any]:
    response = await _get(api, reflector, query, read_timeout=60)
    try:
        body = await response.json()
    finally:
        response.release()
    if not isinstance(body, dict):
        raise WatchFailed(0, "list answer is not an object")
    return body


async def _get(
    api: ApiClient, reflector: Reflector, query: list[tuple[str, object]], read_timeout: float
) -> aiohttp.ClientResponse:
    """A GET of the resource's collection; raises by status (404 ``NotServed``, 410 ``Expired``)."""
    resource = reflector.resource
    if resource.field_selector:
        query = [*query, ("fieldSelector", resource.field_selector)]
    response: aiohttp.ClientResponse = await api.call_api(
        resource.path,
        "GET",
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=read_timeout),
    )
    if response.status == 200:
        return response
    text = (await response.text())[:300]
    response.release()
    if response.status == 404:
        raise NotServed(f"{resource.api_version} {resource.kind} is not served ({resource.path})")
    if response.status == 410:
        raise Expired(text)
    raise WatchFailed(response.status, text)


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body's lines, whatever their length (invariant 5)."""
    pending = b""
    async for chunk in response.content.iter_any():
        pending += chunk
        *whole, pending = pending.split(b"\n")
        for line in whole:
            if line.strip():
                yield line
    if pending.strip():
        yield pending
