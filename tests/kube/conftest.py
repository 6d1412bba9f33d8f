"""A real kube-apiserver for the Kubernetes tests, with Istio's CRDs installed.

Skipped, with the reason, where ``KUBE_APISERVER`` and ``ETCD`` are not set.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from kube_objects import wait_established
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client import ApiClient

from pyistiod.local_cluster import KubeCluster, binaries, start_cluster

CRDS = Path(__file__).parents[2] / "deploy" / "crds.yaml"


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
    """Istio's CRDs and istiod's namespace, as an installed cluster has them."""
    async with await config.new_client_from_config(str(cluster.kubeconfig)) as api:
        await client.CoreV1Api(api).create_namespace({"metadata": {"name": "istio-system"}})
        ext = client.ApiextensionsV1Api(api)
        for crd in yaml.safe_load_all(CRDS.read_text()):
            if crd:
                await ext.create_custom_resource_definition(crd)
        for crd in yaml.safe_load_all(CRDS.read_text()):
            if crd:
                await wait_established(ext, crd["metadata"]["name"])


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
