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
    own = {n for n in names if n.startswith(("pilot_", "citadel_", "pyistiod_"))}
    assert not {n for n in own if n.endswith(("_total", "_created"))}, own
    assert not {n for n in names if n.endswith("_created")}, names
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["pilot_xds_pushes"].type == "counter"
    assert families["pilot_xds"].type == "gauge"
    assert families["pilot_xds_push_time"].type == "histogram"


ISTIOD_METRICS = {
    # istiod's own metric names (pilot/pkg/xds/monitoring.go, pilot/pkg/model/push_context.go,
    # security/pkg/server/ca/monitoring.go), as its dashboards query them.
    "pilot_xds",
    "pilot_xds_pushes",
    "pilot_xds_push_time",
    "pilot_xds_config_size_bytes",
    "pilot_proxy_convergence_time",
    "pilot_proxy_queue_time",
    "pilot_push_triggers",
    "pilot_inbound_updates",
    "pilot_debounce_time",
    "pilot_services",
    "pilot_virt_services",
    "pilot_total_xds_rejects",
    "pilot_total_xds_internal_errors",
    "pilot_total_rejected_configs",
    "pilot_xds_expired_nonce",
    "citadel_server_csr_count",
    "citadel_server_success_cert_issuance_count",
    "citadel_server_authentication_failure_count",
    "citadel_server_csr_parsing_err_count",
    "citadel_server_root_cert_expiry_timestamp",
}


def test_every_istiod_style_metric_is_one_istiod_has_and_process_metrics_keep_their_names() -> None:
    import pyistiod.serve  # noqa: F401 (registers every metric serve exposes)
    from pyistiod.monitoring import istiod_text

    text = istiod_text().decode()
    exposed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    ours = {n for n in exposed if n.startswith(("pilot_", "citadel_"))}
    assert ours and ours <= ISTIOD_METRICS, ours - ISTIOD_METRICS
    assert "process_cpu_seconds_total " in text  # Prometheus' standard name, as in istiod
