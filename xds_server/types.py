"""xDS type URLs and the order in which ADS sends them.

One place for the strings, as go-control-plane's ``resource/v3`` holds them.
"""

from __future__ import annotations

from typing import Final

_PREFIX: Final = "type.googleapis.com/"

CLUSTER: Final = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT: Final = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER: Final = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE: Final = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
SECRET: Final = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

ADS_ORDER: Final[tuple[str, ...]] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
"""The order that keeps Envoy from dropping traffic while it warms
(xDS protocol, "Eventual consistency considerations"): CDS, then EDS for the
new clusters, then LDS, then RDS for the new listeners. Secrets last: they are
only referenced by name and Envoy waits for them while warming."""

KNOWN_TYPES: Final = frozenset(ADS_ORDER)

WILDCARD_TYPES: Final = frozenset({CLUSTER, LISTENER})
"""Types whose state-of-the-world response must carry every resource: for these
an absent resource means deleted (xDS protocol, "Resource types" and
"Deleting resources"). For EDS, RDS and SDS a response may carry only the
resources that changed."""

SHORT_NAMES: Final = {
    CLUSTER: "cds",
    ENDPOINT: "eds",
    LISTENER: "lds",
    ROUTE: "rds",
    SECRET: "sds",
}
"""Short names for logs and metric labels, as istiod's ``v3.GetShortType``."""


def short_name(type_url: str) -> str:
    """``cds``, ``eds``... for a known type URL; the URL itself otherwise."""
    return SHORT_NAMES.get(type_url, type_url)
