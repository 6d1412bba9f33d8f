"""The pyistiod server under test, as a child process, and what /proc says about it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from pyistiod.local_mesh import free_port, stop_process, wait_listening

_TICKS: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (``/proc/PID/stat`` utime + stime)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of ``pid`` in MB: resident now, and its peak."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def reset_peak(pid: int) -> bool:
    """Reset ``pid``'s VmHWM to its current RSS (``clear_refs`` 5), so a phase's peak can be read.

    Returns False where the kernel or permissions do not allow it.
    """
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Server:
    """A running ``pyistiod serve``; ``stop()`` ends it (and its profiler, if any).

    ``profile(path)`` / ``end_profile()`` bracket one phase with py-spy, which
    writes collapsed stacks (``--format raw``) to ``path`` when it ends.
    """

    proc: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]
    profiler: subprocess.Popen[bytes] | None = None
    monitoring_port: int = 0
    """Its monitoring port (``/metrics``, ``/debug/syncz``)."""
    secure_port: int = 0
    """Its TLS xDS port (proxies with a workload token)."""
    ca_dir: Path | None = None
    """Its CA directory (to mint workload tokens from)."""

    @property
    def pid(self) -> int:
        """The server's process ID."""
        return self.proc.pid

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of its xDS server."""
        return f"127.0.0.1:{self.port}"

    def profile(self, out: Path) -> None:
        """Start sampling the server with py-spy (50 Hz, CPU only) into ``out``."""
        self.end_profile()
        exe = Path(sys.executable).with_name("py-spy")
        cmd = [str(exe), "record", "--pid", str(self.pid), "--format", "raw", "--rate", "50",
               "--output", str(out), "--nonblocking"]  # fmt: skip
        self.profiler = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # attach before the phase starts

    def end_profile(self) -> None:
        """Stop py-spy; SIGINT makes it write its output."""
        if self.profiler is not None:
            stop_process(self.profiler, signal.SIGINT)
            self.profiler = None

    def stop(self) -> None:
        """End the profiler, then the server: SIGINT, then SIGKILL after 10 s."""
        self.end_profile()
        stop_process(self.proc, signal.SIGINT)
        self.log.close()


def start_server(
    config_dir: Path,
    debounce_after: float,
    log_path: Path,
    timeout: float = 60.0,
) -> Server:
    """Start ``pyistiod serve`` on free loopback ports and wait until xDS accepts connections."""
    port, monitoring, secure = free_port(), free_port(), free_port()
    cmd = [
        sys.executable, "-m", "pyistiod.cli", "serve",
        "--config-dir", str(config_dir),
        "--xds-address", f"127.0.0.1:{port}",
        "--monitoring-address", f"127.0.0.1:{monitoring}",
        "--secure-xds-address", f"127.0.0.1:{secure}",
        "--ca-dir", str(log_path.parent / "ca"),
        "--debounce-after", str(debounce_after),
        "--log-level", "warning",
    ]  # fmt: skip
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = Server(
        proc, port, log, monitoring_port=monitoring, secure_port=secure,
        ca_dir=log_path.parent / "ca",
    )  # fmt: skip
    try:
        wait_listening(proc, port, timeout)
    except BaseException:
        server.stop()
        raise
    return server
