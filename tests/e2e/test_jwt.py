"""End-to-end JWT with real Envoy sidecars: RequestAuthentication verifies tokens with keys
Envoy fetches from a ``jwksUri`` (a loopback HTTP server in this process), and
AuthorizationPolicy ``requestPrincipals`` and claim conditions decide on what it verified,
and a gateway routes on a verified claim (``@request.auth.claims``).

Requests go straight to backend's inbound listener (``127.0.0.21:9080``, PERMISSIVE so
plain text is accepted), as a client outside the mesh would send them. Every test removes
what it adds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jwt_issuer import Issuer, JwksServer
from loopback_mesh import Mesh

from pyistiod.local_mesh import Pod, free_port, http_get, wait_for

pytestmark = pytest.mark.e2e

BACKEND = "http://127.0.0.21:9080"
ISSUER = "https://issuer.pyistiod.test"


@pytest.fixture(scope="module")
def issuer() -> Iterator[tuple[Issuer, str]]:
    """The issuer whose key the JWKS server publishes, and the ``jwksUri``."""
    good = Issuer(ISSUER)
    port = free_port()
    server = JwksServer(("127.0.0.1", port), good)
    try:
        yield good, f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        server.stop()


def request_authentication(jwks_uri: str) -> str:
    return f"""
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: backend-jwt, namespace: default}}
spec:
  selector: {{matchLabels: {{app: backend}}}}
  jwtRules:
    - issuer: {ISSUER}
      jwksUri: {jwks_uri}
      forwardOriginalToken: true
"""


def status(path: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http_get(f"{BACKEND}/{path}", headers=headers)[0]


def applied(mesh: Mesh, name: str, text: str) -> Path:
    path = mesh.config / name
    path.write_text(text)
    return path


@pytest.fixture
def authn(mesh: Mesh, issuer: tuple[Issuer, str]) -> Iterator[Issuer]:
    """The RequestAuthentication applied and in force on backend (a bad token refused)."""
    good, uri = issuer
    path = applied(mesh, "jwt-authn.yaml", request_authentication(uri))
    try:
        wait_for(lambda: status("x", "not-a-token") == 401, timeout=10)
        wait_for(lambda: status("x", good.token("alice")) == 200, timeout=10)
        yield good
    finally:
        path.unlink()
        wait_for(lambda: status("x", "not-a-token") == 200, timeout=10)


def test_valid_tokens_pass_and_expired_or_forged_ones_get_401(authn: Issuer) -> None:
    assert status("ok", authn.token("alice")) == 200
    assert status("expired", authn.token("alice", ttl=-120)) == 401
    forger = Issuer(ISSUER)  # same issuer and kid, another key: the signature fails
    assert status("forged", forger.token("alice")) == 401
    assert status("other-issuer", Issuer("https://elsewhere.test").token("alice")) == 401


def test_a_request_without_token_passes_when_no_policy_requires_one(authn: Issuer) -> None:
    assert status("anonymous") == 200


ONLY_ALICE = f"""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: only-alice, namespace: default}}
spec:
  selector: {{matchLabels: {{app: backend}}}}
  action: ALLOW
  rules:
    - from: [{{source: {{requestPrincipals: ["{ISSUER}/alice"]}}}}]
"""


def test_request_principals_admit_the_named_principal_only(mesh: Mesh, authn: Issuer) -> None:
    path = applied(mesh, "jwt-only-alice.yaml", ONLY_ALICE)
    try:
        wait_for(lambda: status("anonymous") == 403, timeout=10)
        assert status("alice", authn.token("alice")) == 200
        assert status("bob", authn.token("bob")) == 403
        assert status("expired", authn.token("alice", ttl=-120)) == 401  # authn comes first
    finally:
        path.unlink()
    wait_for(lambda: status("anonymous") == 200, timeout=10)


ADMINS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: admins, namespace: default}
spec:
  selector: {matchLabels: {app: backend}}
  action: ALLOW
  rules:
    - from: [{source: {requestPrincipals: ["*"]}}]
      when:
        - {key: "request.auth.claims[groups]", values: [admin]}
        - {key: "request.auth.claims[org][team]", values: ["core*"]}
"""


def test_claim_conditions_match_list_and_nested_claims(mesh: Mesh, authn: Issuer) -> None:
    path = applied(mesh, "jwt-admins.yaml", ADMINS)
    try:
        wait_for(lambda: status("anonymous") == 403, timeout=10)
        admin = authn.token("carol", groups=["dev", "admin"], org={"team": "core-infra"})
        assert status("admin", admin) == 200
        dev = authn.token("dave", groups=["dev"], org={"team": "core-infra"})
        assert status("dev", dev) == 403
        elsewhere = authn.token("erin", groups="admin", org={"team": "web"})
        assert status("web", elsewhere) == 403
        single = authn.token("frank", groups="admin", org={"team": "core"})
        assert status("single", single) == 200  # a string claim matches as a list of one
    finally:
        path.unlink()
    wait_for(lambda: status("anonymous") == 200, timeout=10)


def test_envoy_holds_the_filter_and_fetched_the_keys_through_its_cluster(
    mesh: Mesh, authn: Issuer, issuer: tuple[Issuer, str]
) -> None:
    port = issuer[1].split(":")[2].split("/")[0]
    clusters = mesh.clusters_text("backend-0")
    assert f"outbound|{port}||127.0.0.1::127.0.0.1:{port}::rq_success::" in clusters
    dump = str(mesh.dump("backend-0"))
    assert "envoy.filters.http.jwt_authn" in dump and "origins-0" in dump


GATEWAY_IP = "127.0.0.56"  # a router pod of this module's own; 127.0.0.50 is e2e_gateway's


def gateway_config(jwks_uri: str) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: jwt-gw, namespace: istio-system}}
spec:
  selector: {{istio: jwtgateway}}
  servers: [{{port: {{number: 8080, name: http, protocol: HTTP}}, hosts: [api.jwt.test]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api, namespace: default}}
spec:
  hosts: [api.jwt.test]
  gateways: [istio-system/jwt-gw]
  http:
    - match: [{{headers: {{"@request.auth.claims.groups": {{exact: admin}}}}}}]
      route: [{{destination: {{host: backend, port: {{number: 9080}}}}}}]
    - route: [{{destination: {{host: frontend, port: {{number: 8080}}}}}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: gateway-jwt, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: jwtgateway}}}}
  jwtRules: [{{issuer: "{ISSUER}", jwksUri: "{jwks_uri}"}}]
"""


def through_gateway(token: str | None = None) -> tuple[int, str]:
    """Status and answering pod of a request to the gateway (pod '' when none answered)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    code, body = http_get(f"http://{GATEWAY_IP}:8080/claims", host="api.jwt.test", headers=headers)
    pod = json.loads(body).get("pod", "") if body.startswith("{") else ""
    return code, pod


def test_a_gateway_routes_on_a_verified_claim(mesh: Mesh, issuer: tuple[Issuer, str]) -> None:
    good, uri = issuer
    path = applied(mesh, "jwt-gateway.yaml", gateway_config(uri))
    gateway = Pod(
        "jwtgateway-0", "istio-system", GATEWAY_IP, 0, None, {"istio": "jwtgateway"},
        "istio-jwtgateway", "router",
    )  # fmt: skip
    mesh.local.start_sidecar(gateway, mesh.ports, admin_port=15000)
    proc = mesh.local.procs[-1]
    admin = good.token("root", groups=["ops", "admin"])
    try:
        wait_for(lambda: through_gateway(admin)[1].startswith("backend"), timeout=30)
        assert through_gateway(good.token("user", groups=["dev"])) == (200, "frontend-0")
        assert through_gateway() == (200, "frontend-0")  # no token: unauthenticated, default
        forged = Issuer(ISSUER).token("root", groups=["admin"])
        assert through_gateway(forged)[0] == 401  # a forged claim routes nowhere
        assert through_gateway(good.token("root", groups="admin"))[1].startswith("backend")
    finally:
        path.unlink()
        proc.terminate()
        proc.wait(timeout=10)
