"""The monitoring port: metrics, readiness, and nothing else (pyistiod.monitoring)."""

from __future__ import annotations

import threading

from pyistiod.local_mesh import http_get
from pyistiod.monitoring import Monitoring
from xds_server import metrics  # registers pilot_xds, as serve's imports do


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


def test_counters_are_named_as_istiod_names_them_and_the_text_parses() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from pyistiod.monitoring import istiod_text

    metrics.XDS_PUSHES.labels("cds").inc()
    text = istiod_text().decode()
    assert "# TYPE pilot_xds_pushes counter" in text
    assert 'pilot_xds_pushes{type="cds"}' in text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert not {n for n in names if n.endswith(("_total", "_created"))}, names
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["pilot_xds_pushes"].type == "counter"
    assert families["pilot_xds"].type == "gauge"
    assert families["pilot_xds_push_time"].type == "histogram"
