"""TLS to servers outside the mesh, with real Envoy: origination (the sidecar sends SNI and
verifies the server as Istio does, its CA and its name, and refuses a server it cannot trust),
and two TLS ServiceEntries on one port, told apart by SNI.

Runs against the package's mesh; every test removes what it adds.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from loopback_mesh import Mesh
from tls_upstream import HttpsEcho, OwnCa

from pyistiod.local_mesh import http_get, outbound_address, wait_for

pytestmark = pytest.mark.e2e

HOST = "secure.example.test"
SERVER = ("127.0.9.5", 8443)

SERVICE_ENTRY = f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: secure, namespace: default}}
spec:
  hosts: [{HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 8000, name: http, protocol: HTTP, targetPort: {SERVER[1]}}}]
  endpoints: [{{address: {SERVER[0]}}}]
"""


def destination_rule(tls: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: secure, namespace: default}}
spec:
  host: {HOST}
  trafficPolicy:
    portLevelSettings:
    - port: {{number: 8000}}
      tls: {tls}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpsEcho, OwnCa, OwnCa]]:
    directory = tmp_path_factory.mktemp("egress-tls")
    ca, stranger = OwnCa(directory, "server-ca"), OwnCa(directory, "stranger-ca")
    https = HttpsEcho(SERVER, *ca.server_files(HOST))
    try:
        yield https, ca, stranger
    finally:
        https.stop()


@pytest.fixture
def entry(mesh: Mesh) -> Iterator[None]:
    (mesh.config / "secure-se.yaml").write_text(SERVICE_ENTRY)
    try:
        yield
    finally:
        for name in ("secure-se.yaml", "secure-dr.yaml"):
            (mesh.config / name).unlink(missing_ok=True)


def through_frontend(mesh: Mesh) -> tuple[int, dict[str, object]]:
    """frontend's app calls ``HOST:8000`` in plain HTTP through its sidecar."""
    front = mesh.pods["frontend-0"]
    status, body = http_get(f"http://{front.ip}:{front.http_port}/call/{HOST}/8000/hi")
    upstream = json.loads(body).get("upstream", {}) if body.startswith("{") else {}
    return upstream.get("status", status), upstream


def apply_rule(mesh: Mesh, tls: str) -> None:
    (mesh.config / "secure-dr.yaml").write_text(destination_rule(tls))


def test_the_right_ca_and_name_succeed_and_the_server_sees_the_host_as_sni(
    mesh: Mesh, server: tuple[HttpsEcho, OwnCa, OwnCa], entry: None
) -> None:
    https, ca, _ = server
    apply_rule(mesh, f"{{mode: SIMPLE, caCertificates: {ca.pem}}}")
    _, upstream = wait_for(lambda: ok(through_frontend(mesh)), timeout=15)
    assert upstream.get("tls") is True
    assert HOST in https.sni_seen


def test_a_wrong_ca_fails_and_so_does_a_wrong_subject_alt_name(
    mesh: Mesh, server: tuple[HttpsEcho, OwnCa, OwnCa], entry: None
) -> None:
    _, ca, stranger = server
    apply_rule(mesh, f"{{mode: SIMPLE, caCertificates: {stranger.pem}}}")
    wait_for(lambda: through_frontend(mesh)[0] == 503, timeout=15)
    apply_rule(mesh, f"{{mode: SIMPLE, caCertificates: {ca.pem}}}")
    wait_for(lambda: ok(through_frontend(mesh)), timeout=15)  # the same path works again
    apply_rule(mesh, f"{{mode: SIMPLE, caCertificates: {ca.pem}, subjectAltNames: [other.test]}}")
    wait_for(lambda: through_frontend(mesh)[0] == 503, timeout=15)


def test_an_explicit_sni_is_sent_as_given(
    mesh: Mesh, server: tuple[HttpsEcho, OwnCa, OwnCa], entry: None
) -> None:
    https, ca, _ = server
    apply_rule(mesh, f"{{mode: SIMPLE, caCertificates: {ca.pem}, sni: front.example.test}}")
    wait_for(lambda: ok(through_frontend(mesh)) and "front.example.test" in https.sni_seen, 15)


def ok(reply: tuple[int, dict[str, object]]) -> tuple[int, dict[str, object]] | None:
    return reply if reply[0] == 200 else None


def two_tls_entries(port: int) -> str:
    return "\n---\n".join(
        f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: {name}, namespace: default}}
spec:
  hosts: [{name}.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: tls, protocol: TLS, targetPort: 8443}}]
  endpoints: [{{address: {address}}}]
"""
        for name, address in (("alpha", "127.0.9.6"), ("beta", "127.0.9.7"))
    )


def handshake(address: tuple[str, int], server_name: str, ca: Path) -> str:
    """The common name of the certificate the server behind ``address`` shows for SNI
    ``server_name`` (verified against ``ca``)."""
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(address, timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        cert = tls.getpeercert() or {}
    subject = dict(pair[0] for pair in cert.get("subject", ()))
    return str(subject.get("commonName", ""))


def test_two_tls_service_entries_share_one_port_told_apart_by_sni(
    mesh: Mesh, tmp_path: Path
) -> None:
    """Passthrough TLS from the app: frontend's sidecar reads the SNI (TLS inspector) and
    sends each connection to the host it names, both on port 9443."""
    ca = OwnCa(tmp_path, "passthrough-ca")
    servers = [
        HttpsEcho(("127.0.9.6", 8443), *ca.server_files("alpha.example.test")),
        HttpsEcho(("127.0.9.7", 8443), *ca.server_files("beta.example.test")),
    ]
    (mesh.config / "two-tls.yaml").write_text(two_tls_entries(9443))
    outbound = (outbound_address(mesh.pods["frontend-0"].ip), 9443)
    try:
        for name in ("alpha.example.test", "beta.example.test"):
            seen = wait_for(lambda n=name: _try(handshake, outbound, n, ca.pem), timeout=15)
            assert seen == name  # the right server answered, for each name
    finally:
        (mesh.config / "two-tls.yaml").unlink()
        for server in servers:
            server.stop()


def _try(check: Callable[..., str], *args: object) -> str | None:
    try:
        return check(*args)
    except OSError:  # not routed yet: the listener or its chain is still on its way
        return None
