"""A real Envoy takes its config from ``serve --kubeconfig`` and carries traffic as the API says.

The API server refuses loopback addresses in EndpointSlices, so the backend is
a WorkloadEntry (a VM in Istio's terms: no sidecar, plaintext) selected by a
Kubernetes Service; the client is a real Envoy sidecar whose bootstrap comes
from ``pyistiod bootstrap --kubeconfig`` (TLS xDS with a TokenRequest token,
reviewed by the API server). A VirtualService from the API decides the route.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kube_objects import service
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
from serve_process import serve_process

from pyistiod.local_cluster import KubeCluster
from pyistiod.local_mesh import (
    ENVOY_FLAGS,
    LocalMesh,
    Pod,
    envoy_binary,
    free_port,
    get_ok,
    http_get,
    wait_for,
)
from translators.mesh.model.loopback import app_address, outbound_address

pytestmark = pytest.mark.kube

FRONTEND_IP = "127.0.77.1"
BACKEND = Pod("backend-vm", "", "127.0.77.2", 9080)
"""The echo app of the WorkloadEntry, listening at ``app_address(127.0.77.2)``."""


def _workload_entry(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {"name": "backend-vm"},
        "spec": {
            "address": app_address(BACKEND.ip),
            "labels": {"app": "backend"},
            "serviceAccount": "backend",
        },
    }


def _teapot_route(namespace: str) -> dict[str, Any]:
    host = f"backend.{namespace}.svc.cluster.local"
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "backend"},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "match": [{"headers": {"x-teapot": {"exact": "1"}}}],
                    "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}},
                    "route": [{"destination": {"host": host}}],
                },
                {"route": [{"destination": {"host": host}}]},
            ],
        },
    }


async def test_a_real_envoy_routes_by_the_api_servers_objects(
    api: ApiClient, namespace: str, cluster: KubeCluster, tmp_path: Path
) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": "frontend"}})
    await core.create_namespaced_service(namespace, service("backend", 9080))
    for plural, body in (
        ("workloadentries", _workload_entry(namespace)),
        ("virtualservices", _teapot_route(namespace)),
    ):
        await custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", namespace, plural, body
        )
    mesh = LocalMesh(tmp_path, workers=2)
    secure, admin = free_port(), free_port()
    try:
        mesh.start_app(BACKEND)
        with serve_process(cluster, tmp_path, "--webhook-address", "", secure_port=secure):
            node_id = f"sidecar~{FRONTEND_IP}~frontend-0.{namespace}~{namespace}.svc.cluster.local"
            argv = [
                *(sys.executable, "-m", "pyistiod.cli", "bootstrap", "--node-id", node_id),
                *("--kubeconfig", str(cluster.kubeconfig), "--service-account", "frontend"),
                *("--xds-address", f"127.0.0.1:{secure}", "--admin-port", str(admin)),
            ]
            done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            bootstrap = tmp_path / "envoy-frontend.yaml"
            bootstrap.write_text(done.stdout)
            mesh.spawn("envoy-frontend", [envoy_binary(), "-c", str(bootstrap), *ENVOY_FLAGS])

            url = f"http://{outbound_address(FRONTEND_IP)}:9080/hello"
            host = f"backend.{namespace}.svc.cluster.local"
            body = await asyncio.to_thread(wait_for, lambda: get_ok(url, host), 30)
            assert json.loads(body)["pod"] == "backend-vm"  # through Envoy: only it binds url
            teapot = {"x-teapot": "1"}
            status, _ = await asyncio.to_thread(http_get, url, host, headers=teapot)
            assert status == 418  # the VirtualService's fault, from the API server
    finally:
        mesh.stop()
