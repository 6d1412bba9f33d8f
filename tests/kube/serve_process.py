"""``pyistiod serve --kubeconfig`` as its own process, for the tests that drive it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from pyistiod.local_cluster import KubeCluster
from pyistiod.local_mesh import free_port, stop_process, wait_listening


@contextlib.contextmanager
def serve_process(
    cluster: KubeCluster,
    workdir: Path,
    *extra: str,
    secure_port: int = 0,
    kubeconfig: Path | None = None,
) -> Iterator[int]:
    """Start serve on a free plain xDS port (and ``secure_port`` for TLS, if given); yield
    the plain port once it listens; SIGTERM it after. ``kubeconfig`` defaults to the admin's."""
    port = free_port()
    secure = f"127.0.0.1:{secure_port}" if secure_port else ""
    config = str(kubeconfig or cluster.kubeconfig)
    argv = [
        *(sys.executable, "-m", "pyistiod.cli", "serve", "--kubeconfig", config),
        *("--xds-address", f"127.0.0.1:{port}", "--secure-xds-address", secure),
        *("--monitoring-address", "", "--ca-dir", str(workdir / "ca")),
        *("--debounce-after", "0.05", "--log-level", "debug", "--workers", "2", *extra),
    ]
    log = workdir / "pyistiod.log"
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        try:
            wait_listening(proc, port, timeout=30)
        except (RuntimeError, TimeoutError) as err:
            raise AssertionError(f"{err}\n{log.read_text()[-3000:]}") from err
        yield port
    finally:
        stop_process(proc, grace=20)
