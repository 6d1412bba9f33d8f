"""deploy/ against a real API server: the manifests are accepted, and their RBAC is enough.

The API server here runs no kubelet, so the Deployment's pods never start;
instead two ``pyistiod serve`` processes run with the very ServiceAccount and
RBAC of ``deploy/pyistiod.yaml`` (a kubeconfig holding that account's token), as
two replicas would, in a fresh namespace standing for ``istio-system``.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from eventually import eventually
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.utils import create_from_dict
from serve_process import serve_process

from pyistiod.kube_ca import read_root_pem
from pyistiod.local_cluster import KubeCluster
from pyistiod.local_mesh import free_port
from pyistiod.webhook import CONFIGURATION, LEASE

pytestmark = pytest.mark.kube

DEPLOY = Path(__file__).parents[2] / "deploy" / "pyistiod.yaml"


def manifests(namespace: str) -> list[dict[str, Any]]:
    """deploy/pyistiod.yaml with its namespace renamed (and cluster objects named after it)."""
    text = DEPLOY.read_text().replace("istio-system", namespace)
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] = f"pyistiod-{namespace}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"pyistiod-{namespace}"
    return docs


async def test_every_manifest_is_accepted_by_the_api_server(api: ApiClient) -> None:
    namespace = f"sys-{secrets.token_hex(3)}"
    docs = manifests(namespace)
    assert [d["kind"] for d in docs] == [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
        "RoleBinding", "Service", "Deployment", "ValidatingWebhookConfiguration",
    ]  # fmt: skip
    await create_from_dict(api, docs[0])  # the namespace, for real: the rest need it
    for doc in docs[1:]:
        await create_from_dict(api, doc, dry_run="All")  # validated, stored nowhere


async def _sa_kubeconfig(api: ApiClient, cluster: KubeCluster, namespace: str, path: Path) -> Path:
    body: Any = {"spec": {"expirationSeconds": 3600}}
    answer = await client.CoreV1Api(api).create_namespaced_service_account_token(
        "istiod", namespace, body
    )
    return cluster.write_kubeconfig(path, "istiod", answer.status.token)


async def test_two_replicas_with_the_deploy_rbac_serve_and_one_patches_the_webhook(
    cluster: KubeCluster, api: ApiClient, tmp_path: Path
) -> None:
    namespace = f"sys-{secrets.token_hex(3)}"
    docs = manifests(namespace)
    for doc in docs:
        if doc["kind"] not in ("Deployment",):  # no kubelet: its pods would never run
            await create_from_dict(api, doc)
    admission = client.AdmissionregistrationV1Api(api)
    kubeconfig = await _sa_kubeconfig(api, cluster, namespace, tmp_path / "istiod.kubeconfig")
    try:
        with contextlib.ExitStack() as both:
            for i in (0, 1):
                workdir = tmp_path / f"replica-{i}"
                workdir.mkdir()
                args = ("--system-namespace", namespace, "--webhook-address")
                both.enter_context(
                    serve_process(
                        cluster,
                        workdir,
                        *args,
                        f"127.0.0.1:{free_port()}",
                        kubeconfig=kubeconfig,
                    )
                )
            root = await read_root_pem(api, namespace)

            async def patched() -> bool:
                config = await admission.read_validating_webhook_configuration(CONFIGURATION)
                (hook,) = config.webhooks
                bundle = base64.b64decode(hook.client_config.ca_bundle or "")
                return bundle == root and hook.failure_policy == "Fail"

            await eventually(patched, timeout=30, every=0.2)
            lease = await client.CoordinationV1Api(api).read_namespaced_lease(LEASE, namespace)
            assert lease.spec.holder_identity
        logs = [(tmp_path / f"replica-{i}" / "pyistiod.log").read_text() for i in (0, 1)]
        assert sum(log.count('"webhook.ca_bundle_patched"') for log in logs) == 1
        still = await admission.read_validating_webhook_configuration(CONFIGURATION)
        assert still.webhooks[0].client_config.service.name == "istiod"  # left installed
    finally:
        # Fail-closed and pointing at a Service nobody serves here: remove it for the others.
        await admission.delete_validating_webhook_configuration(CONFIGURATION)
