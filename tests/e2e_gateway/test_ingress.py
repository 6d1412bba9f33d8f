"""An ingress gateway (a real Envoy as ``router~``) in front of a sidecar'd service.

HTTP on a Gateway host is routed by the bound VirtualService; HTTPS terminates
at the gateway with the certificate of a Kubernetes TLS Secret served over SDS
(``credentialName``); an unknown host gets 404.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_example import GatewayExample, write_gateway_example
from loopback_mesh import E2E_WORKERS

from pyistiod.demo import pods_of
from pyistiod.local_mesh import LocalMesh, Pod, Ports, free_port, http_get, wait_for
from translators.sources.files import load_dir

pytestmark = pytest.mark.e2e

GATEWAY_IP = "127.0.0.50"
FRONTEND_IP = "127.0.0.61"  # not the demo's 127.0.0.11, so the suites can share a session


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayExample]:
    work = tmp_path_factory.mktemp("gateway")
    example = write_gateway_example(work / "config")
    for f in example.directory.glob("*.yaml"):
        f.write_text(f.read_text().replace("127.0.0.11", FRONTEND_IP))
    ports = Ports(free_port(), free_port(), free_port())
    local = LocalMesh(work, workers=E2E_WORKERS)
    try:
        local.start_pyistiod(example.directory, ports, debounce=0.05)
        wait_for(lambda: (work / "ca" / "token-key").exists(), timeout=10)
        for pod in pods_of(load_dir(example.directory).model):
            local.start_app(pod)
            local.start_sidecar(pod, ports)
        gateway = Pod(
            "ingressgateway-0",
            "istio-system",
            GATEWAY_IP,
            0,
            None,
            {"istio": "ingressgateway"},
            "istio-ingressgateway",
            "router",
        )
        local.start_sidecar(gateway, ports)
        wait_for(lambda: shop("/")[0] == 200, timeout=30)
        yield example
    finally:
        local.stop()
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-2000:]}")


def shop(path: str, host: str = "shop.example.com") -> tuple[int, str]:
    return http_get(f"http://{GATEWAY_IP}:8080{path}", host=host)


def test_gateway_host_is_routed_to_the_service(ingress: GatewayExample) -> None:
    status, body = shop("/catalog")
    assert status == 200
    reply = json.loads(body)
    assert reply["pod"] == "frontend-0" and reply["path"] == "/catalog"
    # the gateway talks mTLS to the sidecar: the app sees the gateway's identity
    assert "sa/istio-ingressgateway" in reply["xfcc"]


def test_unknown_host_gets_404(ingress: GatewayExample) -> None:
    assert shop("/", host="nosuch.example.com")[0] == 404


def test_https_simple_terminates_with_the_secrets_certificate(ingress: GatewayExample) -> None:
    context = ssl.create_default_context(cadata=ingress.cert_pem.decode())
    raw = socket.create_connection((GATEWAY_IP, 8443), timeout=5)
    with context.wrap_socket(raw, server_hostname="shop.example.com") as tls:
        tls.sendall(b"GET /secure HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200", head
    assert json.loads(body)["pod"] == "frontend-0"


def test_example_files_exist() -> None:
    assert (Path(__file__).parents[2] / "pyistiod" / "examples" / "gateway").is_dir()


def test_an_authorization_policy_selecting_the_gateway_is_enforced_there(
    ingress: GatewayExample,
) -> None:
    """As in Istio, an AuthorizationPolicy whose selector matches the ingress gateway pod
    becomes RBAC on the gateway's connection managers: a DENY on one path answers 403 at the
    gateway while the rest still passes."""
    policy = ingress.directory / "gateway-deny.yaml"
    policy.write_text(
        """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
"""
    )
    try:
        wait_for(lambda: shop("/admin/users")[0] == 403, timeout=10)
        assert shop("/catalog")[0] == 200
    finally:
        policy.unlink()
    wait_for(lambda: shop("/admin/users")[0] == 200, timeout=10)
