"""Bookinfo on loopback: pyistiod, an echo app and a real Envoy sidecar per pod."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator

import pytest
from bookinfo_mesh import EXAMPLES, EXTERNAL, Bookinfo
from loopback_mesh import E2E_WORKERS

from pyistiod.demo import pods_of
from pyistiod.local_mesh import LocalMesh, Ports, free_port, wait_for
from translators.sources.files import load_dir


@pytest.fixture(scope="package")
def bookinfo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bookinfo]:
    work = tmp_path_factory.mktemp("bookinfo")
    config = work / "config"
    shutil.copytree(EXAMPLES / "bookinfo", config)
    pods = {p.name: p for p in pods_of(load_dir(config).model)}
    ports = Ports(free_port(), free_port(), free_port())
    mesh = Bookinfo(LocalMesh(work, workers=E2E_WORKERS), config, ports, pods)
    try:
        mesh.local.start_pyistiod(config, ports, debounce=0.05)
        wait_for(lambda: (work / "ca" / "token-key").exists(), timeout=10)
        for pod in pods.values():
            mesh.local.start_app(pod)
            mesh.local.start_sidecar(pod, ports)
        mesh.local.spawn("app-external", [
            sys.executable, "-m", "pyistiod.echo_app", "--pod", "external",
            "--address", EXTERNAL[0], "--port", str(EXTERNAL[1])])  # fmt: skip
        wait_for(lambda: mesh.call("reviews")[0] == 200, timeout=30)
        yield mesh
    finally:
        mesh.local.stop()
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name} (tail)\n{log.read_text()[-2000:]}")
