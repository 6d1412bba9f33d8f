"""Proxies authenticate with ServiceAccount tokens, reviewed by a real API server (TokenReview).

The control plane runs in process with ``KubernetesTokenAuthenticator``; tokens
come from the TokenRequest API, as a projected volume would hold them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import yaml
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
from serve_process import serve_process
from workload import sa_token, secrets_request
from xds_client import ADS, expect_closed, open_stream, secure_channel, uri_san

from ca.errors import CAError, CAErrorKind
from pyistiod.kube_authn import KubernetesTokenAuthenticator, identity_of
from pyistiod.kube_ca import load_or_create_ca_secret, read_root_pem
from pyistiod.local_cluster import KubeCluster
from pyistiod.local_mesh import free_port
from pyistiod.serve import ControlPlane, start_control_plane
from pyistiod.settings import Settings
from translators.mesh.model.mesh import MeshModel

pytestmark = pytest.mark.kube


@pytest.fixture
async def plane(api: ApiClient, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = Settings(
        xds_address="127.0.0.1:0",
        secure_xds_address="127.0.0.1:0",
        monitoring_address="",
        ca_dir=tmp_path / "ca",
        workload_cert_ttl=timedelta(hours=1),
    )
    authn = KubernetesTokenAuthenticator(api, "cluster.local")
    cp = await start_control_plane(settings, MeshModel(), authn)
    yield cp
    await cp.server.stop(0)


async def test_a_service_account_token_gets_that_identitys_certificate(
    api: ApiClient, namespace: str, plane: ControlPlane
) -> None:
    token = await sa_token(api, namespace, "web")
    async with secure_channel(plane.secure_xds_port, plane.root_pem, token) as ch:
        stream = open_stream(ch, ADS)
        await stream.send(secrets_request(namespace, "web"))
        response = await stream.expect_response(timeout=10)
        secrets = {
            s.name: s for s in (secret_pb2.Secret.FromString(r.value) for r in response.resources)
        }
        chain = secrets["default"].tls_certificate.certificate_chain.inline_bytes
        assert uri_san(chain) == f"spiffe://cluster.local/ns/{namespace}/sa/web"
        await stream.close()


async def test_another_accounts_token_is_denied_the_secrets(
    api: ApiClient, namespace: str, plane: ControlPlane
) -> None:
    await sa_token(api, namespace, "web")
    thief = await sa_token(api, namespace, "thief")
    async with secure_channel(plane.secure_xds_port, plane.root_pem, thief) as ch:
        request = secrets_request(namespace, "web")
        said = await expect_closed(ch, request, grpc.StatusCode.PERMISSION_DENIED, timeout=10)
        assert f"spiffe://cluster.local/ns/{namespace}/sa/thief" in said


@pytest.mark.parametrize("kind", ["wrong audience", "forged"])
async def test_a_token_the_api_server_does_not_accept_is_unauthenticated(
    api: ApiClient, namespace: str, plane: ControlPlane, kind: str
) -> None:
    if kind == "wrong audience":
        token = await sa_token(api, namespace, "web", audience="somebody-else")
    else:
        token = (await sa_token(api, namespace, "web"))[:-8] + "AAAAAAAA"
    async with secure_channel(plane.secure_xds_port, plane.root_pem, token) as ch:
        request = secrets_request(namespace, "web")
        await expect_closed(ch, request, grpc.StatusCode.UNAUTHENTICATED, timeout=10)


async def test_a_token_the_api_server_cannot_read_is_refused_and_users_map_to_identities(
    api: ApiClient,
) -> None:
    authn = KubernetesTokenAuthenticator(api, "cluster.local")
    with pytest.raises(CAError) as err:
        await authn.review("not-a-token")
    assert err.value.kind is CAErrorKind.UNAUTHENTICATED
    assert str(identity_of("system:serviceaccount:shop:web", "td")) == "spiffe://td/ns/shop/sa/web"
    with pytest.raises(CAError):
        identity_of("admin", "td")


async def test_bootstrap_carries_a_token_the_api_server_reviews_as_the_workload(
    api: ApiClient, namespace: str, cluster: KubeCluster
) -> None:
    core = client.CoreV1Api(api)
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": "web"}})
    node_id = f"sidecar~10.9.0.1~web-0.{namespace}~{namespace}.svc.cluster.local"
    await load_or_create_ca_secret(api, "istio-system", "cluster.local", datetime.now(UTC))
    argv = [
        *(sys.executable, "-m", "pyistiod.cli", "bootstrap", "--node-id", node_id),
        *("--kubeconfig", str(cluster.kubeconfig), "--service-account", "web"),
    ]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    bootstrap = yaml.safe_load(done.stdout)
    (xds,) = bootstrap["static_resources"]["clusters"]
    grpc_service = bootstrap["dynamic_resources"]["ads_config"]["grpc_services"][0]
    (header,) = grpc_service["initial_metadata"]
    assert xds["name"] == "xds-grpc" and header["key"] == "authorization"
    identity = await KubernetesTokenAuthenticator(api, "cluster.local").review(
        header["value"].removeprefix("Bearer ")
    )
    assert str(identity) == f"spiffe://cluster.local/ns/{namespace}/sa/web"
    ca = xds["transport_socket"]["typed_config"]
    trusted = ca["common_tls_context"]["validation_context"]["trusted_ca"]["inline_string"]
    assert trusted.encode() == await read_root_pem(api, "istio-system")


async def test_serve_in_kubernetes_mode_reviews_the_tokens_on_its_tls_port(
    api: ApiClient, namespace: str, cluster: KubeCluster, tmp_path: Path
) -> None:
    token = await sa_token(api, namespace, "web")
    secure = free_port()
    with serve_process(cluster, tmp_path, "--webhook-address", "", secure_port=secure):
        root = await read_root_pem(api, "istio-system")  # the CA Secret serve uses
        async with secure_channel(secure, root, token) as ch:
            stream = open_stream(ch, ADS)
            await stream.send(secrets_request(namespace, "web"))
            response = await stream.expect_response(timeout=15)
            names = {secret_pb2.Secret.FromString(r.value).name for r in response.resources}
            assert names == {"default", "ROOTCA"}
            await stream.close()


async def test_bootstrap_in_a_pod_carries_the_projected_token(
    api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    token = await sa_token(api, namespace, "web")  # what the projected volume would hold
    (tmp_path / "istio-token").write_text(token)
    await load_or_create_ca_secret(api, "istio-system", "cluster.local", datetime.now(UTC))
    (tmp_path / "root-cert.pem").write_bytes(await read_root_pem(api, "istio-system"))
    node_id = f"sidecar~10.9.0.1~web-0.{namespace}~{namespace}.svc.cluster.local"
    argv = [
        *(sys.executable, "-m", "pyistiod.cli", "bootstrap", "--node-id", node_id),
        *("--token-file", str(tmp_path / "istio-token")),
        *("--root-cert", str(tmp_path / "root-cert.pem")),
    ]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    grpc_service = yaml.safe_load(done.stdout)["dynamic_resources"]["ads_config"]["grpc_services"]
    (header,) = grpc_service[0]["initial_metadata"]
    identity = await KubernetesTokenAuthenticator(api, "cluster.local").review(
        header["value"].removeprefix("Bearer ")
    )
    assert str(identity) == f"spiffe://cluster.local/ns/{namespace}/sa/web"
