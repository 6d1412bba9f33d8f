"""``benchmarks.server_proc`` measures a server's whole process tree; ``mesh_gen`` spreads ports.

The tree tests start small child processes (``sh``, ``python -c``), no server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.mesh_gen import HTTP_PORT, Mesh
from benchmarks.server_proc import (
    cpu_seconds,
    memory_mb,
    process_count,
    process_tree,
    pss_mb,
    reset_peak,
)

# A parent with a child that has its own child: three processes.
_NESTED = "sleep 60 & sh -c 'sleep 60 & wait' & wait"


def _wait_count(pid: int, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while process_count(pid) < n:
        assert time.monotonic() < deadline, process_tree(pid)
        time.sleep(0.02)


@pytest.fixture
def nested() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sh", "-c", _NESTED], start_new_session=True)
    try:
        yield proc
    finally:
        for pid in reversed(process_tree(proc.pid)):
            subprocess.run(["kill", "-KILL", str(pid)], check=False)
        proc.wait(5)


def test_the_tree_holds_children_and_grandchildren(nested: subprocess.Popen[bytes]) -> None:
    # sh, sleep, sh, sleep: the inner sh and its sleep are a grandchild level.
    _wait_count(nested.pid, 4)
    tree = process_tree(nested.pid)
    assert tree[0] == nested.pid
    assert len(tree) == len(set(tree)) == 4


def test_memory_sums_every_process(nested: subprocess.Popen[bytes]) -> None:
    _wait_count(nested.pid, 4)
    rss, peak = memory_mb(nested.pid)
    own = [memory_mb(pid) for pid in process_tree(nested.pid)[1:]]
    assert rss > max(r for r, _ in own)
    assert peak >= rss
    assert reset_peak(nested.pid)
    assert pss_mb(nested.pid) <= rss + 1  # shared pages split, so at most the summed RSS


def test_cpu_counts_a_child_that_ended() -> None:
    # The child burns CPU and exits; the parent waits for it, then idles.
    child = "import time; end = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    parent = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {child!r}])\n"
        "print('done', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"done\n"
        assert process_count(proc.pid) == 1
        assert cpu_seconds(proc.pid) >= 0.35  # the ended child's CPU, via cutime
    finally:
        proc.kill()
        proc.wait(5)


def test_services_spread_over_k_ports() -> None:
    mesh = Mesh(10, service_ports=3)
    services = list(yaml.safe_load_all(mesh.services_yaml()))
    slices = list(yaml.safe_load_all(mesh.slices_yaml()))
    ports = [s["spec"]["ports"][0]["port"] for s in services]
    assert ports == [HTTP_PORT + i % 3 for i in range(10)]
    assert [s["ports"][0]["port"] for s in slices] == ports
    assert [s["spec"]["ports"][0]["port"] for s in yaml.safe_load_all(Mesh(4).services_yaml())] == [
        HTTP_PORT
    ] * 4


def test_service_ports_stay_below_the_added_port() -> None:
    with pytest.raises(ValueError, match="service_ports"):
        Mesh(10, service_ports=0)
    with pytest.raises(ValueError, match="service_ports"):
        Mesh(10, service_ports=2000)
