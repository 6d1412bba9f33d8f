"""Soak of pyistiod: hundreds of misbehaving proxies and steady config changes for N minutes.

Usage::

    python -m benchmarks.soak [--proxies 500] [--minutes 10] [--services 1000]
        [--change-every 10] [--json OUT.json] [--plot OUT.png]

Not a CI test: it runs for minutes. It starts ``pyistiod serve`` as a child
process on a generated mesh (``benchmarks.mesh_gen``) and P simulated sidecars
in W load processes (``benchmarks.soak_worker``): most ACK everything, some
hang up and reconnect, NACK, read slowly or never read (the server's watchdog
must close those). Every ``--change-every`` seconds it edits the config, in
turn moving an endpoint (EDS) and adding or removing a second port of one
service (CDS, EDS, LDS, RDS), so the config stays the same size, and
measures how long the change takes to reach every measured proxy. Every
``--sample-every`` seconds it records the server's RSS and CPU (``/proc``), the
streams it holds (``pilot_xds`` on its monitoring port) and the load average.

Verdict: after ``--warmup`` seconds (3 min: one whole churn cycle) memory must be
flat: the median RSS of the second half of the run may exceed the median of the
minute after warm-up by at most ``max(10 MB, 5 %)``, and the least-squares slope
after warm-up must stay under 2 MB/min. The run ends by itself; every process started is stopped on
exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from benchmarks import report
from benchmarks.mesh_gen import SERVICES_FILE, SLICES_FILE, Mesh, prepare, write_atomically
from benchmarks.server_proc import Server, cpu_seconds, memory_mb, start_server
from benchmarks.soak_worker import SoakMix, soak_worker_main
from benchmarks.worker_pool import WorkerPool, concat
from xds_server.types import CLUSTER, ENDPOINT, LISTENER, ROUTE

MAX_GENERATION: Final = 20
"""An endpoint moves at most this often before going back (its address stays valid)."""
FLAT_MB: Final = 10.0
FLAT_SHARE: Final = 0.05
FLAT_SLOPE_MB_PER_MIN: Final = 2.0


@dataclass(frozen=True, slots=True)
class SoakConfig:
    """One soak's parameters."""

    proxies: int = 500
    minutes: float = 10.0
    services: int = 1000
    change_every: float = 10.0
    sample_every: float = 5.0
    warmup: float = 180.0
    """Not judged: one whole churn cycle, so every behaviour has been through once (a stuck
    proxy waits 60 s for the server's watchdog and 75 s to wake and reconnect; churners come
    back every 40 s); measured, memory settles over about that long (a 1-minute warm-up
    judged the climb to the plateau as growth)."""
    workers: int = 2
    streams_per_channel: int = 50
    debounce_after: float = 0.1
    storm_timeout: float = 120.0
    mix: SoakMix = field(default_factory=SoakMix)


class Sampler(threading.Thread):
    """Samples the server every ``interval`` seconds until ``stop()``."""

    def __init__(self, server: Server, interval: float, t0: float) -> None:
        super().__init__(daemon=True)
        self.server, self.interval, self.t0 = server, interval, t0
        self.samples: list[dict[str, Any]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        """Take a sample, wait, repeat."""
        cpu, at = cpu_seconds(self.server.pid), time.monotonic()
        while not self.halt.wait(self.interval):
            now_cpu, now = cpu_seconds(self.server.pid), time.monotonic()
            self.samples.append(
                {
                    "t": round(now - self.t0, 2),
                    "rss_mb": round(memory_mb(self.server.pid)[0], 1),
                    "cpu_percent": round(100 * (now_cpu - cpu) / (now - at), 1),
                    "streams": streams(self.server.monitoring_port),
                    "load_avg_1m": os.getloadavg()[0],
                }
            )
            cpu, at = now_cpu, now

    def stop(self) -> list[dict[str, Any]]:
        """Stop sampling; the samples taken."""
        self.halt.set()
        self.join(self.interval + 5)
        return self.samples


def streams(monitoring_port: int) -> int | None:
    """The xDS streams the server holds (its ``pilot_xds`` gauge); None if it does not say."""
    try:
        url = f"http://127.0.0.1:{monitoring_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    found = re.search(r"^pilot_xds (\S+)$", text, re.MULTILINE)
    return int(float(found.group(1))) if found else None


class Changes:
    """The edits, in turn: an endpoint move, then a second port added to a service or removed
    (so at most one service has one)."""

    def __init__(self, mesh: Mesh, config_dir: Path) -> None:
        self.mesh, self.config_dir, self.count = mesh, config_dir, 0

    def next(self) -> tuple[str, Path, str, list[str]]:
        """The next edit: (kind, file, its new text, the xDS types it changes)."""
        k, self.count = self.count, self.count + 1
        if k % 2 == 0:
            svc = (k // 2) % self.mesh.services
            if self.mesh.generations.get(svc, 0) >= MAX_GENERATION:
                self.mesh.generations[svc] = 0
            return (
                "endpoint",
                self.config_dir / SLICES_FILE,
                self.mesh.move_endpoint(svc),
                [ENDPOINT],
            )
        services = self.config_dir / SERVICES_FILE
        if self.mesh.extra_ports:  # its cluster and the port's listener go
            self.mesh.extra_ports.clear()
            return "port-", services, self.mesh.services_yaml(), [CLUSTER, LISTENER]
        # Another service each time: toggling one would bring back the very versions
        # (content hashes) a proxy held before, and nothing would look new.
        svc = (k // 4) % self.mesh.services
        return "port+", services, self.mesh.add_port(svc), [CLUSTER, ENDPOINT, LISTENER, ROUTE]


def run(cfg: SoakConfig, progress: bool = True) -> dict[str, Any]:
    """Run the soak once; the result as a JSON-ready dict."""
    say = print if progress else (lambda *a, **k: None)
    workdir, config_dir, mesh = prepare(cfg.services, "pyistiod-soak-")
    server: Server | None = None
    pool: WorkerPool | None = None
    sampler: Sampler | None = None
    try:
        say(f"[soak P={cfg.proxies} S={cfg.services} {cfg.minutes:g} min] starting pyistiod")
        server = start_server(config_dir, cfg.debounce_after, workdir / "server.log")
        pool = WorkerPool(
            server.address, cfg.proxies, cfg.workers, False, cfg.streams_per_channel,
            target=soak_worker_main, extra=(cfg.mix,),
        )  # fmt: skip
        t0 = time.monotonic()
        sampler = Sampler(server, cfg.sample_every, t0)
        sampler.start()
        started = pool.command(("start", cfg.storm_timeout), cfg.storm_timeout)
        done = [t for t in concat(started, "done_at") if t is not None]
        storm = {
            "seconds": round(max(done) - t0, 2) if done else None,
            "synced": len(done),
            "expected": len(concat(started, "done_at")),
        }
        say(f"  storm: {storm['synced']}/{storm['expected']} proxies in {storm['seconds']} s")
        changes = _change_loop(cfg, pool, Changes(mesh, config_dir), t0, say)
        samples = sampler.stop()
        return {
            "config": {**asdict(cfg), "mix": asdict(cfg.mix)},
            "roles": dict(Counter(cfg.mix.behaviour(i) for i in range(cfg.proxies))),
            "storm": storm,
            "samples": samples,
            "changes": changes,
            "summary": summarize(cfg, samples, changes),
        }
    finally:
        if sampler is not None:
            sampler.stop()
        if pool is not None:
            pool.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _change_loop(
    cfg: SoakConfig, pool: WorkerPool, edits: Changes, t0: float, say: Any
) -> list[dict[str, Any]]:
    """Edit the config every ``change_every`` seconds until the run's time is up."""
    end = t0 + cfg.minutes * 60
    changes: list[dict[str, Any]] = []
    next_at = time.monotonic()
    while next_at + cfg.change_every <= end:
        kind, path, text, types = edits.next()
        marked = sum(r["marked"] for r in pool.command(("mark", types), 30))
        edited = time.monotonic()
        write_atomically(path, text)
        replies = pool.command(("collect", cfg.change_every * 0.9), cfg.change_every)
        changes.append(_change_record(kind, types, marked, edited - t0, edited, replies))
        last = changes[-1]
        say(
            f"  t={last['t']:6.1f} s {kind:8s} converged {last['converged']}/{last['marked']} "
            f"(left {last['left']}) all in {last['all_converged_s']} s; "
            f"errors {last['client_errors']}"
        )
        next_at += cfg.change_every
        time.sleep(max(0.0, next_at - time.monotonic()))
    return changes


def _change_record(
    kind: str,
    types: list[str],
    marked: int,
    t: float,
    edited: float,
    replies: list[dict[str, Any]],
) -> dict[str, Any]:
    results = concat(replies, "results")
    measured = [(role, at) for role, at, left, _ in results if not left]
    well = [at - edited for role, at in measured if role != "slow" and at is not None]
    slow = [at - edited for role, at in measured if role == "slow" and at is not None]
    pending = sum(1 for role, at in measured if at is None)
    counts: Counter[str] = Counter()
    for r in replies:
        counts.update(r["counts"])
    errors = concat(replies, "errors")
    return {
        "t": round(t, 2),
        "kind": kind,
        "types": [short for short in ("cds", "eds", "lds", "rds") if _type(short) in types],
        "marked": marked,
        "converged": len(well) + len(slow),
        "left": sum(1 for _, _, left, _ in results if left),
        "got_per_type": dict(Counter(t for _, _, left, got in results if not left for t in got)),
        "unconverged": pending,
        "latency": report.summarize(well),
        "slow_readers_latency": report.summarize(slow),
        "all_converged_s": round(max(well), 3) if well and not pending else None,
        "connected_synced": sum(r["synced"] for r in replies),
        "client_errors": len(errors),
        "error_kinds": dict(Counter(f"{role}: {why}" for _, role, why, _ in errors)),
        "counts": dict(counts),
        "client_cpu_s": round(sum(r["cpu_s"] for r in replies), 2),
    }


def _type(short: str) -> str:
    return {"cds": CLUSTER, "eds": ENDPOINT, "lds": LISTENER, "rds": ROUTE}[short]


def summarize(
    cfg: SoakConfig, samples: list[dict[str, Any]], changes: list[dict[str, Any]]
) -> dict[str, Any]:
    """Flatness of memory after warm-up, convergence over the run, and a one-line verdict."""
    after = [s for s in samples if s["t"] >= cfg.warmup]
    half = cfg.minutes * 60 / 2
    early = [s["rss_mb"] for s in after if s["t"] < cfg.warmup + 60] or [
        s["rss_mb"] for s in after[:1]
    ]
    late = [s["rss_mb"] for s in after if s["t"] >= max(half, cfg.warmup)]
    baseline = round(statistics.median(early), 1) if early else None
    final = round(statistics.median(late), 1) if late else None
    slope = _slope([(s["t"] / 60, s["rss_mb"]) for s in after])
    tolerance = max(FLAT_MB, FLAT_SHARE * baseline) if baseline else None
    growth = final - baseline if final is not None and baseline is not None else None
    flat = (
        growth is not None
        and tolerance is not None
        and slope is not None
        and growth <= tolerance
        and slope <= FLAT_SLOPE_MB_PER_MIN
    )
    converged = [c for c in changes if c["all_converged_s"] is not None]
    worst = max((c["all_converged_s"] for c in converged), default=None)
    p50s = [c["latency"]["p50"] for c in converged]
    last = changes[-1]["counts"] if changes else {}
    errors = sum(c["client_errors"] for c in changes)
    summary = {
        "rss_end_of_warmup_mb": baseline,
        "rss_second_half_mb": final,
        "rss_growth_mb": None if growth is None else round(growth, 1),
        "rss_tolerance_mb": None if tolerance is None else round(tolerance, 1),
        "rss_slope_mb_per_min": None if slope is None else round(slope, 2),
        "rss_peak_mb": max((s["rss_mb"] for s in samples), default=None),
        "memory_flat": flat,
        "changes": len(changes),
        "changes_converged": len(converged),
        "all_converged_worst_s": worst,
        "median_p50_s": round(statistics.median(p50s), 3) if p50s else None,
        "client_errors": errors,
        "churn_disconnects": last.get("churn_disconnects", 0),
        "stuck_closed_by_server": last.get("stuck_closed_by_server", 0),
        "nacks_sent": last.get("nacks_sent", 0),
        "load_avg_1m": _range([s["load_avg_1m"] for s in samples]),
    }
    summary["verdict"] = _verdict(summary)
    return summary


def _verdict(s: dict[str, Any]) -> str:
    word = "FLAT" if s["memory_flat"] else "NOT FLAT"
    return (
        f"memory {word} after warm-up: RSS {s['rss_end_of_warmup_mb']} MB at its end, "
        f"{s['rss_second_half_mb']} MB in the second half ({s['rss_growth_mb']:+} MB, "
        f"tolerance {s['rss_tolerance_mb']} MB), slope {s['rss_slope_mb_per_min']:+} MB/min; "
        f"{s['changes_converged']}/{s['changes']} changes reached every measured proxy, "
        f"worst {s['all_converged_worst_s']} s; {s['client_errors']} client errors, "
        f"{s['stuck_closed_by_server']} stuck streams closed by the server"
        if s["rss_growth_mb"] is not None and s["rss_slope_mb_per_min"] is not None
        else f"memory not judged: too few samples after warm-up; {s['changes']} changes"
    )


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None for fewer than 3 points."""
    if len(points) < 3:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else None


def _range(values: list[float]) -> list[float] | None:
    return [round(min(values), 2), round(max(values), 2)] if values else None


def plot(result: dict[str, Any], path: Path) -> None:
    """Server RSS, streams held and per-change convergence over time, warm-up shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, changes, summary = result["samples"], result["changes"], result["summary"]
    warmup = result["config"]["warmup"] / 60
    fig, (mem, con, lat) = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    ts = [s["t"] / 60 for s in samples]
    mem.plot(ts, [s["rss_mb"] for s in samples], "-", label="server RSS")
    for key, style, label in (
        ("rss_end_of_warmup_mb", ":", "median, minute after warm-up"),
        ("rss_second_half_mb", "--", "median, second half"),
    ):
        if summary[key] is not None:
            mem.axhline(summary[key], linestyle=style, color="gray", label=label)
    growth = f"{summary['rss_growth_mb']} MB, {summary['rss_slope_mb_per_min']} MB/min"
    mem.set(ylabel="RSS (MB)", title=f"{summary['verdict'].split(':')[0]} ({growth})")
    con.plot(ts, [s["streams"] for s in samples], "-", label="xDS streams (pilot_xds)")
    con.plot([c["t"] / 60 for c in changes], [c["connected_synced"] for c in changes], ".",
             label="proxies holding a full config")  # fmt: skip
    errors = con.twinx()
    cumulative, total = [], 0
    for c in changes:
        total += c["client_errors"]
        cumulative.append(total)
    errors.plot([c["t"] / 60 for c in changes], cumulative, "r-", label="client errors (cum.)")
    errors.set_ylabel("client errors, cumulative", color="r")
    con.set(ylabel="proxies")
    for kind, marker in (("endpoint", "o"), ("port+", "s"), ("port-", "^")):
        mine = [c for c in changes if c["kind"] == kind]
        lat.plot([c["t"] / 60 for c in mine], [c["all_converged_s"] for c in mine], marker,
                 label=f"{kind}: last measured proxy")  # fmt: skip
        lat.plot([c["t"] / 60 for c in mine], [c["latency"]["p50"] for c in mine], marker,
                 mfc="none", label=f"{kind}: p50")  # fmt: skip
    lat.set(xlabel="minutes", ylabel="convergence (s)")
    for ax in (mem, con, lat):
        ax.axvspan(0, warmup, color="gray", alpha=0.1)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    cfg = result["config"]
    fig.suptitle(
        f"pyistiod soak: {cfg['proxies']} proxies, {cfg['services']} services, a change every "
        f"{cfg['change_every']:g} s ({os.cpu_count()} CPUs shared with the load generator)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0]
    )
    d = SoakConfig()
    m = SoakMix()
    p.add_argument("--proxies", type=int, default=d.proxies)
    p.add_argument("--minutes", type=float, default=d.minutes, help="run length")
    p.add_argument("--services", type=int, default=d.services)
    p.add_argument("--change-every", type=float, default=d.change_every, help="seconds")
    p.add_argument("--sample-every", type=float, default=d.sample_every, help="seconds")
    p.add_argument("--warmup", type=float, default=d.warmup, help="seconds not judged")
    p.add_argument("--workers", type=int, default=d.workers, help="load processes")
    p.add_argument("--churn", type=float, default=m.churn, help="share that reconnects")
    p.add_argument("--churn-period", type=float, default=m.churn_period, help="mean s connected")
    p.add_argument("--nack", type=float, default=m.nack, help="share that NACKs")
    p.add_argument("--slow", type=float, default=m.slow, help="share of slow readers")
    p.add_argument("--stuck", type=float, default=m.stuck, help="share that never reads")
    p.add_argument("--stuck-for", type=float, default=m.stuck_for, help="s a stuck one reads nil")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--plot", type=Path, help="write a PNG here")
    return p


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print the verdict, write JSON and PNG if asked. Exit 1 if not flat."""
    a = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    mix = SoakMix(a.churn, a.nack, a.slow, a.stuck, a.churn_period, stuck_for=a.stuck_for)
    cfg = SoakConfig(
        a.proxies, a.minutes, a.services, a.change_every, a.sample_every, a.warmup, a.workers,
        mix=mix,
    )  # fmt: skip
    try:
        result = run(cfg)
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    document = {
        "benchmark": "soak",
        "machine": report.machine(),
        "revision": report.revision(),
        "clock": "time.monotonic (CLOCK_MONOTONIC, system-wide)",
        **result,
    }
    print(result["summary"]["verdict"])
    if a.json is not None:
        report.write_json(a.json, document)
    if a.plot is not None:
        plot(result, a.plot)
    return 0 if result["summary"]["memory_flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
