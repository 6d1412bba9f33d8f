"""End-to-end security with real Envoy sidecars: mTLS, rotation, PeerAuthentication,
AuthorizationPolicy, and a proxy that claims an identity it does not hold.

Runs after test_mesh.py against the same mesh; every test removes what it adds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from loopback_mesh import Mesh

from ca.spiffe import SpiffeId
from pyistiod.credentials import workload_xds_tls
from pyistiod.local_mesh import (
    ENVOY_FLAGS,
    envoy_binary,
    get_ok,
    http_get,
    outbound_address,
    wait_for,
)
from translators.envoy.bootstrap import render_bootstrap

pytestmark = pytest.mark.e2e

FRONTEND_ID = "spiffe://cluster.local/ns/default/sa/frontend"


def backend_reply(mesh: Mesh, path: str = "hello") -> tuple[int, dict[str, Any]]:
    front = mesh.pods["frontend-0"]
    status, body = http_get(f"http://{front.ip}:{front.http_port}/call/backend/9080/{path}")
    reply = json.loads(body) if body.startswith("{") else {}
    upstream = reply.get("upstream", {})
    return (upstream.get("status", 200) if status in (200, 502) else status), upstream


def applied(mesh: Mesh, name: str, text: str) -> Path:
    path = mesh.config / name
    path.write_text(text)
    return path


def test_sidecars_talk_mtls_and_the_server_sees_the_clients_spiffe_id(mesh: Mesh) -> None:
    status, upstream = backend_reply(mesh)
    assert status == 200
    assert f"URI={FRONTEND_ID}" in upstream["xfcc"]


def test_permissive_accepts_plaintext_and_strict_refuses_it(mesh: Mesh) -> None:
    direct = "http://127.0.0.21:9080/plain"  # backend's inbound listener, no client sidecar
    body = get_ok(direct)
    assert body is not None and json.loads(body)["xfcc"] == ""
    path = applied(
        mesh,
        "strict.yaml",
        """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: backend-strict, namespace: default}
spec:
  selector: {matchLabels: {app: backend}}
  mtls: {mode: STRICT}
""",
    )
    try:
        wait_for(lambda: get_ok(direct) is None, timeout=5)
        assert backend_reply(mesh)[0] == 200  # sidecar to sidecar is mTLS: still fine
    finally:
        path.unlink()
    wait_for(lambda: get_ok(direct) is not None, timeout=5)


def cert_serials(mesh: Mesh, pod: str) -> set[str]:
    body = http_get(f"http://{mesh.admin(pod)}/certs")[1]
    serials = set()
    for cert in json.loads(body).get("certificates", []):
        for entry in cert.get("cert_chain", []):
            if any(s.get("uri") == FRONTEND_ID for s in entry.get("subject_alt_names", [])):
                serials.add(entry["serial_number"])
    return serials


def test_certificates_rotate_while_traffic_flows(mesh: Mesh) -> None:
    seen: set[str] = set()
    failures = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(seen) < 3:
        seen |= cert_serials(mesh, "frontend-0")
        status, _ = backend_reply(mesh)
        if status != 200:
            failures.append(status)
        time.sleep(0.1)
    assert len(seen) >= 3, f"serials seen: {seen}"  # lifetime 6 s, renewed at about half
    assert failures == []


POLICIES = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: frontend-may-read, namespace: default}
spec:
  selector: {matchLabels: {app: backend}}
  action: ALLOW
  rules:
    - from: [{source: {principals: ["cluster.local/ns/default/sa/frontend"]}}]
      to: [{operation: {methods: ["GET"], paths: ["/allowed/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-secrets, namespace: default}
spec:
  selector: {matchLabels: {app: backend}}
  action: DENY
  rules:
    - to: [{operation: {paths: ["/allowed/secret"]}}]
"""


def test_authorization_policy_allows_denies_and_deny_wins(mesh: Mesh) -> None:
    path = applied(mesh, "authz.yaml", POLICIES)
    try:
        wait_for(lambda: backend_reply(mesh, "other")[0] == 403, timeout=5)
        assert backend_reply(mesh, "allowed/page")[0] == 200
        assert backend_reply(mesh, "allowed/secret")[0] == 403
        back1 = mesh.pods.get("backend-1")
        if back1 is not None:  # started by test_mesh: its principal is .../sa/backend
            url = f"http://{back1.ip}:9080/call/backend/9080/allowed/page"
            reply = json.loads(http_get(url)[1])
            assert reply["upstream"]["status"] == 403
    finally:
        path.unlink()
    wait_for(lambda: backend_reply(mesh, "other")[0] == 200, timeout=5)


DRY_RUN_DENY_ALL = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-all-dry-run
  namespace: default
  annotations: {istio.io/dry-run: "true"}
spec:
  selector: {matchLabels: {app: backend}}
  action: DENY
  rules: [{}]
"""


def backend_stat(mesh: Mesh, name: str) -> int:
    """A counter of backend-0's Envoy, summed over the stats whose name ends in ``name``."""
    pattern = urllib.parse.quote(re.escape(name) + "$")
    body = http_get(f"http://{mesh.admin('backend-0')}/stats?filter={pattern}")[1]
    pairs = (line.rpartition(": ") for line in body.splitlines())
    return sum(int(value) for key, _, value in pairs if key.endswith(name))


SHADOW_DENIED = "istio_dry_run_deny_.shadow_denied"
INBOUND_REQUESTS = "inbound|9080||.upstream_rq_total"


def test_a_dry_run_deny_all_denies_nothing_and_envoy_counts_what_it_would_deny(
    mesh: Mesh,
) -> None:
    """Istio's dry run: the policy goes to the RBAC filter's shadow rules, so requests pass
    and Envoy's shadow stats count the would-be denials (enforced, it would take the
    backend down). Counted on backend-0: test_mesh may have started a second backend."""
    path = applied(mesh, "dry-run.yaml", DRY_RUN_DENY_ALL)
    try:

        def counted_once() -> bool:
            backend_reply(mesh)  # a request, so the filter, once pushed, has one to count
            return backend_stat(mesh, SHADOW_DENIED) > 0

        wait_for(counted_once, timeout=10)
        denied, served = backend_stat(mesh, SHADOW_DENIED), backend_stat(mesh, INBOUND_REQUESTS)
        assert [backend_reply(mesh)[0] for _ in range(10)] == [200] * 10
        reached = backend_stat(mesh, INBOUND_REQUESTS) - served
        assert reached >= 1
        assert backend_stat(mesh, SHADOW_DENIED) - denied == reached
    finally:
        path.unlink()


def test_proxy_claiming_another_identity_gets_no_secret(mesh: Mesh, tmp_path: Path) -> None:
    node = "sidecar~127.0.0.31~frontend-9.default~default.svc.cluster.local"
    stolen = workload_xds_tls(
        mesh.local.ca_dir,
        SpiffeId("cluster.local", "default", "backend"),
        datetime.now(UTC),
        timedelta(hours=1),
    )
    doc = render_bootstrap(
        node,
        "127.0.0.1",
        mesh.ports.secure_xds,
        15000,
        labels={"app": "frontend"},
        namespace="default",
        service_account="frontend",
        pod_name="frontend-9",
        tls=stolen,
    )
    config = tmp_path / "intruder.yaml"
    config.write_text(yaml.safe_dump(doc))
    mesh.local.spawn("envoy-intruder", [envoy_binary(), "-c", str(config), *ENVOY_FLAGS])
    denied = wait_for(
        lambda: [
            e for e in mesh.log_events() if e["event"] == "xds.closed" and e.get("node") == node
        ],
        timeout=10,
    )
    assert denied[0]["code"] == "PERMISSION_DENIED"
    assert "authenticated as spiffe://cluster.local/ns/default/sa/backend" in denied[0]["reason"]
    assert not any(e["event"] == "sds.issued" and e.get("node") == node for e in mesh.log_events())


def test_a_plaintext_proxy_is_ready_at_once_and_talks_plain_text(
    mesh: Mesh, tmp_path: Path
) -> None:
    """A proxy bootstrapped with ``--plaintext`` gets no secrets, so its config names none:
    Envoy does not wait out its 15 s initial fetch timeout for one, and its auto mTLS dials
    plain text (backend is PERMISSIVE, so it answers, without a client identity)."""
    ip = "127.0.0.33"
    node = f"sidecar~{ip}~frontend-7.default~default.svc.cluster.local"
    argv = [sys.executable, "-m", "pyistiod.cli", "bootstrap", "--node-id", node, "--plaintext",
            "--xds-address", f"127.0.0.1:{mesh.ports.xds}", "--config-dir", str(mesh.config),
            "--labels", "app=frontend", "--service-account", "frontend"]  # fmt: skip
    bootstrap = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "no certificates" in bootstrap.stderr
    config = tmp_path / "plain.yaml"
    config.write_text(bootstrap.stdout)
    started = time.monotonic()
    mesh.local.spawn("envoy-plain", [envoy_binary(), "-c", str(config), *ENVOY_FLAGS])
    wait_for(lambda: get_ok(f"http://{ip}:15000/ready") == "LIVE\n", timeout=10)
    assert time.monotonic() - started < 8  # not the 15 s a referenced secret would cost
    request = urllib.request.Request(
        f"http://{outbound_address(ip)}:9080/plain", headers={"Host": "backend"}
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert json.loads(reply.read())["xfcc"] == ""  # plain text: no client certificate
    clusters = http_get(f"http://{ip}:15000/config_dump?resource=dynamic_active_clusters")[1]
    assert "tlsMode-istio" not in clusters and "ROOTCA" not in clusters
    said = [e for e in mesh.log_events() if e["event"] == "xds.plaintext_proxy"]
    assert [e["node"] for e in said if e["node"] == node] == [node]
