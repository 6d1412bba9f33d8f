"""Every xDS resource for one proxy, keyed by type URL: the input of a snapshot."""

from __future__ import annotations

from google.protobuf import message

from translators.envoy.clusters import build_inbound_clusters, build_outbound_clusters
from translators.envoy.endpoints import build_endpoints
from translators.envoy.jwt import build_jwks_clusters
from translators.envoy.listeners.gateway import build_gateway_listeners
from translators.envoy.listeners.sidecar import build_inbound_listeners, build_outbound_listeners
from translators.envoy.routes.gateway import build_gateway_routes
from translators.envoy.routes.sidecar import build_routes
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.selection.sidecar_scope import scope_model
from xds_server import types


def build_resources(model: MeshModel, proxy: Proxy) -> dict[str, list[message.Message]]:
    """Clusters, endpoints, listeners and routes for ``proxy``, keyed by their type URLs.

    Each list is sorted by resource name. Keys are inserted in ADS order
    (``types.ADS_ORDER``); secrets are not produced here. Outbound config
    comes from the model scoped to the proxy (``sidecar_scope``), inbound
    config (and the clusters it fetches JWKS through) from the whole model; a
    router gets its Gateways' listeners and routes instead of a sidecar's.
    """
    scoped = scope_model(model, proxy)
    clusters = build_outbound_clusters(scoped) + build_inbound_clusters(model, proxy)
    clusters += build_jwks_clusters(model, proxy)
    if proxy.type is ProxyType.ROUTER:
        listeners = build_gateway_listeners(scoped, proxy)
        routes = build_gateway_routes(scoped, proxy)
    else:
        listeners = build_outbound_listeners(scoped, proxy.outbound_address, proxy=proxy)
        listeners += build_inbound_listeners(model, proxy)
        routes = build_routes(scoped, proxy)
    return {
        types.CLUSTER: sorted(clusters, key=lambda c: str(c.name)),
        types.ENDPOINT: list(build_endpoints(scoped, proxy)),
        types.LISTENER: sorted(listeners, key=lambda v: str(v.name)),
        types.ROUTE: list(routes),
    }
