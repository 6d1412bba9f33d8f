"""Smoke test of ``benchmarks.push_latency``: a tiny mesh end to end, both xDS variants.

Starts ``pyistiod serve`` and load-worker processes, so it is marked e2e.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import push_latency, report

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("mode", "ports"), [("sotw", 1), ("delta", 1), ("sotw", 3)])
def test_push_latency_smoke(mode: str, ports: int, tmp_path: Path) -> None:
    # ports=3: three route configurations per proxy, the VS edit changes one of them.
    cfg = push_latency.RunConfig(
        services=20,
        proxies=10,
        mode=mode,
        service_ports=ports,
        load_workers=2,
        storm_timeout=20,
        change_timeout=10,
        run_timeout=60,
    )
    result = push_latency.run(cfg, progress=False)

    assert (result["server_workers"], result["service_ports"]) == (1, ports)
    assert result["server_processes"] == 1
    assert result["pss_mb"]["steady"] > 0
    assert len(result["load_average"]["start"]) == 3
    assert result["storm"]["converged"] == 10
    assert result["storm"]["error_count"] == 0
    assert result["storm"]["seconds"] > 0
    changes = (("endpoint", ["eds"]), ("vs", ["rds"]), ("route", ["cds", "eds", "lds", "rds"]))
    for name, types in changes:
        change = result["changes"][name]
        assert change["converged"] == 10, change
        assert change["types"] == types
        assert set(change["latency"]) == {"p50", "p90", "p99", "max", "mean"}
        assert change["latency"]["p50"] >= cfg.debounce_after
        assert change["bytes_per_proxy"]["p50"] > 0
        assert change["server_cpu_s"] >= 0
    assert 0 < result["rss_mb"]["steady"] <= result["rss_mb"]["peak"]

    out = tmp_path / "out.json"
    report.write_json(out, {"runs": [result]})
    assert json.loads(out.read_text())["runs"][0]["proxies"] == 10
    assert mode in report.table([result])
    assert ("K=3 ports" in report.table([result])) == (ports == 3)


def test_percentile() -> None:
    assert report.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert report.percentile([5.0], 99) == 5.0
    assert report.summarize([1.0, 3.0])["max"] == 3.0
