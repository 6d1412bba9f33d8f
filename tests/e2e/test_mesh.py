"""End-to-end: real Envoy sidecars take their config from pyistiod and carry traffic.

The tests run in file order against one mesh (the ``mesh`` fixture); each one
that edits the config directory restores it before it ends.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from loopback_mesh import Mesh

from pyistiod.echo_app import frame, read_frame, websocket_accept
from pyistiod.local_mesh import Pod, get_ok, http_get, wait_for
from pyistiod.proxy_status import fetch, state, table

pytestmark = pytest.mark.e2e

BACKEND = "backend.default.svc.cluster.local"
TYPE_PREFIX = "type.googleapis.com/"


def dynamic(dump: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Active dynamic resources in a config_dump, by name (kind: clusters or listeners)."""
    for section in dump["configs"]:
        if section["@type"].endswith(f"{kind.capitalize()[:-1]}sConfigDump"):
            key = "dynamic_active_clusters" if kind == "clusters" else "dynamic_listeners"
            out = {}
            for entry in section.get(key, []):
                res = entry.get("cluster") or entry.get("active_state", {}).get("listener")
                if res:
                    out[res["name"]] = entry
            return out
    raise AssertionError(f"no {kind} in config_dump")


def stat(mesh: Mesh, pod: str, name: str) -> int:
    body = http_get(f"http://{mesh.admin(pod)}/stats?filter={name}")[1]
    for line in body.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    return 0


def write(mesh: Mesh, name: str, text: str) -> Path:
    path = mesh.config / name
    path.write_text(text)
    return path


def test_envoys_ack_our_clusters_and_listeners(mesh: Mesh) -> None:
    for pod in ("frontend-0", "backend-0"):
        dump = mesh.dump(pod)
        clusters = dynamic(dump, "clusters")
        assert f"outbound|9080||{BACKEND}" in clusters
        assert "outbound|8080||frontend.default.svc.cluster.local" in clusters
        assert all(c["version_info"] for c in clusters.values())
        listeners = dynamic(dump, "listeners")
        outbound = "127.2.0.11" if pod == "frontend-0" else "127.2.0.21"
        assert f"{outbound}_9080" in listeners and f"{outbound}_9090" in listeners
    assert "inbound|9080||" in dynamic(mesh.dump("backend-0"), "clusters")
    acks = {
        (e["node"].split("~")[2], e["type"]) for e in mesh.log_events() if e["event"] == "xds.ack"
    }
    for pod in ("frontend-0.default", "backend-0.default"):
        assert {t for p, t in acks if p == pod} == {"cds", "eds", "lds", "rds", "sds"}


def test_request_crosses_both_sidecars(mesh: Mesh) -> None:
    out_before = stat(mesh, "frontend-0", f"cluster.outbound|9080||{BACKEND}.upstream_rq_total")
    in_before = stat(mesh, "backend-0", "cluster.inbound|9080||.upstream_rq_total")
    status, body = mesh.call_backend()
    assert status == 200, body
    reply = json.loads(body)
    assert reply["pod"] == "frontend-0"
    assert reply["upstream"]["pod"] == "backend-0"
    assert reply["upstream"]["host"] == "backend"
    assert (
        stat(mesh, "frontend-0", f"cluster.outbound|9080||{BACKEND}.upstream_rq_total")
        == out_before + 1
    )
    assert stat(mesh, "backend-0", "cluster.inbound|9080||.upstream_rq_total") == in_before + 1


def test_tcp_service_through_both_sidecars(mesh: Mesh) -> None:
    with socket.create_connection(("127.2.0.11", 9090), timeout=5) as conn:
        conn.sendall(b"ping over tcp_proxy\n")
        assert conn.makefile("rb").readline() == b"ping over tcp_proxy\n"


def test_a_websocket_upgrades_through_both_sidecars(mesh: Mesh) -> None:
    """Istio allows websocket upgrades on every HTTP listener: the frontend's outbound
    listener and the backend's inbound one both pass the Upgrade, and messages echo."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.2.0.11", 9080), timeout=5) as conn:
        conn.sendall(
            "GET /chat HTTP/1.1\r\nHost: backend:9080\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        stream = conn.makefile("rb")
        status = stream.readline().decode()
        headers = {}
        while (line := stream.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        assert status.startswith("HTTP/1.1 101"), status
        assert headers["sec-websocket-accept"] == websocket_accept(key)
        for text in ("hello through two sidecars", "x" * 300):
            conn.sendall(frame(text, mask=True))
            assert read_frame(stream) == text


def test_proxy_status_shows_every_real_envoy_in_sync(mesh: Mesh) -> None:
    """Real Envoys ACK what they apply: proxy-status reads SYNCED for each type it was sent."""

    def in_sync() -> list[dict[str, object]] | None:
        proxies = fetch(f"127.0.0.1:{mesh.ports.monitoring}")
        rows = {str(p["proxy"]): p for p in proxies}
        wanted = [f"sidecar~{pod.ip}~{name}.default~default.svc.cluster.local"
                  for name, pod in mesh.pods.items()]  # fmt: skip
        if not all(w in rows for w in wanted):
            return None
        states = [state(rows[w]["types"].get(t)) for w in wanted for t in ("cds", "lds", "eds")]
        return proxies if all(s == "SYNCED" for s in states) else None

    proxies = wait_for(in_sync, timeout=10)
    assert "SYNCED" in table(proxies)


def pyistiod_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``pyistiod ARGV`` as an operator runs it, in its own process."""
    command = [sys.executable, "-m", "pyistiod.cli", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_proxy_config_shows_what_a_real_envoy_is_served(mesh: Mesh) -> None:
    """``pyistiod proxy-config`` names the proxy istioctl's way (pod.namespace) and lists the
    mesh's clusters, and the workload certificate Envoy holds, by serial, never its key."""
    at = ("--monitoring-address", f"127.0.0.1:{mesh.ports.monitoring}")
    done = pyistiod_cli("proxy-config", "clusters", "frontend-0.default", *at)
    assert done.returncode == 0, done.stderr
    rows = [r.split() for r in done.stdout.splitlines()[1:]]
    assert [BACKEND, "9080", "-", "outbound", "EDS", "-"] in rows
    assert ["frontend.default.svc.cluster.local", "8080", "-", "outbound", "EDS", "-"] in rows
    envoy_clusters = set(dynamic(mesh.dump("frontend-0"), "clusters"))
    shown = {f"{r[3]}|{r[1]}||{r[0]}" for r in rows if len(r) == 6}
    assert shown <= envoy_clusters and f"outbound|9080||{BACKEND}" in shown

    def secrets_active() -> dict[str, list[str]] | None:
        done = pyistiod_cli("proxy-config", "secrets", "frontend-0.default", *at)
        assert done.returncode == 0, done.stderr
        rows = {r.split()[0]: r.split() for r in done.stdout.splitlines()[1:]}
        return rows if rows["default"][3] == "ACTIVE" else None  # ACKed (it rotates often)

    rows_by_name = wait_for(secrets_active, timeout=10)
    _, kind, chain, _, valid, serial, not_after, not_before = rows_by_name["default"]
    assert (kind, chain, valid) == ("Cert", "Chain", "true")
    held = envoy_cert_serials(mesh, "frontend-0")  # read first: issued ones are logged first
    issued = {int(e["serial"], 16) for e in mesh.log_events()
              if e["event"] == "sds.issued" and "~frontend-0.default~" in e["node"]}  # fmt: skip
    assert int(serial, 16) in issued  # the certificate pyistiod issued that workload
    assert held and held <= issued  # and Envoy holds one of them
    lifetime = datetime.fromisoformat(not_after) - datetime.fromisoformat(not_before)
    assert timedelta(seconds=5) <= lifetime <= timedelta(minutes=10)  # CERT_TTL, backdated
    assert rows_by_name["ROOTCA"][1:4] == ["CA", "ACTIVE", "true"]
    raw = pyistiod_cli("proxy-config", "secrets", "frontend-0", *at, "-o", "json")
    assert raw.returncode == 0 and "PRIVATE KEY" not in raw.stdout
    assert {s["name"] for s in json.loads(raw.stdout)} == {"default", "ROOTCA"}
    missing = pyistiod_cli("proxy-config", "clusters", "nobody.default", *at)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "frontend-0.default" in missing.stderr and "Traceback" not in missing.stderr


def envoy_cert_serials(mesh: Mesh, pod: str) -> set[int]:
    """The serials of the certificate chains Envoy holds now (its admin ``/certs``)."""
    body = json.loads(http_get(f"http://{mesh.admin(pod)}/certs")[1])
    return {int(e["serial_number"], 16) for c in body.get("certificates", [])
            for e in c.get("cert_chain", [])}  # fmt: skip


def test_adsz_shows_each_envoy_authenticated_over_tls(mesh: Mesh) -> None:
    """Every real sidecar's stream came over TLS as its workload identity."""
    status, body = http_get(f"http://127.0.0.1:{mesh.ports.monitoring}/debug/adsz")
    assert status == 200 and "PRIVATE KEY" not in body
    clients = {c["proxy"].split("~")[2]: c for c in json.loads(body)["clients"]}
    for name in mesh.pods:
        client = clients[f"{name}.default"]
        assert client["tls"] is True and client["identity"].startswith("spiffe://cluster.local/")
        assert client["watches"][f"{TYPE_PREFIX}envoy.config.cluster.v3.Cluster"]["wildcard"]


def test_unknown_host_gets_404_from_the_sidecar(mesh: Mesh) -> None:
    status, _ = http_get("http://127.2.0.11:9080/", host="nosuch.example")
    assert status == 404


@pytest.mark.parametrize(
    "host",
    ["backend", "backend:9080", "backend.default.svc.cluster.local:9080", "BACKEND.default:9080"],
)
def test_a_host_matches_with_or_without_its_port(mesh: Mesh, host: str) -> None:
    """The virtual hosts list no ":9080" forms; the route configuration ignores the port
    of ``Host`` (Istio's sidecar setting), and Envoy matches names case-insensitively."""
    status, body = http_get("http://127.2.0.11:9080/hello", host=host)
    assert status == 200, body
    assert json.loads(body)["pod"].startswith("backend-")


SECOND_BACKEND = """
apiVersion: v1
kind: Pod
metadata: {name: backend-1, namespace: default, labels: {app: backend, version: v2}}
spec:
  serviceAccountName: backend
  containers: [{name: app, ports: [{name: http, containerPort: 9080}]}]
status: {podIP: 127.0.0.22}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-second
  namespace: default
  labels: {kubernetes.io/service-name: backend}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints:
  - addresses: ["127.0.0.22"]
    targetRef: {kind: Pod, name: backend-1, namespace: default}
"""


def test_added_endpoint_reaches_envoy_within_a_second(mesh: Mesh) -> None:
    pod = Pod(
        "backend-1",
        "default",
        "127.0.0.22",
        9080,
        None,
        {"app": "backend", "version": "v2"},
        "backend",
    )
    mesh.local.start_app(pod)
    mesh.local.start_sidecar(pod, mesh.ports)
    started = time.monotonic()
    write(mesh, "backend-1.yaml", SECOND_BACKEND)
    wait_for(
        lambda: "127.0.0.22:9080" in mesh.clusters_text("frontend-0"), timeout=5, interval=0.01
    )
    elapsed = time.monotonic() - started
    assert elapsed < mesh.debounce + 1.0, f"endpoint took {elapsed:.2f}s"
    seen = wait_for(lambda: _backends_seen(mesh) == {"backend-0", "backend-1"}, timeout=15)
    assert seen


def _backends_seen(mesh: Mesh) -> set[str]:
    pods = set()
    for _ in range(20):
        status, body = mesh.call_backend()
        if status == 200:
            pods.add(json.loads(body)["upstream"]["pod"])
    return pods


EXTRA_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: extra, namespace: default}
spec:
  selector: {app: backend}
  ports: [{name: http-extra, port: 7070, targetPort: 9080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: extra-1
  namespace: default
  labels: {kubernetes.io/service-name: extra}
addressType: IPv4
ports: [{name: http-extra, port: 9080}]
endpoints:
  - addresses: ["127.0.0.21"]
    targetRef: {kind: Pod, name: backend-0, namespace: default}
"""


def test_added_service_reaches_envoy_and_carries_traffic(mesh: Mesh) -> None:
    started = time.monotonic()
    path = write(mesh, "extra.yaml", EXTRA_SERVICE)
    try:
        wait_for(
            lambda: (
                "outbound|7070||extra.default.svc.cluster.local" in mesh.clusters_text("frontend-0")
            ),
            timeout=5,
            interval=0.01,
        )
        assert time.monotonic() - started < mesh.debounce + 1.0
        body = wait_for(lambda: get_ok("http://127.2.0.11:7070/x", host="extra"), timeout=10)
        assert json.loads(body)["pod"] == "backend-0"
    finally:
        path.unlink()
    wait_for(lambda: "outbound|7070||" not in mesh.clusters_text("frontend-0"), timeout=5)


def test_invalid_edit_is_refused_and_the_last_config_keeps_serving(mesh: Mesh) -> None:
    versions = _versions(mesh.dump("frontend-0"))
    path = write(
        mesh,
        "broken.yaml",
        """
apiVersion: v1
kind: Service
metadata: {name: broken, namespace: default}
spec:
  ports: [{name: http, port: notaport}]
""",
    )
    try:
        rejected = wait_for(
            lambda: [
                e
                for e in mesh.log_events()
                if e["event"] == "config.invalid" and e["file"] == "broken.yaml"
            ],
            timeout=5,
        )
        assert rejected[0]["field"] == "spec.ports[0].port"
        assert rejected[0]["document"] == 0
        assert "notaport" in rejected[0]["reason"]
        assert mesh.call_backend()[0] == 200
        assert _versions(mesh.dump("frontend-0")) == versions
    finally:
        path.unlink()


CANARY = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: canary, namespace: default}}
spec:
  hosts: [backend]
  http:
  - name: canary-route
    match: [{{uri: {{regex: "{regex}"}}}}]
    route: [{{destination: {{host: backend}}}}]
  - route: [{{destination: {{host: backend}}}}]
"""

THIRD_ENDPOINT = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-third
  namespace: default
  labels: {kubernetes.io/service-name: backend}
addressType: IPv4
ports: [{name: http, port: 9080}]
endpoints:
  - addresses: ["127.0.0.23"]
"""


def test_an_invalid_object_is_refused_alone_while_other_changes_reach_envoy(mesh: Mesh) -> None:
    # Two edits in one burst: a VirtualService whose regex RE2 (and so Envoy) refuses,
    # and a new endpoint. The endpoint must reach Envoy; the VirtualService must not.
    canary = write(mesh, "canary.yaml", CANARY.format(regex="/canary(?=x)"))
    third = write(mesh, "third.yaml", THIRD_ENDPOINT)
    try:
        wait_for(lambda: "127.0.0.23:9080" in mesh.clusters_text("frontend-0"), timeout=5)
        refused = [
            e
            for e in mesh.log_events()
            if e["event"] == "config.invalid" and e["file"] == "canary.yaml"
        ]
        assert refused and refused[-1]["object"] == "VirtualService default/canary"
        assert refused[-1]["field"] == "spec.http[0].match[0].uri.regex"
        assert refused[-1]["in_force"] == "nothing"
        assert "canary-route" not in json.dumps(mesh.dump("frontend-0"))
        canary.write_text(CANARY.format(regex="/canary.*"))  # fixed: it applies
        wait_for(lambda: "canary-route" in json.dumps(mesh.dump("frontend-0")), timeout=5)
        assert mesh.call_backend()[0] == 200
    finally:
        canary.unlink()
        third.unlink()
    wait_for(lambda: "127.0.0.23:9080" not in mesh.clusters_text("frontend-0"), timeout=5)
    wait_for(lambda: "canary-route" not in json.dumps(mesh.dump("frontend-0")), timeout=5)


def test_an_emptied_config_directory_leaves_envoy_its_clusters(mesh: Mesh, tmp_path: Path) -> None:
    versions = _versions(mesh.dump("frontend-0"))
    assert f"outbound|9080||{BACKEND}" in versions
    files = sorted(mesh.config.glob("*.yaml"))
    for f in files:
        f.rename(tmp_path / f.name)
    try:
        wait_for(
            lambda: any(e["event"] == "config.empty_refused" for e in mesh.log_events()),
            timeout=5,
        )
        time.sleep(mesh.debounce + 0.5)  # past any push the empty directory could cause
        assert _versions(mesh.dump("frontend-0")) == versions
        assert mesh.call_backend()[0] == 200
    finally:
        for f in files:
            (tmp_path / f.name).rename(f)
    wait_for(lambda: mesh.call_backend()[0] == 200, timeout=5)


def _versions(dump: dict[str, Any]) -> dict[str, str]:
    return {name: c["version_info"] for name, c in dynamic(dump, "clusters").items()}


CLASH = """
apiVersion: v1
kind: Service
metadata: {name: clash, namespace: default}
spec:
  selector: {app: nothing}
  ports: [{name: http, port: 7777}]
"""


def test_config_envoy_rejects_is_nacked_and_logged_with_envoys_error(mesh: Mesh) -> None:
    # Something else holds frontend's outbound address on port 7777, so frontend's
    # Envoy cannot bind the new listener and NACKs; backend's Envoy accepts it.
    with socket.socket() as squatter:
        squatter.bind(("127.2.0.11", 7777))
        squatter.listen()
        path = write(mesh, "clash.yaml", CLASH)
        try:
            nacks = wait_for(
                lambda: [e for e in mesh.log_events() if e["event"] == "xds.nack"], timeout=5
            )
            assert nacks[0]["node"] == mesh.pods["frontend-0"].node_id
            assert nacks[0]["type"] == "lds"
            assert "127.2.0.11:7777" in nacks[0]["error"]
            # The operator's view says the same: NACKED, with Envoy's message.
            shown = pyistiod_cli("proxy-status", "--monitoring-address",
                                 f"127.0.0.1:{mesh.ports.monitoring}")  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            rows = shown.stdout.split("\n\n")[0].splitlines()  # the table, before the NACKs
            (row,) = [r.split() for r in rows if r.startswith(mesh.pods["frontend-0"].node_id)]
            assert row[2] == "NACKED", shown.stdout  # NAME CDS LDS ...
            assert "LDS NACKED: " in shown.stdout and "127.2.0.11:7777" in shown.stdout
            syncz = fetch(f"127.0.0.1:{mesh.ports.monitoring}")
            (front,) = [p for p in syncz if p["proxy"] == mesh.pods["frontend-0"].node_id]
            assert "127.2.0.11:7777" in front["types"]["lds"]["nack"]["message"]
            listeners = dynamic(mesh.dump("backend-0"), "listeners")
            assert "127.2.0.21_7777" in listeners
            assert mesh.call_backend()[0] == 200
        finally:
            path.unlink()
    wait_for(
        lambda: "127.2.0.21_7777" not in dynamic(mesh.dump("backend-0"), "listeners"), timeout=5
    )
    assert mesh.call_backend()[0] == 200


def _warming(dump: dict[str, Any]) -> list[str]:
    for section in dump["configs"]:
        if section["@type"].endswith("ClustersConfigDump"):
            return [w["cluster"]["name"] for w in section.get("dynamic_warming_clusters", [])]
    return []


def test_cluster_only_change_does_not_leave_the_cluster_warming(mesh: Mesh) -> None:
    # http -> http2 changes only the cluster (HTTP/2 upstream); EDS stays the same, so
    # Envoy must finish warming the new cluster from what it already has.
    name = f"outbound|9080||{BACKEND}"
    services = mesh.config / "services.yaml"
    original = services.read_text()
    before = dynamic(mesh.dump("frontend-0"), "clusters")[name]["version_info"]
    services.write_text(
        original.replace("name: http\n      port: 9080", "name: http2\n      port: 9080")
    )
    try:

        def updated() -> bool:
            dump = mesh.dump("frontend-0")
            active = dynamic(dump, "clusters")[name]
            http2 = "http2_protocol_options" in json.dumps(active)
            return active["version_info"] != before and http2 and not _warming(dump)

        wait_for(updated, timeout=3)
    finally:
        services.write_text(original)
    wait_for(lambda: mesh.call_backend()[0] == 200, timeout=5)


def test_metrics_carry_istiods_names(mesh: Mesh) -> None:
    status, body = http_get(f"http://127.0.0.1:{mesh.ports.monitoring}/metrics")
    assert status == 200
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples["pilot_xds"] == 3  # frontend-0, backend-0, backend-1
    assert samples["pilot_proxy_convergence_time_count"] > 0
    assert samples['pilot_total_xds_rejects{type="lds"}'] >= 1
    assert samples['pilot_xds_pushes{type="eds"}'] > 0
    assert "# TYPE pilot_xds_pushes counter" in body and "pilot_xds_pushes_total" not in body
    assert samples["pilot_services"] == 3
    assert samples["pilot_debounce_time_count"] > 0
