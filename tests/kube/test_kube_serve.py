"""``pyistiod serve --kubeconfig`` against a real API server: the cluster's objects reach a proxy.

pyistiod runs as its own process; a raw ADS client stands in for the sidecar
(the API server refuses loopback addresses in EndpointSlices, so no traffic
flows here: end-to-end traffic through Envoy is proved in the file mode).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from kube_objects import endpoint_slice, service
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient
from serve_process import serve_process
from xds_client import ADS, Stream, node, open_stream

from pyistiod.local_cluster import KubeCluster
from xds_server import types

pytestmark = pytest.mark.kube


FILE_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: from-file, namespace: files}
spec: {ports: [{name: http, port: 8000}]}
"""


@pytest.fixture
def serving(cluster: KubeCluster, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    extra: tuple[str, ...] = ("--webhook-address", "")  # the webhook has its own tests
    if getattr(request, "param", "") == "with-config-dir":
        (tmp_path / "mesh").mkdir()
        (tmp_path / "mesh" / "svc.yaml").write_text(FILE_SERVICE)
        extra += ("--config-dir", str(tmp_path / "mesh"))
    with serve_process(cluster, tmp_path, *extra) as port:
        yield port


@dataclass
class Proxy:
    """A raw ADS stream standing in for a sidecar in the test's namespace."""

    stream: Stream
    node: Any


@pytest.fixture
async def ads(serving: int, namespace: str) -> AsyncIterator[Proxy]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{serving}")
    stream = open_stream(channel, ADS)
    pod = f"sidecar~10.9.0.1~web-0.{namespace}~{namespace}.svc.cluster.local"
    try:
        yield Proxy(stream, node(pod))
    finally:
        await stream.close()
        await channel.close()


async def _until(
    proxy: Proxy,
    request: discovery_pb2.DiscoveryRequest,
    done: Callable[[discovery_pb2.DiscoveryResponse], bool],
    timeout: float = 15.0,
) -> discovery_pb2.DiscoveryResponse:
    """Send ``request``, then ACK every response until one satisfies ``done``."""
    await proxy.stream.send(request)
    async with asyncio.timeout(timeout):
        while True:
            response = await proxy.stream.expect_response(timeout)
            ack = discovery_pb2.DiscoveryRequest()
            ack.CopyFrom(request)
            ack.version_info, ack.response_nonce = response.version_info, response.nonce
            await proxy.stream.send(ack)
            if done(response):
                return response


def _clusters(response: discovery_pb2.DiscoveryResponse) -> set[str]:
    names = set()
    for any_ in response.resources:
        c = cluster_pb2.Cluster()
        any_.Unpack(c)
        names.add(c.name)
    return names


def _addresses(response: discovery_pb2.DiscoveryResponse) -> set[str]:
    found = set()
    for any_ in response.resources:
        cla = endpoint_pb2.ClusterLoadAssignment()
        any_.Unpack(cla)
        for group in cla.endpoints:
            found.update(e.endpoint.address.socket_address.address for e in group.lb_endpoints)
    return found


async def test_a_service_and_its_endpoints_created_in_the_cluster_reach_the_proxy(
    api: ApiClient, namespace: str, ads: Proxy
) -> None:
    cds = discovery_pb2.DiscoveryRequest(node=ads.node, type_url=types.CLUSTER)
    await _until(ads, cds, lambda r: True)  # the mesh as it is
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    await core.create_namespaced_service(namespace, service("web", 80))
    await discovery.create_namespaced_endpoint_slice(
        namespace, endpoint_slice("web-1", "web", "10.1.0.5")
    )
    cluster = f"outbound|80||web.{namespace}.svc.cluster.local"
    await _until(ads, cds, lambda r: cluster in _clusters(r))
    eds = discovery_pb2.DiscoveryRequest(
        node=ads.node, type_url=types.ENDPOINT, resource_names=[cluster]
    )
    await _until(ads, eds, lambda r: "10.1.0.5" in _addresses(r))
    await discovery.patch_namespaced_endpoint_slice(
        "web-1", namespace, {"endpoints": [{"addresses": ["10.1.0.6"]}]}
    )
    await _until(ads, eds, lambda r: _addresses(r) == {"10.1.0.6"})
    await core.delete_namespaced_service("web", namespace)
    await _until(ads, cds, lambda r: cluster not in _clusters(r))


@pytest.mark.parametrize("serving", ["with-config-dir"], indirect=True)
async def test_a_config_dir_and_the_cluster_feed_one_mesh(
    api: ApiClient, namespace: str, ads: Proxy
) -> None:
    await client.CoreV1Api(api).create_namespaced_service(namespace, service("web", 80))
    cds = discovery_pb2.DiscoveryRequest(node=ads.node, type_url=types.CLUSTER)
    both = {
        "outbound|8000||from-file.files.svc.cluster.local",
        f"outbound|80||web.{namespace}.svc.cluster.local",
    }
    await _until(ads, cds, lambda r: both <= _clusters(r))


def test_a_kubeconfig_that_does_not_exist_is_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pyistiod.cli", "serve", "--kubeconfig", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyistiod: refusing to start:"), done.stderr
    assert "nope" in lines[0] and "Traceback" not in done.stderr
