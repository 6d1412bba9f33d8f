"""The one xDS config source pyistiod hands out: "over the ADS stream, v3".

Kept apart so that modules building TLS contexts (SDS secrets) and clusters
(EDS) share it without importing each other.
"""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2


def ads_config_source() -> config_source_pb2.ConfigSource:
    """A config source that says "over the ADS stream, v3" (``ads: {}``)."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )
