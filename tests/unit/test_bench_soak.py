"""Smoke test of ``benchmarks.soak``: a few seconds, a handful of proxies, every behaviour.

Starts ``pyistiod serve`` and a load-worker process, so it is marked e2e.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import report, soak
from benchmarks.soak_worker import SoakMix

pytestmark = pytest.mark.e2e


def test_soak_smoke(tmp_path: Path) -> None:
    mix = SoakMix(churn=0.3, nack=0.15, slow=0.15, stuck=0.1, churn_period=3.0, slow_delay=0.2)
    cfg = soak.SoakConfig(
        proxies=10,
        minutes=0.15,
        services=20,
        change_every=1.5,
        sample_every=0.5,
        warmup=2.0,
        workers=1,
        mix=mix,
    )
    result = soak.run(cfg, progress=False)

    assert set(result["roles"]) == {"steady", "churn", "nack", "slow", "stuck"}
    expected = cfg.proxies - result["roles"]["stuck"]  # the stuck ones never hold a config
    assert result["storm"]["synced"] == result["storm"]["expected"] == expected
    assert len(result["samples"]) >= 10
    for sample in result["samples"]:
        assert set(sample) == {"t", "rss_mb", "cpu_percent", "streams", "load_avg_1m"}
        assert sample["rss_mb"] > 0
    assert any(s["streams"] == 10 for s in result["samples"])  # the stuck ones are held too
    changes = result["changes"]
    assert len(changes) >= 4
    assert {c["kind"] for c in changes} >= {"endpoint", "port+"}
    converged = [c for c in changes if c["all_converged_s"] is not None]
    assert converged, changes
    assert all(c["all_converged_s"] >= cfg.debounce_after for c in converged)
    assert all(c["client_errors"] == 0 for c in changes), changes
    summary = result["summary"]
    assert summary["changes"] == len(changes)
    assert summary["changes_converged"] >= 1
    assert summary["rss_end_of_warmup_mb"] > 0 and summary["rss_slope_mb_per_min"] is not None
    assert summary["verdict"].startswith("memory ")
    assert isinstance(summary["memory_flat"], bool)

    out = tmp_path / "soak.json"
    report.write_json(out, {"benchmark": "soak", **result})
    assert json.loads(out.read_text())["summary"]["verdict"] == summary["verdict"]
    soak.plot(result, tmp_path / "soak.png")
    assert (tmp_path / "soak.png").stat().st_size > 10_000


def test_flatness_is_judged_after_warmup() -> None:
    cfg = soak.SoakConfig(minutes=4, warmup=60)
    flat = [{"t": 30.0 * i, "rss_mb": 300.0 if i < 2 else 200.0 + i % 2, "load_avg_1m": 1.0}
            for i in range(9)]  # fmt: skip
    judged = soak.summarize(cfg, flat, [])
    assert judged["memory_flat"] and judged["rss_end_of_warmup_mb"] == 200.5
    growing = [{"t": 30.0 * i, "rss_mb": 200.0 + 10 * i, "load_avg_1m": 1.0} for i in range(9)]
    judged = soak.summarize(cfg, growing, [])
    assert not judged["memory_flat"]
    assert judged["rss_slope_mb_per_min"] == 20.0
    assert "NOT FLAT" in judged["verdict"]
