"""The Envoy bootstrap a sidecar starts from: who it is and where istiod is.

Rendered as a plain dict (dump it as YAML or JSON), the part of Istio's
``envoy_bootstrap.json`` that matters without iptables: the node (ID,
cluster and Istio's metadata keys), the admin interface, one static cluster
``xds-grpc`` for the control plane, and ADS for everything else (xDS
protocol, "Aggregated Discovery Service"), secrets included. With
``XdsTls`` the control plane is dialled over TLS (port 15012), verified by
the mesh root and istiod's DNS name, and every stream carries the
workload's token as ``authorization: Bearer``: the credential that lets
pyistiod hand this proxy its own certificate and key over SDS. The admin interface binds the
pod IP, not 127.0.0.1 as in Istio, because every pod here shares one loopback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from translators.envoy.clusters import HTTP_PROTOCOL_OPTIONS
from translators.mesh.model.addresses import is_ip
from translators.mesh.model.proxy import DEFAULT_SERVICE_ACCOUNT, parse_node_id

XDS_CLUSTER: Final = "xds-grpc"
"""Istio's name for the control-plane cluster."""

DEFAULT_ADMIN_PORT: Final = 15000
DEFAULT_CLUSTER_ID: Final = "Kubernetes"

_ADS_SOURCE: Final = {"ads": {}, "resource_api_version": "V3"}


@dataclass(frozen=True, slots=True)
class XdsTls:
    """How a sidecar reaches the TLS port: the roots to trust, the name to verify, its token."""

    root_pem: str
    token: str
    server_name: str = "istiod.istio-system.svc"


_SERVICE_NAME_LABELS: Final = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
"""Labels naming a workload's service, in Istio's order of preference (canonical service)."""


def render_bootstrap(
    node_id: str,
    xds_host: str,
    xds_port: int,
    admin_port: int = DEFAULT_ADMIN_PORT,
    labels: Mapping[str, str] | None = None,
    namespace: str | None = None,
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
    pod_name: str | None = None,
    cluster_id: str = DEFAULT_CLUSTER_ID,
    tls: XdsTls | None = None,
) -> dict[str, Any]:
    """A complete Envoy v3 bootstrap connecting over ADS to ``xds_host:xds_port``.

    ``namespace`` and ``pod_name`` default to the node ID's; the admin
    interface binds the node ID's IP at ``admin_port``. Raises ``ValueError``
    for a malformed node ID.
    """
    node = parse_node_id(node_id)
    namespace = namespace or node.namespace
    pod_name = pod_name or node.pod_name
    labels = dict(labels or {})
    metadata = {
        "NAMESPACE": namespace,
        "LABELS": labels,
        "SERVICE_ACCOUNT": service_account,
        "NAME": pod_name,
        "INSTANCE_IPS": node.ip,
        "INTERCEPTION_MODE": "NONE",
        "CLUSTER_ID": cluster_id,
    }
    return {
        "node": {
            "id": node_id,
            "cluster": f"{_service_name(labels, pod_name)}.{namespace}",
            "metadata": metadata,
        },
        "admin": {"address": _socket_address(node.ip, admin_port)},
        "static_resources": {"clusters": [_xds_cluster(xds_host, xds_port, tls)]},
        "dynamic_resources": _dynamic_resources(tls),
    }


def _dynamic_resources(tls: XdsTls | None) -> dict[str, Any]:
    """ADS over gRPC to the ``xds-grpc`` cluster; CDS and LDS (hence EDS, RDS) through it."""
    grpc_service: dict[str, Any] = {"envoy_grpc": {"cluster_name": XDS_CLUSTER}}
    if tls is not None:
        grpc_service["initial_metadata"] = [
            {"key": "authorization", "value": f"Bearer {tls.token}"}
        ]
    return {
        "ads_config": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "set_node_on_first_message_only": True,
            "grpc_services": [grpc_service],
        },
        "cds_config": dict(_ADS_SOURCE),
        "lds_config": dict(_ADS_SOURCE),
    }


def _service_name(labels: Mapping[str, str], pod_name: str) -> str:
    """The workload's service name for ``node.cluster`` (``<app>.<ns>`` in Istio)."""
    return next((labels[k] for k in _SERVICE_NAME_LABELS if labels.get(k)), pod_name)


def _xds_cluster(host: str, port: int, tls: XdsTls | None) -> dict[str, Any]:
    """The control-plane cluster: gRPC needs HTTP/2; keepalives notice a dead istiod."""
    cluster = _plain_xds_cluster(host, port)
    if tls is not None:
        cluster["transport_socket"] = _xds_tls_socket(tls)
    return cluster


def _xds_tls_socket(tls: XdsTls) -> dict[str, Any]:
    """TLS to the control plane, verifying its certificate as a proxy verifies istiod's."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/"
            "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": tls.server_name,
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "validation_context": {
                    "trusted_ca": {"inline_string": tls.root_pem},
                    "match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": tls.server_name}}
                    ],
                },
            },
        },
    }


def _plain_xds_cluster(host: str, port: int) -> dict[str, Any]:
    return {
        "name": XDS_CLUSTER,
        # STATIC needs an IP; a host name is resolved by Envoy instead.
        "type": "STATIC" if is_ip(host) else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": XDS_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}
            ],
        },
        "typed_extension_protocol_options": {
            HTTP_PROTOCOL_OPTIONS: {
                "@type": "type.googleapis.com/" + HTTP_PROTOCOL_OPTIONS,
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "10s"}
                    }
                },
            }
        },
    }


def _socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}
