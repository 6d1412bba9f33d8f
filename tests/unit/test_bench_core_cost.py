"""``benchmarks.core_cost`` runs both protocol variants and writes what it measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import core_cost


def test_both_variants_are_measured_and_written(tmp_path: Path) -> None:
    out = tmp_path / "core.json"
    core_cost.main(["--names", "50", "--streams", "20", "--repeats", "1", "--json", str(out)])
    results = json.loads(out.read_text())["results"]
    assert (results["names"], results["streams"]) == (50, 20)
    assert results["sotw_us_per_stream"] > 0 and results["delta_us_per_stream"] > 0


def test_each_stream_is_sent_every_endpoint_it_subscribed_to() -> None:
    names = [f"n{i}" for i in range(30)]
    snap = core_cost.snapshot(names)
    for run in (core_cost.sotw_stream, core_cost.delta_stream):
        shared = core_cost.SharedResponses(b"")
        first, second = (run(shared, snap, names) for _ in range(2))
        assert sorted(r.name for r in first.resources) == sorted(names)
        assert second.nonce == first.nonce  # the second stream shares the first's response
