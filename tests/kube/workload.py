"""A workload in a real cluster: its ServiceAccount token, and the SDS request its proxy sends."""

from __future__ import annotations

from typing import Any

from envoy.service.discovery.v3 import discovery_pb2
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
from xds_client import node

from xds_server import types


async def sa_token(api: ApiClient, namespace: str, account: str, audience: str = "istio-ca") -> str:
    """A token for a new ServiceAccount ``account``, as its projected volume would hold it."""
    core = client.CoreV1Api(api)
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    body: Any = {"spec": {"audiences": [audience], "expirationSeconds": 3600}}
    answer = await core.create_namespaced_service_account_token(account, namespace, body)
    return str(answer.status.token)


def secrets_request(
    namespace: str, account: str, names: tuple[str, ...] = ("default", "ROOTCA")
) -> discovery_pb2.DiscoveryRequest:
    """The SDS request of a sidecar in ``namespace`` running as ``account``."""
    proxy = node(
        f"sidecar~10.9.0.1~web-0.{namespace}~{namespace}.svc.cluster.local",
        NAMESPACE=namespace,
        SERVICE_ACCOUNT=account,
    )
    return discovery_pb2.DiscoveryRequest(
        node=proxy, type_url=types.SECRET, resource_names=list(names)
    )
