"""The monitoring port (istiod's 15014): Prometheus metrics and readiness.

Paths:

- ``/metrics`` (also ``/stats/prometheus``): Prometheus text with istiod's metric names,
  counters as istiod exposes them (``pilot_xds_pushes``, not ``pilot_xds_pushes_total``,
  which Istio's dashboards do not query; ``istiod_text``);
- ``/ready``: 200 once the control plane serves (sources synced, xDS listening),
  503 while it stops, the probe a Deployment's ``readinessProbe`` asks;
- ``/version``: pyistiod's version, as JSON;
- the JSON views the control plane adds once it serves (``views``): ``/debug/syncz``
  (what each connected proxy was sent and ACKed or NACKed), ``/debug/adsz[?proxyID=]``
  (each xDS stream: connection ID, proxy, peer address, since when, TLS and the
  identity it authenticated as, the types and names it watches),
  ``/debug/config_dump?proxyID=`` (what that proxy is served), ``/debug/configz``
  (the objects in force and the refused ones); 503 before, 404 for a proxy that is
  not connected;
- anything else: 404.

Nothing here shows a private key or a token: the views hold versions, nonces,
Envoy's messages, addresses and identities (SPIFFE IDs, not the tokens that proved
them); ``/debug/config_dump`` redacts every private key.

It runs in a thread of its own (as ``prometheus_client.start_http_server``
does), so a busy event loop never makes a probe time out.
"""

from __future__ import annotations

import asyncio
import json
import platform
import threading
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import prometheus_client
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the log: say nothing."""


View = Callable[[Mapping[str, str]], object]
"""A debug view: given the query parameters, what to answer as JSON (``None``: not found)."""

DEBUG_PATHS = ("/debug/syncz", "/debug/adsz", "/debug/config_dump", "/debug/configz")
"""The views the control plane adds (503 until it does)."""


def version() -> dict[str, str]:
    """pyistiod's version and the Python it runs on."""
    try:
        own = metadata.version("pyistiod")
    except metadata.PackageNotFoundError:
        own = "unknown"
    return {"version": own, "python": platform.python_version()}


def on_loop(loop: asyncio.AbstractEventLoop, view: View, timeout: float = 5.0) -> View:
    """``view`` run on ``loop`` (which owns what it reads), called from another thread."""

    async def call(query: Mapping[str, str]) -> object:
        return view(query)

    return lambda query: asyncio.run_coroutine_threadsafe(call(query), loop).result(timeout)


OWN_PREFIXES = ("pilot_", "citadel_", "pyistiod_")
"""Metrics named as istiod names its own (counters without ``_total``); the standard
``process_*`` and ``python_*`` ones keep the client library's names, as Go's collectors keep
``process_cpu_seconds_total`` in istiod."""


def istiod_text(registry: CollectorRegistry = prometheus_client.REGISTRY) -> bytes:
    """The registry in Prometheus text format, counters named as istiod names them.

    prometheus_client writes a counter ``c`` as ``c_total`` (and a ``c_created``
    sample); istiod exposes its own counters as ``c`` itself, which the text format allows,
    and Istio's dashboards query that name (``OWN_PREFIXES``).
    """
    lines: list[str] = []
    for metric in registry.collect():
        if metric.type != "counter" or not metric.name.startswith(OWN_PREFIXES):
            lines.append(prometheus_client.generate_latest(_Single(metric)).decode())
            continue
        lines.append(f"# HELP {metric.name} {_escape_help(metric.documentation)}\n")
        lines.append(f"# TYPE {metric.name} counter\n")
        for sample in (s for s in metric.samples if s.name.endswith("_total")):
            pairs = sorted(sample.labels.items())
            labels = ",".join(f'{k}="{_escape_value(v)}"' for k, v in pairs)
            name = f"{metric.name}{{{labels}}}" if labels else metric.name
            lines.append(f"{name} {float(sample.value)!r}\n")
    return "".join(lines).encode()


class _Single:
    """One collected metric, as a collector ``generate_latest`` can write."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric

    def collect(self) -> Iterable[Any]:
        return [self.metric]


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def monitoring_app(
    ready: Callable[[], bool],
    views: Mapping[str, View] | None = None,
    metrics: Callable[[], bytes] = istiod_text,
) -> WSGIApp:
    """The WSGI application of the monitoring port; ``views`` may be filled in later;
    ``metrics`` writes ``/metrics`` (another process's may be merged in: ``worker_views``)."""
    views = {} if views is None else views

    def json_reply(start_response: Callable[..., Any], status: str, body: object) -> list[bytes]:
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(body, indent=1).encode() + b"\n"]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/version":
            return json_reply(start_response, "200 OK", version())
        if path in DEBUG_PATHS:
            view = views.get(path)
            if view is None:
                return json_reply(
                    start_response, "503 Service Unavailable", {"error": "not serving yet"}
                )
            query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            body = view(query)
            if body is None:
                return json_reply(start_response, "404 Not Found", {"error": "no such proxy"})
            return json_reply(start_response, "200 OK", body)
        if path in ("/metrics", "/stats/prometheus"):
            start_response("200 OK", [("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)])
            return [metrics()]
        if path == "/ready":
            ok = ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ready\n" if ok else b"not ready\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /ready, /version, /debug/syncz or /debug/adsz\n"]

    return app


class Monitoring:
    """The monitoring server; ``ready`` says whether the control plane serves."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: Callable[[], bool],
        views: Mapping[str, View] | None = None,
        metrics: Callable[[], bytes] = istiod_text,
    ) -> None:
        """Listen on ``host:port``; raises ``OSError`` naming the address if it cannot."""
        app = monitoring_app(ready, views, metrics)
        try:
            self._server = make_server(
                host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
            )
        except OSError as err:
            raise OSError(f"cannot listen on {host}:{port} (monitoring): {err.strerror}") from err
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitoring", daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
