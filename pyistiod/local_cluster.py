"""A real kube-apiserver and etcd on loopback, for the tests and benchmarks of Kubernetes mode.

The binaries come from the environment (``KUBE_APISERVER``, ``ETCD``; ``.ci/run``
sets them when it finds them); without them the tests that need a cluster skip,
saying why, and the benchmark says what it needs. The API server runs as a
bare control plane: no controller-manager, scheduler or kubelet, so tests
create what those would (ServiceAccounts, EndpointSlices, Pod status).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pyistiod.local_mesh import free_port

MISSING = (
    "needs a real kube-apiserver and etcd: set KUBE_APISERVER and ETCD to their paths "
    "(.ci/run does when it finds them)"
)


def binaries() -> tuple[str, str] | None:
    """The (kube-apiserver, etcd) paths from the environment, if both are set and exist."""
    kas, etcd = os.environ.get("KUBE_APISERVER", ""), os.environ.get("ETCD", "")
    if kas and etcd and Path(kas).exists() and Path(etcd).exists():
        return kas, etcd
    return None


@dataclass
class KubeCluster:
    """A running etcd + kube-apiserver pair and the admin credentials to reach it."""

    workdir: Path
    port: int
    token: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    argv: dict[str, list[str]] = field(default_factory=dict)
    etcd_port: int = 0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def start(self, kas: str, etcd: str, timeout: float = 60.0) -> None:
        """Start etcd, then the API server; return once ``/readyz`` says ok."""
        etcd_port, peer_port = free_port(), free_port()
        self.etcd_port = etcd_port
        self._spawn(
            "etcd",
            [
                etcd,
                "--name=default",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
            ],
        )
        self._write_credentials()
        self._spawn(
            "kube-apiserver",
            [
                kas,
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--advertise-address=127.0.0.1",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=RBAC",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self.workdir / 'sa.pub'}",
                f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
                f"--cert-dir={self.workdir / 'certs'}",
                "--enable-priority-and-fairness=false",
                "--endpoint-reconciler-type=none",
                # ConfigMaps (which pyistiod does not watch) bypass the watch cache, so a
                # test can make a resource version too old with compact_etcd: 410 Gone.
                "--watch-cache-sizes=configmaps#0",
            ],
        )
        self._wait_ready(timeout)

    def stop(self) -> None:
        """Stop both processes (TERM, then KILL after 10 s)."""
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def restart_apiserver(self, timeout: float = 60.0) -> None:
        """Stop the API server (etcd keeps its data) and start it again; wait until ready."""
        apiserver = self.procs.pop()
        apiserver.terminate()  # it waits for open watches to end; do not wait long for it
        try:
            apiserver.wait(3)
        except subprocess.TimeoutExpired:
            apiserver.kill()
            apiserver.wait()
        self._spawn("kube-apiserver", self.argv["kube-apiserver"])
        self._wait_ready(timeout)

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now (as the API server does every 5 minutes), so a
        watch from an older resource version is answered 410 Gone; the revision compacted."""
        base = f"http://127.0.0.1:{self.etcd_port}/v3/kv"
        revision = int(_post_json(f"{base}/range", {"key": "AA=="})["header"]["revision"])
        _post_json(f"{base}/compaction", {"revision": revision, "physical": True})
        return revision

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.argv[name] = argv
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs.append(
            subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        )

    def _write_credentials(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.workdir / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (self.workdir / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (self.workdir / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        self.write_kubeconfig(self.kubeconfig, "admin", self.token)

    def write_kubeconfig(self, path: Path, user: str, token: str) -> Path:
        """A kubeconfig at ``path`` reaching this API server as ``user`` with ``token``."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: local\n  cluster:\n    server: {self.server}\n"
            "    insecure-skip-tls-verify: true\n"
            f"users:\n- name: {user}\n  user:\n    token: {token}\n"
            f"contexts:\n- name: local\n  context: {{cluster: local, user: {user}}}\n"
            "current-context: local\n"
        )
        return path

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.token}"}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc, name in zip(self.procs, ("etcd", "kube-apiserver"), strict=False):
                if proc.poll() is not None:
                    tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as response:
                    if response.read() == b"ok":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"kube-apiserver not ready after {timeout:.0f} s")


def start_cluster(workdir: Path) -> KubeCluster:
    """A started cluster in ``workdir``; raises ``LookupError`` when the binaries are missing."""
    found = binaries()
    if found is None:
        raise LookupError(MISSING)
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = KubeCluster(workdir, free_port(), secrets.token_hex(16))
    try:
        cluster.start(*found)
    except BaseException:
        cluster.stop()
        raise
    return cluster


CRDS = Path(__file__).resolve().parents[1] / "deploy" / "crds.yaml"
"""Istio's kinds as CRDs, as ``deploy/`` installs them."""


async def install_istio(api: Any, system_namespace: str = "istio-system") -> None:
    """Istio's CRDs and istiod's namespace, as an installed cluster has them.

    ``api`` is a kubernetes-asyncio ``ApiClient`` (imported here only, like the
    client itself, so the file mode never loads it).
    """
    import yaml
    from kubernetes_asyncio import client

    namespace: Any = {"metadata": {"name": system_namespace}}
    await client.CoreV1Api(api).create_namespace(namespace)
    ext = client.ApiextensionsV1Api(api)
    crds = [crd for crd in yaml.safe_load_all(CRDS.read_text()) if crd]
    for crd in crds:
        await ext.create_custom_resource_definition(crd)
    for crd in crds:
        await wait_established(api, crd["metadata"]["name"])


async def wait_established(api: Any, name: str, timeout: float = 10.0) -> None:
    """Wait until the API server serves the CRD ``name``."""
    from kubernetes_asyncio import client

    ext = client.ApiextensionsV1Api(api)
    async with asyncio.timeout(timeout):
        while True:
            got = await ext.read_custom_resource_definition(name)
            conditions = got.status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                return
            await asyncio.sleep(0.1)


def _post_json(url: str, body: dict[str, object]) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result
