"""TLS to servers outside the mesh, with real Envoy: origination (the sidecar sends SNI and
verifies the server as Istio does, its CA and its name, and refuses a server it cannot trust),
origination from a ``credentialName`` Secret over SDS (the CA, and for MUTUAL the client
certificate a server requires), and two TLS ServiceEntries on one port, told apart by SNI.

Runs against the package's mesh; every test removes what it adds.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


# --- credentialName: the Secret of frontend's namespace, over SDS ---------------------------

MTLS_HOST = "mtls.example.test"
MTLS_SERVER = ("127.0.9.8", 8443)
CLIENT = "frontend.client.test"


def tls_secret(name: str, cert: bytes, key: bytes, ca: bytes, namespace: str = "default") -> str:
    """A ``kubernetes.io/tls`` Secret (``tls.crt``, ``tls.key``, ``ca.crt``)."""
    data = {"tls.crt": cert, "tls.key": key, "ca.crt": ca}
    encoded = ", ".join(f"{k}: {base64.b64encode(v).decode()}" for k, v in data.items())
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {namespace}}}
type: kubernetes.io/tls
data: {{{encoded}}}
"""


def ca_only_secret(name: str, ca: bytes) -> str:
    """Istio's generic form holding only a CA (``cacert``)."""
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: default}}
data: {{cacert: {base64.b64encode(ca).decode()}}}
"""


@pytest.fixture
def mtls_server(mesh: Mesh, tmp_path: Path) -> Iterator[tuple[HttpsEcho, OwnCa, OwnCa, OwnCa]]:
    """A server for ``MTLS_HOST`` requiring a client certificate of ``client_ca``, its
    ServiceEntry, and (server CA, client CA, stranger) roots."""
    server_ca, client_ca = OwnCa(tmp_path, "mtls-server-ca"), OwnCa(tmp_path, "client-ca")
    stranger = OwnCa(tmp_path, "client-stranger")
    https = HttpsEcho(MTLS_SERVER, *server_ca.server_files(MTLS_HOST), client_ca=client_ca.pem)
    entry = SERVICE_ENTRY.replace(HOST, MTLS_HOST).replace(SERVER[0], MTLS_SERVER[0])
    (mesh.config / "mtls-se.yaml").write_text(entry.replace("name: secure", "name: mtls"))
    try:
        yield https, server_ca, client_ca, stranger
    finally:
        for name in ("mtls-se.yaml", "mtls-dr.yaml", "client-secret.yaml"):
            (mesh.config / name).unlink(missing_ok=True)
        https.stop()


def call_mtls_host(mesh: Mesh) -> tuple[int, dict[str, object]]:
    front = mesh.pods["frontend-0"]
    status, body = http_get(f"http://{front.ip}:{front.http_port}/call/{MTLS_HOST}/8000/hi")
    upstream = json.loads(body).get("upstream", {}) if body.startswith("{") else {}
    return upstream.get("status", status), upstream


def test_mutual_presents_the_secrets_client_certificate_and_a_strangers_is_refused(
    mesh: Mesh, mtls_server: tuple[HttpsEcho, OwnCa, OwnCa, OwnCa]
) -> None:
    """The server requires a client certificate of its client CA: signed by a stranger (the
    Secret as first written), every request fails; the Secret rewritten with one of the
    right CA, the next request succeeds over SDS alone (no cluster change). Failing first
    means no pooled connection from a good handshake can hide a refusal."""
    _, server_ca, client_ca, stranger = mtls_server
    secret = mesh.config / "client-secret.yaml"
    secret.write_text(tls_secret("client-credential", *stranger.issue(CLIENT), server_ca.pem_bytes))
    rule = destination_rule("{mode: MUTUAL, credentialName: client-credential}")
    (mesh.config / "mtls-dr.yaml").write_text(rule.replace(HOST, MTLS_HOST))
    pair = "kubernetes://client-credential"
    wait_for(lambda: names_secret(active_cluster(mesh, MTLS_HOST), pair), timeout=15)
    wait_for(lambda: pair in secret_names(mesh), timeout=15)
    assert [call_mtls_host(mesh)[0] for _ in range(3)] == [503] * 3
    secret.write_text(
        tls_secret("client-credential", *client_ca.issue(CLIENT), server_ca.pem_bytes)
    )
    _, upstream = wait_for(lambda: ok(call_mtls_host(mesh)), timeout=15)
    assert upstream.get("client") == CLIENT  # the Secret's certificate, verified by the server


def test_simple_verifies_the_server_with_the_secrets_ca_and_a_missing_secret_does_not_block(
    mesh: Mesh, server: tuple[HttpsEcho, OwnCa, OwnCa], entry: None
) -> None:
    """SIMPLE with ``credentialName``: the CA comes from the Secret (Istio's generic
    ``cacert``). Before the Secret exists the cluster names a secret nobody sends: Envoy
    activates it after its initial fetch timeout (15 s) rather than warming it forever.
    A stranger's CA fails; the server's CA succeeds."""
    _, ca, stranger = server
    apply_rule(mesh, "{mode: SIMPLE, credentialName: server-ca}")
    wait_for(lambda: names_server_ca(active_cluster(mesh)), timeout=40)
    assert through_frontend(mesh)[0] == 503  # activated without the CA: no handshake
    secret = mesh.config / "client-secret.yaml"
    try:
        secret.write_text(ca_only_secret("server-ca", stranger.pem_bytes))
        wait_for(lambda: "kubernetes://server-ca-cacert" in secret_names(mesh), timeout=15)
        assert through_frontend(mesh)[0] == 503
        secret.write_text(ca_only_secret("server-ca", ca.pem_bytes))
        _, upstream = wait_for(lambda: ok(through_frontend(mesh)), timeout=15)
        assert upstream.get("tls") is True
    finally:
        secret.unlink(missing_ok=True)


def active_cluster(mesh: Mesh, host: str = HOST) -> dict[str, Any] | None:
    """frontend's active cluster of ``host:8000``, if any."""
    for section in mesh.dump("frontend-0")["configs"]:
        if section["@type"].endswith("ClustersConfigDump"):
            for entry in section.get("dynamic_active_clusters", []):
                if entry["cluster"]["name"] == f"outbound|8000||{host}":
                    found: dict[str, Any] = entry["cluster"]
                    return found
    return None


def names_server_ca(cluster: dict[str, Any] | None) -> bool:
    return names_secret(cluster, "kubernetes://server-ca-cacert")


def names_secret(cluster: dict[str, Any] | None, name: str) -> bool:
    """Whether the cluster's TLS context names the SDS secret ``name``."""
    return f'"{name}"' in json.dumps(cluster or {})


def secret_names(mesh: Mesh) -> set[str]:
    """The SDS secrets frontend's Envoy holds (active)."""
    for section in mesh.dump("frontend-0")["configs"]:
        if section["@type"].endswith("SecretsConfigDump"):
            return {s["name"] for s in section.get("dynamic_active_secrets", [])}
    return set()


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
