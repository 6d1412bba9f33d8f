"""The rendered Envoy bootstrap: shape, Istio metadata, and acceptance by real Envoy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy_validate import envoy_validate
from google.protobuf import json_format

from translators.envoy.bootstrap import render_bootstrap

NODE = "sidecar~127.0.1.1~backend-1.default~default.svc.cluster.local"


def test_bootstrap_node_and_metadata() -> None:
    config = render_bootstrap(
        NODE, "127.0.0.1", 15010, labels={"app": "backend"}, service_account="backend"
    )
    node = config["node"]
    assert node["id"] == NODE
    assert node["cluster"] == "backend.default"
    assert node["metadata"] == {
        "NAMESPACE": "default",
        "LABELS": {"app": "backend"},
        "SERVICE_ACCOUNT": "backend",
        "NAME": "backend-1",
        "INSTANCE_IPS": "127.0.1.1",
        "INTERCEPTION_MODE": "NONE",
        "CLUSTER_ID": "Kubernetes",
    }
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.1.1",
        "port_value": 15000,
    }


def test_bootstrap_connects_over_ads() -> None:
    config = render_bootstrap(NODE, "127.0.0.1", 15010)
    ads = config["dynamic_resources"]["ads_config"]
    assert ads["api_type"] == "GRPC" and ads["transport_api_version"] == "V3"
    assert ads["set_node_on_first_message_only"] is True
    assert ads["grpc_services"] == [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]
    for key in ("cds_config", "lds_config"):
        assert config["dynamic_resources"][key] == {"ads": {}, "resource_api_version": "V3"}
    (xds,) = config["static_resources"]["clusters"]
    assert (xds["name"], xds["type"]) == ("xds-grpc", "STATIC")
    # A plain dict of YAML types that parses as a v3 Bootstrap.
    loaded = yaml.safe_load(yaml.safe_dump(config))
    assert loaded == config
    json_format.ParseDict(config, bootstrap_pb2.Bootstrap())


def test_node_cluster_falls_back_to_pod_name_and_host_name_uses_dns() -> None:
    config = render_bootstrap(NODE, "istiod.local", 15010, namespace="other", pod_name="p")
    assert config["node"]["cluster"] == "p.other"
    assert config["static_resources"]["clusters"][0]["type"] == "STRICT_DNS"


def test_bootstrap_rejects_a_bad_node_id() -> None:
    with pytest.raises(ValueError, match=r"POD\.NAMESPACE"):
        render_bootstrap("sidecar~127.0.1.1~backend-1~d", "127.0.0.1", 15010)


@pytest.mark.parametrize("xds_host", ["127.0.0.1", "localhost"])
def test_envoy_accepts_the_bootstrap(tmp_path: Path, xds_host: str) -> None:
    config = render_bootstrap(NODE, xds_host, 15010, admin_port=15123, labels={"app": "x"})
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
