"""Real Envoy accepts a full gateway config: listeners, routes, clusters and secrets.

The router's listeners (RDS replaced by the route configurations inline),
its outbound clusters (EDS turned STATIC with their assignments) and the
``kubernetes://`` secrets from ``gateway_secrets`` (and the mesh's ``default``
and ``ROOTCA``) as static secrets, since
``envoy --mode validate`` has no ADS stream to fetch them over.
"""

from __future__ import annotations

from pathlib import Path

from envoy_validate import envoy_validate, with_static_secrets
from gateway_mesh import ROUTER, VIRTUAL_SERVICES, gateway_model
from test_envoy_accepts_config import as_dict, base_bootstrap, inline_cluster, inline_listener

from translators.envoy.clusters import build_outbound_clusters
from translators.envoy.endpoints import build_endpoints
from translators.envoy.listeners.gateway import build_gateway_listeners
from translators.envoy.routes.gateway import build_gateway_routes
from translators.envoy.tls.gateway_secrets import gateway_secrets


def test_envoy_accepts_gateway_config(tmp_path: Path) -> None:
    model = gateway_model()
    assignments = {cla.cluster_name: cla for cla in build_endpoints(model, ROUTER)}
    routes = {
        r.name: r for r in build_gateway_routes(model, ROUTER, virtual_services=VIRTUAL_SERVICES)
    }
    config = base_bootstrap(ROUTER)
    config["static_resources"]["clusters"] += [
        as_dict(inline_cluster(c, assignments)) for c in build_outbound_clusters(model)
    ]
    config["static_resources"]["listeners"] = [
        as_dict(inline_listener(listener, routes))
        for listener in build_gateway_listeners(model, ROUTER, VIRTUAL_SERVICES)
    ]
    config = with_static_secrets(config)
    config["static_resources"]["secrets"] += [as_dict(s) for s in gateway_secrets(model, ROUTER)]
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
