"""The admission webhook through a real API server: a bad VirtualService is refused at create.

``pyistiod serve --kubeconfig`` registers its webhook with the API server by URL
(with its CA as the caBundle); the API server then calls it for every create
and update of an Istio kind, as kubectl apply would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eventually import eventually
from kube_objects import virtual_service
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException
from serve_process import serve_process

from pyistiod.local_cluster import KubeCluster
from pyistiod.local_mesh import free_port
from pyistiod.webhook import CONFIGURATION

pytestmark = pytest.mark.kube


async def _registered(api: ApiClient) -> bool:
    try:
        await client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration(
            CONFIGURATION
        )
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


async def _create(api: ApiClient, namespace: str, name: str, regex: str) -> None:
    await client.CustomObjectsApi(api).create_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        namespace,
        "virtualservices",
        virtual_service(name, "reviews", regex=regex),
    )


async def test_the_webhook_refuses_an_invalid_virtual_service_and_admits_a_valid_one(
    cluster: KubeCluster, api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    webhook = f"127.0.0.1:{free_port()}"
    with serve_process(cluster, tmp_path, "--webhook-address", webhook):
        await eventually(lambda: _registered(api), timeout=30, every=0.1)
        await _create(api, namespace, "good", "/v1/.*")
        with pytest.raises(ApiException) as refused:
            await _create(api, namespace, "bad", "/v1(?=x)")
        assert refused.value.status == 400
        message = json.loads(refused.value.body)["message"]
        assert 'admission webhook "validation.istio.io" denied the request' in message
        assert f"VirtualService {namespace}/bad: field spec.http[0].match[0].uri.regex" in message
    # serve stopped (SIGTERM): it removed its registration, so writes no longer need it
    assert not await _registered(api)
    await _create(api, namespace, "after", "/v1/.*")
