"""Two replicas serve one mesh: they race for the CA Secret at start and end up with one root.

Both ``pyistiod serve --kubeconfig`` processes start at once against one API
server, with a fresh namespace as istiod's namespace; Kubernetes' create
conflict decides which root is written, and the loser loads it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
from serve_process import serve_process
from workload import sa_token, secrets_request
from xds_client import ADS, open_stream, secure_channel

from ca.errors import CAError, CAErrorKind
from pyistiod.kube_ca import load_or_create_ca_secret, read_root_pem
from pyistiod.local_cluster import KubeCluster
from pyistiod.local_mesh import free_port

pytestmark = pytest.mark.kube


async def _root_served_by(port: int, root: bytes, token: str, namespace: str) -> bytes:
    """The ROOTCA a replica serves over SDS, on a channel that trusts only ``root``."""
    async with secure_channel(port, root, token) as ch:
        stream = open_stream(ch, ADS)
        await stream.send(secrets_request(namespace, "web", ("ROOTCA",)))
        response = await stream.expect_response(timeout=15)
        await stream.close()
    (secret,) = (secret_pb2.Secret.FromString(r.value) for r in response.resources)
    return bytes(secret.validation_context.trusted_ca.inline_bytes)


async def test_two_replicas_racing_at_start_share_one_root_and_both_serve(
    cluster: KubeCluster, api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    system = f"sys-{secrets.token_hex(3)}"
    await core.create_namespace({"metadata": {"name": system}})
    token = await sa_token(api, namespace, "web")
    ports = [free_port(), free_port()]
    for i in (0, 1):
        (tmp_path / f"replica-{i}").mkdir()
    with contextlib.ExitStack() as both:
        started = [
            asyncio.to_thread(
                both.enter_context,
                serve_process(
                    cluster,
                    tmp_path / f"replica-{i}",
                    *("--webhook-address", "", "--system-namespace", system),
                    secure_port=ports[i],
                ),
            )
            for i in (0, 1)
        ]
        await asyncio.gather(*started)  # both start at once and race for the Secret
        listed = await core.list_namespaced_secret(system)
        assert [s.metadata.name for s in listed.items] == ["istio-ca-secret"]
        root = await read_root_pem(api, system)
        served = [await _root_served_by(p, root, token, namespace) for p in ports]
        assert served == [root, root]
    logs = [(tmp_path / f"replica-{i}" / "pyistiod.log").read_text() for i in (0, 1)]
    assert sum(log.count('"ca.root_created"') for log in logs) == 1  # one creator, one loader


async def test_a_ca_secret_that_holds_no_valid_ca_is_refused_not_replaced(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    system = f"sys-{secrets.token_hex(3)}"
    await core.create_namespace({"metadata": {"name": system}})
    garbage = base64.b64encode(b"not a key").decode()
    body: Any = {
        "metadata": {"name": "istio-ca-secret"},
        "data": {"ca-key.pem": garbage, "ca-cert.pem": garbage},
    }
    await core.create_namespaced_secret(system, body)
    with pytest.raises(CAError) as refused:
        await load_or_create_ca_secret(api, system, "cluster.local", datetime.now(UTC))
    assert refused.value.kind is CAErrorKind.FILE_CORRUPT
    assert f"Secret {system}/istio-ca-secret key ca-key.pem" in str(refused.value.path)
    kept = await core.read_namespaced_secret("istio-ca-secret", system)
    assert kept.data["ca-key.pem"] == garbage  # never regenerated


async def test_a_missing_system_namespace_says_to_create_it(api: ApiClient) -> None:
    with pytest.raises(CAError) as refused:
        await load_or_create_ca_secret(api, "no-such-ns", "cluster.local", datetime.now(UTC))
    assert "kubectl create namespace no-such-ns" in str(refused.value)
