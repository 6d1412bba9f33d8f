"""A loopback mesh of pyistiod, two echo apps and their real Envoy 1.40 sidecars."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyistiod.cli import EXAMPLE_MESH
from pyistiod.demo import pods_of
from pyistiod.local_mesh import LocalMesh, Pod, Ports, config_dump, http_get, wait_for
from translators.file_source import load_dir

CERT_TTL = "6s"
"""Workload certificates live seconds here, so rotation happens while the tests run."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mesh:
    """The running mesh and what the tests need to reach it."""

    local: LocalMesh
    config: Path
    ports: Ports
    pods: dict[str, Pod]
    debounce: float

    def admin(self, pod: str) -> str:
        return f"{self.pods[pod].ip}:15000"

    def dump(self, pod: str) -> dict[str, Any]:
        return config_dump(self.admin(pod))

    def clusters_text(self, pod: str) -> str:
        return http_get(f"http://{self.admin(pod)}/clusters")[1]

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in (self.local.workdir / "pyistiod.log").read_text().splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def call_backend(self) -> tuple[int, str]:
        front = self.pods["frontend-0"]
        return http_get(f"http://{front.ip}:{front.http_port}/call/backend/9080/hello")


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("mesh")
    config = work / "config"
    shutil.copytree(EXAMPLE_MESH, config)
    pods = {p.name: p for p in pods_of(load_dir(config).model)}
    ports = Ports(free_port(), free_port(), free_port())
    m = Mesh(LocalMesh(work), config, ports, pods, debounce=0.1)
    try:
        m.local.start_pyistiod(config, ports, m.debounce, cert_ttl=CERT_TTL)
        wait_for(lambda: (work / "ca" / "token-key").exists(), timeout=10)
        for pod in pods.values():
            m.local.start_app(pod)
            m.local.start_sidecar(pod, ports)
        wait_for(lambda: m.call_backend()[0] == 200, timeout=30)
        yield m
    finally:
        m.local.stop()
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-3000:]}")
