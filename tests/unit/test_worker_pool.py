"""The worker pool's supervision, with stand-in workers (real processes, real channels)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ca.authority import KeyKind
from ca.storage import load_ca
from pyistiod.cli import EXAMPLE_MESH
from pyistiod.settings import Settings
from pyistiod.worker_channel import BundlePem
from pyistiod.worker_pool import WorkerFailed, WorkerPool
from translators.sources.files import load_dir

SERVES_THEN_EXITS = """
import asyncio, socket, sys
from pyistiod.worker_channel import Serving, Start, encode, receive
async def main():
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=int(sys.argv[1])))
    assert isinstance(await receive(reader), Start)
    writer.write(encode(Serving(1)))
    await writer.drain()
asyncio.run(main())
sys.exit(3)
"""
EXITS_AT_ONCE = "import sys; sys.exit(4)"


def pool(tmp_path: Path, worker: str) -> WorkerPool:
    settings = Settings(xds_address="127.0.0.1:0", secure_xds_address="", ca_dir=tmp_path)
    bundle = load_ca(tmp_path, "cluster.local", datetime.now(UTC), KeyKind.ECDSA_P256)
    command = (sys.executable, "-c", worker)
    return WorkerPool(settings, 2, BundlePem.of(bundle), command=command)


async def test_a_worker_that_keeps_exiting_right_after_it_starts_stops_the_pool(
    tmp_path: Path,
) -> None:
    workers = pool(tmp_path, SERVES_THEN_EXITS)
    await workers.start(load_dir(EXAMPLE_MESH).model)
    try:
        assert workers.xds_port > 0 and len(workers.monitoring_ports()) == 2
        with pytest.raises(WorkerFailed, match=r"exited twice within 10 s .*exit code 3"):
            await asyncio.wait_for(workers.run(), 30)
    finally:
        await workers.stop()
    assert workers.held == []


async def test_a_worker_that_never_serves_fails_the_start_and_frees_the_ports(
    tmp_path: Path,
) -> None:
    workers = pool(tmp_path, EXITS_AT_ONCE)
    with pytest.raises(WorkerFailed, match=r"exited before serving \(exit code 4\)"):
        await workers.start(load_dir(EXAMPLE_MESH).model)
    assert workers.held == []
