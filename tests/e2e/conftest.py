"""A loopback mesh of pyistiod, two echo apps and their real Envoy 1.40 sidecars."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from loopback_mesh import CERT_TTL, E2E_WORKERS, Mesh

from pyistiod.cli import EXAMPLE_MESH
from pyistiod.demo import pods_of
from pyistiod.local_mesh import LocalMesh, Ports, free_port, wait_for
from translators.sources.files import load_dir


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("mesh")
    config = work / "config"
    shutil.copytree(EXAMPLE_MESH, config)
    pods = {p.name: p for p in pods_of(load_dir(config).model)}
    ports = Ports(free_port(), free_port(), free_port())
    m = Mesh(LocalMesh(work, workers=E2E_WORKERS), config, ports, pods, debounce=0.1)
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
