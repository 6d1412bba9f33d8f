"""``benchmarks.envoy_check`` on a tiny mesh: real Envoys and simulated proxies agree.

Starts ``pyistiod serve`` and three real Envoys, so it is marked e2e.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# ``benchmarks`` is not an installed package; pytest puts only tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import envoy_check

pytestmark = pytest.mark.e2e


def test_envoys_converge_and_report_the_simulated_versions() -> None:
    cfg = envoy_check.CheckConfig(
        services=10, envoys=3, ready_timeout=15, change_timeout=8, run_timeout=40
    )
    result = envoy_check.run(cfg, progress=False)

    initial = result["initial"]["versions"]
    assert initial["all_same"], initial
    for name in ("endpoint", "route"):
        change = result["changes"][name]
        assert change["envoy"]["converged"] == 3, change["envoy"]
        assert change["simulated"]["converged"] == 3, change["simulated"]
        assert change["envoy"]["latency"]["max"] < cfg.change_timeout
        versions = change["versions"]
        assert versions["rejected_total"] == 0, versions
        for t in envoy_check.COMPARED:
            (expected,) = versions["simulated"][t]
            assert expected, t
            assert [e["versions"][t] for e in versions["envoys"]] == [expected] * 3, t
    changed = result["changes"]
    assert changed["route"]["versions"]["simulated"]["cds"] != initial["simulated"]["cds"]
    assert changed["endpoint"]["versions"]["simulated"]["eds"] != initial["simulated"]["eds"]
    assert envoy_check.ok(result)
    assert "| endpoint |" in envoy_check.table(result)


def test_node_ids_and_regex_escaping() -> None:
    assert (
        envoy_check.envoy_node_id(7)
        == "sidecar~127.0.4.7~envoy-7.default~default.svc.cluster.local"
    )
    assert envoy_check._regex("outbound|80||a.b") == r"outbound\|80\|\|a\.b"
