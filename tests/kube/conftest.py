"""A real kube-apiserver for the Kubernetes tests, with Istio's CRDs installed.

Skipped, with the reason, where ``KUBE_APISERVER`` and ``ETCD`` are not set.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client import ApiClient

from pyistiod.local_cluster import KubeCluster, binaries, install_istio, start_cluster


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    if binaries() is None:
        pytest.skip("needs a real kube-apiserver and etcd: set KUBE_APISERVER and ETCD")
    started = start_cluster(tmp_path_factory.mktemp("kube"))
    try:
        asyncio.run(_install_crds(started))
        yield started
    finally:
        started.stop()


async def _install_crds(cluster: KubeCluster) -> None:
    async with await config.new_client_from_config(str(cluster.kubeconfig)) as api:
        await install_istio(api)


@pytest.fixture
async def api(cluster: KubeCluster) -> AsyncIterator[ApiClient]:
    async with await config.new_client_from_config(str(cluster.kubeconfig)) as api_client:
        yield api_client


@pytest.fixture
async def namespace(api: ApiClient) -> str:
    """A fresh namespace per test (deleted ones stay Terminating without a controller)."""
    name = f"t-{secrets.token_hex(4)}"
    await client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name
