"""Summaries of push-latency runs: percentiles, a text table, JSON and a PNG plot."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of ``values``, rounded to the millisecond (or byte)."""
    return {
        "p50": round(percentile(values, 50), 4),
        "p90": round(percentile(values, 90), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4) if values else math.nan,
        "mean": round(sum(values) / len(values), 4) if values else math.nan,
    }


def machine() -> dict[str, Any]:
    """The machine the numbers come from."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def load_average() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages now."""
    return [round(x, 2) for x in os.getloadavg()]


def shape(run: dict[str, Any]) -> str:
    """The server's shape in a run: ``1 worker`` / ``2 workers``, and ``K=10 ports`` if K > 1;
    ``floor, ...`` for ``benchmarks.floor_server`` (``push_latency --server floor``).

    Runs recorded before these parameters existed had one process and one port.
    """
    workers = run.get("server_workers", 1)
    text = f"{workers} worker" + ("s" if workers != 1 else "")
    if run.get("server", "pyistiod") != "pyistiod":
        text = f"{run['server']}, {text}"
    ports = run.get("service_ports", 1)
    return text + (f", K={ports} ports" if ports != 1 else "")


def revision() -> dict[str, Any]:
    """The git commit measured, and which server files differed from it (others edit live)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        except OSError:
            return ""
        return out.stdout.strip()

    dirty = git("status", "--porcelain", "--", "pyistiod", "xds_server", "translators")
    return {"commit": git("rev-parse", "HEAD"), "dirty": dirty.splitlines()}


def _s(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def table(runs: Sequence[dict[str, Any]]) -> str:
    """A Markdown table with one row per run, in the layout of the README's benchmark tables."""
    lines = [
        "| mode | services | proxies | connect storm | endpoint change p50 / p99 | "
        "VS edit (RDS) p50 / p99 | route change p50 / p99 | server peak RSS | steady RSS | "
        "CPU endpoint / VS / route |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        ep, rt = r["changes"]["endpoint"], r["changes"]["route"]
        vs = r["changes"].get("vs")
        storm = _s(r["storm"]["seconds"]) + " s"
        if r["storm"]["converged"] < r["proxies"]:
            storm += f" ({r['storm']['converged']}/{r['proxies']})"
        lines.append(
            f"| {r['mode']} ({shape(r)}) | {r['services']} | {r['proxies']} | {storm} | "
            f"{_change(ep, r['proxies'])} | {_change(vs, r['proxies']) if vs else '-'} | "
            f"{_change(rt, r['proxies'])} | "
            f"{r['rss_mb']['peak']:.0f} MB | {r['rss_mb']['steady']:.0f} MB | "
            f"{_s(ep['server_cpu_s'])} / {_s(vs['server_cpu_s']) if vs else '-'} / "
            f"{_s(rt['server_cpu_s'])} s |"
        )
    return "\n".join(lines)


def _change(change: dict[str, Any], proxies: int) -> str:
    text = f"{_s(change['latency']['p50'])} / {_s(change['latency']['p99'])} s"
    if change["converged"] < proxies:
        text += f" ({change['converged']}/{proxies})"
    return text


def write_results(path: Path, benchmark: str, results: Any) -> None:
    """Write a measurement script's ``results`` with the machine, the revision and the
    load average they were measured at."""
    document = {
        "benchmark": benchmark,
        "machine": machine(),
        "revision": revision(),
        "load_average": load_average(),
        "results": results,
    }
    write_json(path, document)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON (NaN becomes null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_nan_to_none(document), indent=2) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def plot(runs: Sequence[dict[str, Any]], path: Path) -> None:
    """Convergence p50/p99 vs proxies (per change, mode and S) and server RSS vs proxies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len({r["proxies"] for r in runs}) == 1:
        _bars(runs, path, plt)
        return
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in runs:
        series.setdefault((r["mode"], r["services"], shape(r)), []).append(r)
    for (mode, services, server), rs in sorted(series.items()):
        rs = sorted(rs, key=lambda r: r["proxies"])
        params = f"{mode}, S={services}, {server}"
        xs = [r["proxies"] for r in rs]
        for change, marker in (("endpoint", "o"), ("vs", "^"), ("route", "s")):
            if not all(change in r["changes"] for r in rs):
                continue  # runs recorded before the VS edit existed
            for q, style in (("p50", "-"), ("p99", "--")):
                ys = [r["changes"][change]["latency"][q] for r in rs]
                label = f"{change} {q} ({params})"
                lat.plot(xs, ys, style, marker=marker, label=label)
        mem.plot(xs, [r["rss_mb"]["peak"] for r in rs], "-o", label=f"peak ({params})")
        mem.plot(xs, [r["rss_mb"]["steady"] for r in rs], "--o", label=f"steady ({params})")
    lat.set(xlabel="proxies", ylabel="convergence (s)", title="one change: time to converge")
    mem.set(
        xlabel="proxies",
        ylabel="server RSS (MB)",
        title="pyistiod resident memory (all its processes; peak: sum of each one's)",
    )
    for ax in (lat, mem):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    shapes = sorted({shape(r) for r in runs})
    fig.suptitle(
        f"pyistiod push latency ({'; '.join(shapes)}; {os.cpu_count()} CPUs, "
        "load generator on the same host)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(runs: Sequence[dict[str, Any]], path: Path, plt: Any) -> None:
    """One proxy count: per setup (mode, server shape), the median of its runs as a bar and
    their range as a whisker, for the storm, each change's p99 and the peak RSS."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(f"{r['mode']}, {shape(r)}", []).append(r)
    metrics: list[tuple[str, Callable[[dict[str, Any]], float]]] = [
        ("storm", lambda r: r["storm"]["seconds"]),
        ("endpoint p99", lambda r: r["changes"]["endpoint"]["latency"]["p99"]),
        ("VS edit p99", lambda r: r["changes"]["vs"]["latency"]["p99"]),
        ("new port p99", lambda r: r["changes"]["route"]["latency"]["p99"]),
    ]
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(groups)
    for i, (label, rs) in enumerate(sorted(groups.items())):
        for ax, chosen in ((lat, metrics), (mem, [("peak RSS", _peak)])):
            values = [[get(r) for r in rs] for _, get in chosen]
            mids = [statistics.median(v) for v in values]
            errors = [[m - min(v) for m, v in zip(mids, values, strict=True)],
                      [max(v) - m for m, v in zip(mids, values, strict=True)]]  # fmt: skip
            xs = [x + i * width for x in range(len(chosen))]
            ax.bar(xs, mids, width, yerr=errors, capsize=3, label=f"{label} ({len(rs)} runs)")
            ax.set_xticks([x + width * (len(groups) - 1) / 2 for x in range(len(chosen))])
            ax.set_xticklabels([name for name, _ in chosen])
    lat.set(ylabel="seconds", title=f"P = {runs[0]['proxies']}, S = {runs[0]['services']}")
    mem.set(ylabel="MB", title="server peak RSS (all its processes)")
    for ax in (lat, mem):
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"pyistiod push latency: median and range ({os.cpu_count()} CPUs, load "
                 "generator on the same host)")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _peak(run: dict[str, Any]) -> float:
    return float(run["rss_mb"]["peak"])


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report OUT.png RESULT.json...``: one table and plot of many files."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    p.add_argument("plot", type=Path)
    p.add_argument("results", type=Path, nargs="+")
    a = p.parse_args(argv)
    runs = [r for f in a.results for r in json.loads(f.read_text())["runs"]]
    print(table(runs))
    plot(runs, a.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
