"""Config-push latency of pyistiod: connect storm, an endpoint change, a VirtualService edit
(RDS only) and a route change (a new port).

Usage::

    python -m benchmarks.push_latency --services 1000 --proxies 1000 [--mode sotw|delta]
        [--workers 1] [--service-ports 1] [--load-workers 2] [--server pyistiod|floor]
        [--json OUT.json] [--plot OUT.png] [--profile OUT.txt]

Summarize a profile with ``python -m benchmarks.profile_summary OUT.route.txt``.

Without ``--services``/``--proxies`` it sweeps P in {100, 1000, 2000} (and 5000
with ``--full``) x S in {100, 1000}.

One run: generate S services (``benchmarks.mesh_gen``; with ``--service-ports K``
spread over K port numbers, so each sidecar gets K route configurations of S/K
virtual hosts), start ``pyistiod serve --workers N`` as a child process, spawn
W load processes (``--load-workers``) simulating P Envoy sidecars over ADS
(``benchmarks.sim_proxy``), then measure

1. the connect storm: from starting all P proxies until each has ACKed CDS, EDS, LDS, RDS;
2. one endpoint change (move one endpoint of ``svc-0``): per proxy, the time from
   replacing the EndpointSlice file until it receives a new EDS response;
3. one VirtualService edit (``vs``: svc-0's route timeout, 10 s then 11 s): a pure RDS
   change, per proxy the time until it receives a new RDS response;
4. one route change (add a second HTTP port to ``svc-0``, which adds a cluster,
   its endpoints, a listener and a route configuration): per proxy, the time
   until it has received new CDS, EDS, LDS and RDS responses (the last of the four);

with the server's CPU seconds per phase, its RSS (steady after the storm; peak
per phase, from VmHWM reset through ``/proc/PID/clear_refs`` before each phase)
and the bytes each proxy received per change. The server's CPU and memory are
those of its whole process tree (the supervisor and its workers): see
``KEY_DOCS``, which every JSON file carries. Latencies include the server's
debounce (``--debounce-after``, 0.1 s by default), nothing is subtracted. All
clocks are ``time.monotonic()`` (system-wide on Linux, so comparable across
processes). Every wait has a timeout, the whole run is bounded by
``--run-timeout``, and every process started is stopped on exit, error or Ctrl-C.

``--server floor`` measures ``benchmarks.floor_server`` instead of pyistiod: the same
responses for the same edits, with no work per proxy beyond gRPC's, so the difference
between the two runs is what pyistiod's own per-proxy work costs.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.mesh_gen import (
    ROUTES_FILE,
    SERVICES_FILE,
    SLICES_FILE,
    prepare,
    write_atomically,
)
from benchmarks.server_proc import (
    Server,
    cpu_seconds,
    memory_mb,
    process_count,
    pss_mb,
    reset_peak,
    start_floor,
    start_server,
)
from benchmarks.worker_pool import WorkerPool, concat
from ca.spiffe import SpiffeId
from pyistiod.credentials import workload_xds_tls
from xds_server.types import CLUSTER, ENDPOINT, LISTENER, ROUTE

SETTLE = 1.0
"""Quiet time after the storm and after each change, so the next phase starts idle."""

KEY_DOCS = {
    "server": "pyistiod, or floor: benchmarks.floor_server, the same bytes with no work per "
    "proxy beyond gRPC's (what any grpc.aio server pays on this machine)",
    "server_workers": "xDS worker processes of the server (serve --workers N); 1: one process",
    "server_processes": "processes in the server's tree after the storm (supervisor + workers)",
    "load_workers": "load-generator processes simulating the proxies (older files: 'workers')",
    "service_ports": "K: distinct service port numbers the S services spread over; each "
    "sidecar gets K route configurations (named by port) of S/K virtual hosts",
    "server_cpu_s": "CPU seconds (user + system) of the server's whole process tree in the "
    "phase: supervisor and workers, live or ended and waited for",
    "client_cpu_s": "CPU seconds of the load processes in the phase",
    "bytes_per_proxy": "bytes of xDS responses (serialized DiscoveryResponse) each proxy got",
    "rss_mb.steady/end/idle_rss_mb": "sum of VmRSS over the server's process tree; pages "
    "shared by its processes count once per process (an overstatement with several workers)",
    "rss_mb.peak/peak_per_phase": "sum over the server's processes of each one's VmHWM since "
    "the phase began: an upper bound of the tree's peak (the processes need not peak at once)",
    "load_average": "the machine's 1/5/15-minute load averages when the run started (before "
    "the server) and ended: other work on the host shows in 'start'",
    "pss_mb.steady": "proportional set size of the server's tree (smaps_rollup Pss summed): "
    "shared pages split between processes, the fair total with several workers",
}
"""What the less obvious keys of a run mean; written into every JSON document."""


@dataclass(frozen=True, slots=True)
class RunConfig:
    """One benchmark run's parameters."""

    services: int
    proxies: int
    mode: str = "sotw"
    load_workers: int = 2
    """Load-generator processes."""
    server_workers: int = 1
    """xDS worker processes of the server (``serve --workers``)."""
    service_ports: int = 1
    """K: the S services spread over K port numbers (K route configurations of S/K vhosts)."""
    streams_per_channel: int = 100
    debounce_after: float = 0.1
    storm_timeout: float = 300.0
    change_timeout: float = 60.0
    run_timeout: float = 600.0
    profile: Path | None = None
    server: str = "pyistiod"
    """What serves the proxies: ``pyistiod``, or ``floor`` (``benchmarks.floor_server``)."""
    tls: bool = False
    """Proxies dial the TLS port with a workload token, as sidecars do, and get the config a
    sidecar gets; without, the plain port, where pyistiod serves it without secret references
    (no mTLS transport sockets: at S=1000 a CDS of 0.47 MB instead of 0.76 MB)."""


class Deadline:
    """The run's overall time bound; each wait takes the smaller of its own and what is left."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def cap(self, timeout: float) -> float:
        """``timeout``, or less if the run must end sooner; raises once the run is over."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("run timeout reached")
        return min(timeout, left)


def _pool(server: Server, cfg: RunConfig) -> WorkerPool:
    """The load processes, on the plain port or (``cfg.tls``) the TLS one with a token."""
    delta = cfg.mode == "delta"
    if not cfg.tls or server.ca_dir is None:
        return WorkerPool(
            server.address, cfg.proxies, cfg.load_workers, delta, cfg.streams_per_channel
        )
    identity = SpiffeId("cluster.local", "default", "default")  # what every sim node claims
    xds = workload_xds_tls(server.ca_dir, identity, datetime.now(UTC), timedelta(hours=2))
    return WorkerPool(
        f"127.0.0.1:{server.secure_port}",
        cfg.proxies,
        cfg.load_workers,
        delta,
        cfg.streams_per_channel,
        tls=(xds.root_pem, xds.token, xds.server_name),
    )


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark once; the result as a JSON-ready dict."""
    say = print if progress else (lambda *a, **k: None)
    deadline = Deadline(cfg.run_timeout)
    workdir, config_dir, mesh = prepare(cfg.services, "pyistiod-bench-", cfg.service_ports)
    server: Server | None = None
    pool: WorkerPool | None = None
    try:
        shape = f"workers={cfg.server_workers} K={cfg.service_ports}"
        say(f"[{cfg.mode} S={cfg.services} P={cfg.proxies} {shape}] starting {cfg.server}")
        server = _start(cfg, config_dir, workdir / "server.log", deadline.cap(120))
        pool = _pool(server, cfg)
        result: dict[str, Any] = {
            "server": cfg.server,
            "mode": cfg.mode,
            "services": cfg.services,
            "proxies": cfg.proxies,
            "server_workers": cfg.server_workers,
            "service_ports": cfg.service_ports,
            "load_workers": cfg.load_workers,
            "streams_per_channel": cfg.streams_per_channel,
            "xds": "TLS port, workload token" if cfg.tls else "plain port (no secret references)",
            "debounce_after_s": cfg.debounce_after,
            "idle_rss_mb": round(memory_mb(server.pid)[0], 1),
            "load_average": {"start": report.load_average()},
        }
        say(f"  connect storm: {cfg.proxies} proxies")
        _profile(server, cfg, "storm")
        peaks = {"startup": memory_mb(server.pid)[1]}
        reset_peak(server.pid)
        result["storm"] = _storm(server, pool, deadline.cap(cfg.storm_timeout))
        peaks["storm"] = memory_mb(server.pid)[1]
        server.end_profile()
        say(f"  storm: {result['storm']['seconds']:.2f} s")
        result["server_processes"] = process_count(server.pid)
        time.sleep(SETTLE)
        steady = memory_mb(server.pid)[0]
        result["pss_mb"] = {"steady": round(pss_mb(server.pid), 1)}
        changes = {}
        for name, path, text, types in (
            ("endpoint", SLICES_FILE, mesh.move_endpoint, [ENDPOINT]),
            ("vs", ROUTES_FILE, mesh.edit_timeout, [ROUTE]),
            ("route", SERVICES_FILE, mesh.add_port, [CLUSTER, ENDPOINT, LISTENER, ROUTE]),
        ):
            timeout = deadline.cap(cfg.change_timeout)
            _profile(server, cfg, name)
            reset_peak(server.pid)
            changes[name] = _change(server, pool, config_dir / path, text(0), types, timeout)
            peaks[name] = memory_mb(server.pid)[1]
            server.end_profile()
            lat = changes[name]["latency"]
            say(f"  {name} change: p50 {lat['p50']:.3f} s, p99 {lat['p99']:.3f} s")
            time.sleep(SETTLE)
        rss = memory_mb(server.pid)[0]
        result["load_average"]["end"] = report.load_average()
        result["changes"] = changes
        result["rss_mb"] = {
            "steady": round(steady, 1),
            "end": round(rss, 1),
            "peak": round(max(peaks.values()), 1),
            "peak_per_phase": {k: round(v, 1) for k, v in peaks.items()},
        }
        return result
    finally:
        if pool is not None:
            pool.stop()
        if server is not None:
            server.stop()
            _keep_log(workdir / "server.log")
        shutil.rmtree(workdir, ignore_errors=True)


def _start(cfg: RunConfig, config_dir: Path, log: Path, timeout: float) -> Server:
    """``pyistiod serve``, or the transport floor (which knows no TLS or workers)."""
    if cfg.server not in ("pyistiod", "floor"):
        raise ValueError(f"the server is pyistiod or floor, not {cfg.server!r}")
    if cfg.server == "pyistiod":
        return start_server(
            config_dir, cfg.debounce_after, log, timeout, workers=cfg.server_workers
        )
    if cfg.tls or cfg.server_workers != 1:
        raise ValueError("--server floor serves the plain port, in one process")
    return start_floor(config_dir, cfg.debounce_after, log, timeout)


def _profile(server: Server, cfg: RunConfig, phase: str) -> None:
    if cfg.profile is not None:
        server.profile(cfg.profile.with_name(f"{cfg.profile.stem}.{phase}{cfg.profile.suffix}"))


def _keep_log(log: Path) -> None:
    text = log.read_text(errors="replace") if log.exists() else ""
    if text.strip():
        print(f"  server log (last lines):\n{text[-2000:]}", file=sys.stderr)


def _storm(server: Server, pool: WorkerPool, timeout: float) -> dict[str, Any]:
    cpu = cpu_seconds(server.pid)
    started = time.monotonic()
    replies = pool.command(("start", timeout), timeout)
    done = [t - started for t in concat(replies, "done_at") if t is not None]
    return {
        "seconds": round(max(done), 3) if len(done) == pool_size(replies) else float("nan"),
        "converged": len(done),
        "per_proxy": report.summarize(done),
        "server_cpu_s": round(cpu_seconds(server.pid) - cpu, 2),
        "client_cpu_s": round(sum(r["cpu_s"] for r in replies), 2),
        "bytes_per_proxy": report.summarize(concat(replies, "bytes")),
        **_errors(concat(replies, "errors"), started),
        "reconnects": sum(n for _, n, _ in concat(replies, "reconnects")),
        "reconnect_causes": dict(Counter(why for _, _, why in concat(replies, "reconnects"))),
    }


def pool_size(replies: list[dict[str, Any]]) -> int:
    """How many proxies the replies cover."""
    return len(concat(replies, "done_at"))


def _change(
    server: Server,
    pool: WorkerPool,
    path: Path,
    text: str,
    types: list[str],
    timeout: float,
) -> dict[str, Any]:
    """Mark every proxy, replace ``path``, and collect per-proxy convergence."""
    pool.command(("mark", types), 10.0)
    cpu = cpu_seconds(server.pid)
    edited = time.monotonic()
    write_atomically(path, text)
    replies = pool.command(("collect", timeout), timeout)
    time.sleep(0.5)  # let the server finish what trails the last response
    cpu_used = cpu_seconds(server.pid) - cpu
    times = concat(replies, "times")
    latencies = [max(t.values()) - edited for t in times if len(t) == len(types)]
    per_type = {
        short: report.summarize([t[short] - edited for t in times if short in t])
        for short in sorted({k for t in times for k in t})
    }
    return {
        "types": sorted({k for t in times for k in t}),
        "converged": len(latencies),
        "latency": report.summarize(latencies),
        "per_type": per_type,
        "server_cpu_s": round(cpu_used, 2),
        "client_cpu_s": round(sum(r["cpu_s"] for r in replies), 2),
        "bytes_per_proxy": report.summarize(concat(replies, "bytes")),
        **_errors(concat(replies, "errors"), edited),
    }


def _errors(errors: list[tuple[int, str, float]], since: float) -> dict[str, Any]:
    """Failed streams: how many, of which kinds, which proxies, when (s after ``since``)."""
    return {
        "error_count": len(errors),
        "error_kinds": dict(Counter(msg for _, msg, _ in errors)),
        "failed_proxies": sorted(i for i, _, _ in errors)[:50],
        "failed_at_s": report.summarize([at - since for _, _, at in errors]),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.push_latency", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--services", type=int, nargs="+", help="S (several: each); omit for the sweep")
    p.add_argument("--proxies", type=int, nargs="+", help="P (several: each); omit for the sweep")
    p.add_argument("--mode", choices=["sotw", "delta"], default="sotw")
    p.add_argument(
        "--server",
        choices=["pyistiod", "floor"],
        default="pyistiod",
        help="floor: benchmarks.floor_server, the same bytes with no work per proxy beyond "
        "gRPC's (plain port, one process)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="the server's xDS processes, passed as serve --workers (default 1)",
    )
    p.add_argument(
        "--service-ports",
        type=int,
        default=1,
        metavar="K",
        help="spread the services over K port numbers: K route configurations of "
        "S/K virtual hosts per sidecar (default 1)",
    )
    p.add_argument("--load-workers", type=int, default=2,
                   help="load-generator processes (default 2)")  # fmt: skip
    p.add_argument("--streams-per-channel", type=int, default=100)
    p.add_argument("--debounce-after", type=float, default=0.1, help="server debounce, s")
    p.add_argument("--storm-timeout", type=float, default=300.0)
    p.add_argument("--change-timeout", type=float, default=60.0)
    p.add_argument("--run-timeout", type=float, default=600.0, help="bound on each run, s")
    p.add_argument("--full", action="store_true", help="sweep also P=5000")
    p.add_argument("--tls", action="store_true",
                   help="proxies dial the TLS port with a token and get a sidecar's config "
                   "(default: the plain port, served without secret references)")  # fmt: skip
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--plot", type=Path, help="write a PNG here")
    p.add_argument(
        "--profile",
        type=Path,
        help="OUT.txt: py-spy collapsed stacks of the server per phase, "
        "OUT.storm.txt, OUT.endpoint.txt, OUT.vs.txt, OUT.route.txt (single run only; "
        "with --subprocesses, so workers are sampled too)",
    )
    return p


def _configs(a: argparse.Namespace) -> list[RunConfig]:
    common = {
        "mode": a.mode,
        "server_workers": a.workers,
        "service_ports": a.service_ports,
        "load_workers": a.load_workers,
        "streams_per_channel": a.streams_per_channel,
        "debounce_after": a.debounce_after,
        "storm_timeout": a.storm_timeout,
        "change_timeout": a.change_timeout,
        "run_timeout": a.run_timeout,
        "tls": a.tls,
        "server": a.server,
    }
    if a.services is not None or a.proxies is not None:
        services, proxies = a.services or [1000], a.proxies or [100]
    else:
        services, proxies = [100, 1000], [100, 1000, 2000] + ([5000] if a.full else [])
    profile = a.profile if len(services) * len(proxies) == 1 else None
    return [RunConfig(s, p, profile=profile, **common) for s in services for p in proxies]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (one run or the sweep); print a table, write JSON and PNG if asked."""
    a = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    runs = []
    try:
        for cfg in _configs(a):
            runs.append(run(cfg))
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    finally:
        if runs:
            print(report.table(runs))
        document = {
            "benchmark": "push_latency",
            "machine": report.machine(),
            "revision": report.revision(),
            "clock": "time.monotonic (CLOCK_MONOTONIC, system-wide)",
            "key_docs": KEY_DOCS,
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
            "runs": runs,
        }
        if a.json is not None and runs:
            report.write_json(a.json, document)
        if a.plot is not None and runs:
            report.plot(runs, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
