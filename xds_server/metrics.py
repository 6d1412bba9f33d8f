"""Prometheus metrics with istiod's names, help texts and buckets (pilot/pkg/xds/monitoring.go)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # istiod has no *_created series

_PUSH_BUCKETS = (0.01, 0.1, 1, 3, 5, 10, 20, 30)
_CONVERGENCE_BUCKETS = (0.1, 0.5, 1, 3, 5, 10, 20, 30)
_SIZE_BUCKETS = (1, 10_000, 1_000_000, 4_000_000, 10_000_000, 40_000_000)

XDS_CONNECTIONS = Gauge("pilot_xds", "Number of endpoints connected to this pilot using XDS.")
XDS_PUSHES = Counter(
    "pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds.", ["type"]
)
XDS_REJECTS = Counter(
    "pilot_total_xds_rejects",
    "Total number of XDS responses from pilot rejected by proxy.",
    ["type"],
)
XDS_CONFIG_SIZE = Histogram(
    "pilot_xds_config_size_bytes",
    "Distribution of configuration sizes pushed to clients",
    ["type"],
    buckets=_SIZE_BUCKETS,
)
XDS_PUSH_TIME = Histogram(
    "pilot_xds_push_time",
    "Total time in seconds Pilot takes to push lds, rds, cds and eds.",
    ["type"],
    buckets=_PUSH_BUCKETS,
)
PROXY_CONVERGENCE = Histogram(
    "pilot_proxy_convergence_time",
    "Delay in seconds between config change and a proxy receiving all required configuration.",
    buckets=_CONVERGENCE_BUCKETS,
)
PROXY_QUEUE_TIME = Histogram(
    "pilot_proxy_queue_time",
    "Time in seconds, a proxy is in the push queue before being dequeued.",
    buckets=_CONVERGENCE_BUCKETS,
)
DEBOUNCE_TIME = Histogram(
    "pilot_debounce_time",
    "Delay in seconds between the first config enters debouncing and the merged push request "
    "is pushed into the push queue.",
    buckets=_PUSH_BUCKETS,
)
INBOUND_UPDATES = Counter(
    "pilot_inbound_updates", "Total number of updates received by pilot.", ["type"]
)
SERVICES = Gauge("pilot_services", "Total services known to pilot.")
REJECTED_CONFIGS = Counter(
    "pilot_total_rejected_configs",
    "Total number of configs that Pilot had to reject or ignore.",
    ["type", "name"],
)
CERT_ISSUANCES = Counter(
    "citadel_server_success_cert_issuance_count",
    "The number of certificates issuances that have succeeded.",
)
CSR_REQUESTS = Counter("citadel_server_csr_count", "The number of CSRs received by Citadel server.")
AUTHN_FAILURES = Counter(
    "citadel_server_authentication_failure_count",
    "The number of authentication failures.",
)
XDS_DENIED = Counter(
    "pyistiod_xds_permission_denied_total",
    "xDS streams closed with PERMISSION_DENIED or UNAUTHENTICATED (no istiod equivalent).",
    ["reason"],
)
