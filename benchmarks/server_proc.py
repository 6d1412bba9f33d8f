"""The pyistiod server under test, as a child process, and what /proc says about it."""

from __future__ import annotations

import functools
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from pyistiod.local_mesh import free_port, stop_process, wait_listening

_TICKS: Final = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now, parents before children.

    Children come from ``/proc/PID/task/TID/children`` of every thread (a child
    is listed under the thread that forked it). A process that ends meanwhile
    is skipped; ``pid`` itself is always listed first.
    """
    tree, i = [pid], 0
    while i < len(tree):
        for task in _listdir(Path(f"/proc/{tree[i]}/task")):
            try:
                text = (task / "children").read_text()
            except OSError:
                continue
            tree.extend(int(child) for child in text.split() if int(child) not in tree)
        i += 1
    return tree


def _listdir(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid``'s process tree so far, in seconds.

    The sum over ``pid`` and its live descendants (``process_tree``) of
    ``/proc/PID/stat`` utime + stime + cutime + cstime: the last two hold the
    descendants that already ended and were waited for, so a worker that exits
    mid-phase is still counted. With one process this is its own CPU time.
    """
    texts = _tree_files(pid, "stat")
    if texts is None:
        raise ProcessLookupError(pid)
    total = 0
    for stat in texts:
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15])
    return total / _TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """``(RSS, peak)`` of ``pid``'s process tree in MB.

    RSS is the sum of every process's VmRSS now. Pages shared between the
    processes (the interpreter and extension modules each worker maps) count
    once per process, so with several processes it overstates the memory used
    (``pss_mb`` counts shared pages fairly).

    Peak is the sum of every process's own VmHWM: an upper bound of the tree's
    peak, since the processes need not peak at the same moment (and a process
    that ended is missing from it). With one process both are exact.
    """
    texts = _tree_files(pid, "status")
    if texts is None:
        raise ProcessLookupError(pid)
    rss = _kb_lines_mb(texts, "VmRSS:")  # a zombie has no memory lines
    peak = _kb_lines_mb(texts, "VmHWM:")
    return rss, peak


def pss_mb(pid: int) -> float:
    """Proportional set size of ``pid``'s process tree in MB (``smaps_rollup`` Pss, summed).

    Each shared page is split between the processes mapping it, so unlike the
    summed RSS of ``memory_mb`` this does not count the interpreter's shared
    pages once per worker. NaN where ``smaps_rollup`` cannot be read.
    """
    texts = _tree_files(pid, "smaps_rollup")
    return math.nan if texts is None else _kb_lines_mb(texts, "Pss:")


def _tree_files(pid: int, name: str) -> list[str] | None:
    """``/proc/PROC/<name>`` of every process of ``pid``'s tree; None if ``pid``'s own
    cannot be read. A descendant that ended since it was listed is left out."""
    texts = []
    for proc in process_tree(pid):
        try:
            texts.append(Path(f"/proc/{proc}/{name}").read_text())
        except OSError:
            if proc == pid:
                return None
    return texts


def _kb_lines_mb(texts: list[str], key: str) -> float:
    """The sum, in MB, of the ``key  N kB`` lines of ``texts``."""
    return sum(
        int(line.split()[1]) / 1024
        for text in texts
        for line in text.splitlines()
        if line.startswith(key)
    )


def process_count(pid: int) -> int:
    """How many processes ``pid``'s tree holds now (itself included)."""
    return len(process_tree(pid))


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``clear_refs`` 5) for every process of ``pid``'s tree.

    Afterwards ``memory_mb`` reads the peak of the phase that follows. Returns
    False where the kernel or permissions do not allow it for some process.
    """
    ok = True
    for proc in process_tree(pid):
        try:
            Path(f"/proc/{proc}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


@functools.cache
def serve_takes_workers() -> bool:
    """Whether this ``pyistiod serve`` has ``--workers`` (read once from its ``--help``)."""
    out = subprocess.run(
        [sys.executable, "-m", "pyistiod.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "--workers" in out.stdout


def workers_args(workers: int) -> list[str]:
    """The ``serve`` arguments for ``workers`` xDS processes.

    Always explicit where serve has ``--workers`` (its default is the number of
    cores, which would change what a benchmark measures from one machine to the
    next). A serve without the flag is one process: ``workers == 1`` then needs
    no flag, and more raise rather than measure one process under another name.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if serve_takes_workers():
        return ["--workers", str(workers)]
    if workers == 1:
        return []
    raise RuntimeError(f"this pyistiod serve has no --workers; cannot run {workers} workers")


@dataclass
class Server:
    """A running ``pyistiod serve``; ``stop()`` ends it (and its profiler, if any).

    ``profile(path)`` / ``end_profile()`` bracket one phase with py-spy, which
    writes collapsed stacks (``--format raw``) to ``path`` when it ends. With
    several workers, ``pid`` is the supervisor: measure it with the tree-wide
    functions above (``cpu_seconds``, ``memory_mb``, ``reset_peak``).
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
    workers: int = 1
    """Its xDS worker processes (``serve --workers``)."""

    @property
    def pid(self) -> int:
        """The server's process ID (the supervisor, with several workers)."""
        return self.proc.pid

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of its xDS server."""
        return f"127.0.0.1:{self.port}"

    def profile(self, out: Path) -> None:
        """Start sampling the server with py-spy (50 Hz, CPU only) into ``out``.

        ``--subprocesses`` samples its worker processes too (their stacks are
        told apart by the process line py-spy puts at their root).
        """
        self.end_profile()
        exe = Path(sys.executable).with_name("py-spy")
        cmd = [str(exe), "record", "--pid", str(self.pid), "--subprocesses", "--format", "raw",
               "--rate", "50", "--output", str(out), "--nonblocking"]  # fmt: skip
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
    workers: int = 1,
) -> Server:
    """Start ``pyistiod serve`` on free loopback ports and wait until xDS accepts connections.

    ``workers`` xDS processes (``serve --workers``, passed explicitly: see ``workers_args``).
    """
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
        *workers_args(workers),
    ]  # fmt: skip
    return _launch(
        cmd, port, log_path, timeout, monitoring_port=monitoring, secure_port=secure,
        ca_dir=log_path.parent / "ca", workers=workers,
    )  # fmt: skip


def start_floor(
    config_dir: Path, debounce_after: float, log_path: Path, timeout: float = 60.0
) -> Server:
    """Start ``benchmarks.floor_server`` (the transport floor) on a free loopback port and
    wait until it accepts connections."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "benchmarks.floor_server",
        "--config-dir", str(config_dir),
        "--xds-address", f"127.0.0.1:{port}",
        "--debounce-after", str(debounce_after),
    ]  # fmt: skip
    return _launch(cmd, port, log_path, timeout)


def _launch(cmd: list[str], port: int, log_path: Path, timeout: float, **fields: Any) -> Server:
    """Run ``cmd`` (a server on ``port``, logging to ``log_path``) and wait until it accepts
    connections and has all its workers; stopped again if that fails. ``fields``: the
    ``Server``'s other fields."""
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = Server(proc, port, log, **fields)
    try:
        started = time.monotonic()
        wait_listening(proc, port, timeout)
        _wait_workers(server, started + timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_workers(server: Server, deadline: float) -> None:
    """With several workers, wait until the supervisor has all of them as children.

    The port accepts connections as soon as one worker listens; a storm started
    then would land on the first workers only. (Whether each child has bound
    the port yet, the process tree cannot tell.)
    """
    if server.workers == 1:
        return
    while process_count(server.pid) < server.workers + 1:
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"pyistiod serve has {process_count(server.pid) - 1} of its "
                f"{server.workers} worker processes (exit code {server.proc.poll()})"
            )
        time.sleep(0.1)
