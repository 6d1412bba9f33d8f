"""The one xDS config source pyistiod hands out: "over the ADS stream, v3".

Kept apart so that modules building TLS contexts (SDS secrets) and clusters
(EDS) share it without importing each other.
"""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2


def ads_config_source() -> config_source_pb2.ConfigSource:
    """A config source that says "over the ADS stream, v3" (``ads: {}``)."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def sds_secret(name: str) -> secret_pb2.SdsSecretConfig:
    """A secret fetched by name over ADS, with Envoy's default initial fetch timeout (15 s):
    a secret that never comes delays its cluster or listener that long, never forever."""
    return secret_pb2.SdsSecretConfig(name=name, sds_config=ads_config_source())
