"""Prometheus metrics of the xDS server, with istiod's names."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

XDS_CONNECTIONS = Gauge("pilot_xds", "Number of endpoints connected to this pilot using XDS.")
XDS_PUSHES = Counter(
    "pilot_xds_pushes", "Pilot build and send errors for lds, rds, cds and eds.", ["type"]
)
XDS_REJECTS = Counter(
    "pilot_total_xds_rejects",
    "Total number of XDS responses from pilot rejected by proxy.",
    ["type"],
)
XDS_CONFIG_SIZE = Counter(
    "pilot_xds_config_size_bytes_total", "Bytes of xDS responses sent, by type.", ["type"]
)
