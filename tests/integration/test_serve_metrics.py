"""``pyistiod serve`` as its own process: its metrics are right from the first load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pyistiod.cli import EXAMPLE_MESH
from pyistiod.local_mesh import free_port, http_get, stop_process, wait_for, wait_listening


def test_pilot_services_counts_the_first_load_before_any_change(tmp_path: Path) -> None:
    xds, monitoring = free_port(), free_port()
    argv = [sys.executable, "-m", "pyistiod.cli", "serve", "--config-dir", str(EXAMPLE_MESH),
            "--xds-address", f"127.0.0.1:{xds}",
            "--secure-xds-address", f"127.0.0.1:{free_port()}",
            "--monitoring-address", f"127.0.0.1:{monitoring}",
            "--ca-dir", str(tmp_path / "ca")]  # fmt: skip
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_listening(proc, xds, timeout=30)
            wait_for(lambda: http_get(f"http://127.0.0.1:{monitoring}/ready")[0] == 200, 10)
            body = http_get(f"http://127.0.0.1:{monitoring}/metrics")[1]
            samples = dict(line.rsplit(" ", 1) for line in body.splitlines() if line[:1] != "#")
            assert float(samples["pilot_services"]) == 3  # frontend, backend, backend-tcp
        finally:
            stop_process(proc)
