"""Real Envoy accepts the generated clusters, listeners, routes and endpoints.

Two bootstraps per proxy, both validated by ``envoy --mode validate``:

- *as served*: the generated listeners and clusters as ``static_resources``
  beside the ADS bootstrap, so the EDS and RDS config sources are the real
  ones;
- *inlined*: EDS clusters turned STATIC with their ClusterLoadAssignment
  inline, and RDS replaced by the route configuration inline, so Envoy also
  validates every route configuration and endpoint. SDS secrets become
  static ones (``with_static_secrets``): validate mode cannot fetch them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy_validate import envoy_validate, with_static_secrets
from google.protobuf import json_format
from sample_mesh import BACKEND_PROXY, DATA_PROXY, FRONTEND_PROXY, ROUTER, sample_model

from translators.envoy.bootstrap import render_bootstrap
from translators.envoy.resources import build_resources
from translators.mesh.model.proxy import Proxy
from xds_server import types

PROXIES = [BACKEND_PROXY, FRONTEND_PROXY, DATA_PROXY, ROUTER]


def as_dict(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def base_bootstrap(proxy: Proxy) -> dict[str, Any]:
    return render_bootstrap(proxy.id, "127.0.0.1", 15010)


def inline_cluster(cluster: Any, assignments: dict[str, Any]) -> Any:
    if cluster.type != cluster_pb2.Cluster.EDS:
        return cluster
    static = cluster_pb2.Cluster()
    static.CopyFrom(cluster)
    static.ClearField("eds_cluster_config")
    static.type = cluster_pb2.Cluster.STATIC
    static.load_assignment.CopyFrom(assignments[cluster.name])
    return static


def inline_listener(listener: Any, routes: dict[str, Any]) -> Any:
    inlined = type(listener)()
    inlined.CopyFrom(listener)
    for chain in inlined.filter_chains:
        for network_filter in chain.filters:
            hcm = hcm_pb2.HttpConnectionManager()
            if network_filter.typed_config.Unpack(hcm) and hcm.HasField("rds"):
                hcm.route_config.CopyFrom(routes[hcm.rds.route_config_name])
                network_filter.typed_config.Pack(hcm)
    return inlined


def inlined_config(proxy: Proxy, resources: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """A static bootstrap for ``proxy`` holding ``resources`` inline (EDS clusters STATIC with
    their assignments, RDS replaced by its route configuration, SDS secrets static), which
    ``envoy --mode validate`` can check whole."""
    assignments = {cla.cluster_name: cla for cla in resources[types.ENDPOINT]}
    routes = {route.name: route for route in resources[types.ROUTE]}
    config = base_bootstrap(proxy)
    config["static_resources"]["clusters"] += [
        as_dict(inline_cluster(c, assignments)) for c in resources[types.CLUSTER]
    ]
    config["static_resources"]["listeners"] = [
        as_dict(inline_listener(v, routes)) for v in resources[types.LISTENER]
    ]
    return with_static_secrets(config)


@pytest.mark.parametrize("proxy", PROXIES, ids=lambda p: p.pod_name)
def test_envoy_accepts_config_as_served(proxy: Proxy, tmp_path: Path) -> None:
    resources = build_resources(sample_model(), proxy)
    config = base_bootstrap(proxy)
    config["static_resources"]["clusters"] += [as_dict(c) for c in resources[types.CLUSTER]]
    config["static_resources"]["listeners"] = [as_dict(v) for v in resources[types.LISTENER]]
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize("proxy", PROXIES, ids=lambda p: p.pod_name)
def test_envoy_accepts_config_inlined(proxy: Proxy, tmp_path: Path) -> None:
    config = inlined_config(proxy, build_resources(sample_model(), proxy))
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
