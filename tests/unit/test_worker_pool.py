"""The worker pool's supervision, with stand-in workers (real processes, real channels)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
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


RECORDS_WHAT_IT_GETS = """
import asyncio, os, socket, sys
from pyistiod.worker_channel import Apply, Serving, Start, encode, receive
log = sys.argv[1]
async def main():
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=int(sys.argv[2])))
    first_run = not os.path.exists(log)
    start = await receive(reader)
    with open(log, "a") as f:
        f.write(f"start {len(start.model.services)}\\n")
    if first_run:
        writer.write(encode(Serving(1)))
        await writer.drain()
        sys.exit(3)  # exit at once: the replacement is the one under test
    await asyncio.sleep(1.0)  # a replacement still starting when a change comes
    writer.write(encode(Serving(2)))
    message = await receive(reader)
    with open(log, "a") as f:
        f.write(f"{type(message).__name__} {sorted(message.delta.replaced)}\\n")
asyncio.run(main())
"""


async def test_a_replacement_still_starting_gets_every_change_after_its_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    workers = pool(tmp_path, RECORDS_WHAT_IT_GETS)
    workers.count = 1
    workers.command = (*workers.command, str(log))
    model = load_dir(EXAMPLE_MESH).model
    await workers.start(model)
    running = asyncio.create_task(workers.run())
    try:
        for _ in range(100):  # the first exits; its replacement starts, slowly
            if log.exists() and log.read_text().count("start") == 2:
                break
            await asyncio.sleep(0.05)
        workers.apply_model(replace(model, services=model.services[1:]), 0.0)
        for _ in range(100):
            if "Apply" in log.read_text():
                break
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await workers.stop()
    assert log.read_text().splitlines() == ["start 3", "start 3", "Apply ['services']"]
