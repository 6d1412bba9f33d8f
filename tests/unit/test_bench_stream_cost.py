"""``benchmarks.stream_cost`` wires simulated proxies to the server's streams without gRPC,
and every proxy really receives each change it measures."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import stream_cost
from benchmarks.mesh_gen import ROUTES_FILE, SLICES_FILE, Mesh, prepare, write_atomically
from benchmarks.sim_proxy import STORM_TYPES, SotwProxy, node_id
from translators.sources.files import load_dir
from xds_server import types


@pytest.fixture(autouse=True)
def _short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_cost, "WAIT_S", 20.0)


def test_both_variants_are_measured_and_written(tmp_path: Path) -> None:
    for mode in ("sotw", "delta"):
        out = tmp_path / f"{mode}.json"
        args = ["--services", "20", "--proxies", "6", "--repeats", "1", "--mode", mode]
        stream_cost.main([*args, "--json", str(out)])
        results = json.loads(out.read_text())["results"]
        assert (results["mode"], results["proxies"]) == (mode, 6)
        for key in ("storm", "endpoint", "vs", "disconnect", "endpoint_apply", "vs_apply"):
            assert results[f"{key}_us_per_proxy"] > 0


@pytest.mark.parametrize("delta", [False, True])
def test_every_proxy_holds_each_change_the_server_published(delta: bool) -> None:
    async def run() -> None:
        workdir, config_dir, mesh = prepare(20, "stream-cost-test-")
        try:
            await exercise(config_dir, mesh)
        finally:
            shutil.rmtree(workdir)

    async def exercise(config_dir: Path, mesh: Mesh) -> None:
        bench = stream_cost.Bench(load_dir(config_dir).model, 5, delta)
        await bench.storm()
        assert all(p.acked >= STORM_TYPES for p in bench.proxies)
        for file, edit, type_url in (
            (SLICES_FILE, mesh.move_endpoint, types.ENDPOINT),
            (ROUTES_FILE, mesh.edit_timeout, types.ROUTE),
        ):
            write_atomically(config_dir / file, edit(0))
            applied, total = await bench.change(load_dir(config_dir).model, [type_url])
            assert 0 < applied < total
            for i, proxy in enumerate(bench.proxies):
                assert type_url in proxy.converged
                snapshot = bench.cache.snapshot(node_id(i))
                assert snapshot is not None
                if isinstance(proxy, SotwProxy):
                    assert proxy.versions[type_url] == snapshot.version(type_url)
        await bench.stop()
        assert bench.registry.nodes == {}

    asyncio.run(run())
