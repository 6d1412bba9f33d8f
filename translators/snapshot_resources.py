"""Every xDS resource for one proxy, keyed by type URL: the input of a snapshot."""

from __future__ import annotations

from google.protobuf import message

from translators.clusters import build_clusters
from translators.endpoints import build_endpoints
from translators.listeners import build_listeners
from translators.model import MeshModel
from translators.proxy import Proxy
from translators.routes import build_routes
from xds_server import types


def build_resources(model: MeshModel, proxy: Proxy) -> dict[str, list[message.Message]]:
    """Clusters, endpoints, listeners and routes for ``proxy``, keyed by their type URLs.

    Each list is sorted by resource name. Keys are inserted in ADS order
    (``types.ADS_ORDER``); secrets are not produced here.
    """
    return {
        types.CLUSTER: list(build_clusters(model, proxy)),
        types.ENDPOINT: list(build_endpoints(model, proxy)),
        types.LISTENER: list(build_listeners(model, proxy)),
        types.ROUTE: list(build_routes(model, proxy)),
    }
