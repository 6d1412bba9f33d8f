"""The monitoring port: metrics, readiness, and nothing else (pyistiod.monitoring)."""

from __future__ import annotations

import threading

from pyistiod.local_mesh import http_get
from pyistiod.monitoring import Monitoring
from xds_server import metrics  # noqa: F401 - registers pilot_xds, as serve's imports do


def test_ready_follows_the_control_plane_and_metrics_carry_istiods_names() -> None:
    ready = threading.Event()
    monitoring = Monitoring("127.0.0.1", 0, ready.is_set)
    monitoring.start()
    base = f"http://127.0.0.1:{monitoring.port}"
    try:
        assert http_get(f"{base}/ready")[0] == 503
        ready.set()
        assert http_get(f"{base}/ready") == (200, "ready\n")
        status, body = http_get(f"{base}/metrics")
        assert status == 200 and "# TYPE pilot_xds gauge" in body
        assert http_get(f"{base}/debug/nothing")[0] == 404
    finally:
        monitoring.stop()
