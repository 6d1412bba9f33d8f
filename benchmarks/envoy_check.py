"""Do the simulated clients tell the truth? The push-latency changes, seen by real Envoys.

Usage::

    python -m benchmarks.envoy_check [--services 100] [--envoys 20] [--json OUT.json]

One run: generate S services (``benchmarks.mesh_gen``, the shape of
``benchmarks.push_latency``), start ``pyistiod serve`` (``benchmarks.server_proc``),
then N real Envoys and N simulated proxies (``benchmarks.load_worker.Worker``,
in this process, so their received versions can be read) against it:

- Envoy ``k`` (1-based) has pod IP ``127.0.4.k``, its admin on ``127.0.4.k:15000``, node ID
  ``sidecar~127.0.4.k~envoy-k.default~default.svc.cluster.local`` and ``ENVOY_FLAGS``. It
  dials the server's TLS xDS port with a workload token (``workload_xds_tls``), as
  ``pyistiod bootstrap --ca-dir`` renders it: on the plain-text port the server closes the
  whole ADS stream when Envoy asks for the SDS secrets its clusters reference, so a real
  Envoy never settles there. The simulated proxies dial the TLS port with a token too (they ask
  for no secrets): on the plain port pyistiod serves config without secret references, which
  would differ from the Envoys' by design.
- Wait until every Envoy holds the initial config (S active clusters, a listener, route ``8080``).
- Apply push_latency's two changes (move one endpoint of ``svc-0``; add a second HTTP port to
  ``svc-0``). Per Envoy, a thread polls its admin every 20 ms until it shows the change
  (endpoint: the new address in ``/clusters`` for ``svc-0``'s cluster; route: the new cluster
  active with its endpoints, the new listener active, route configuration ``9090`` present);
  convergence is from replacing the file until the poll that saw it (a 20 ms resolution).
  The simulated proxies are measured as push_latency measures them.
- After each phase, compare the version each Envoy last accepted per type (``config_dump``:
  CDS and LDS ``version_info``; for EDS and RDS, that of the most recently updated resource)
  with the versions the simulated proxies received. Versions are content hashes, so CDS,
  EDS and RDS must be identical strings. LDS differs per proxy (listeners bind the
  proxy's own outbound address) and is reported, not compared.

Every wait has a timeout, the run is bounded by ``--run-timeout``, and every process
started (Envoys, server) is stopped on success, error and Ctrl-C. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from benchmarks import report
from benchmarks.load_worker import Worker, WorkerSpec
from benchmarks.mesh_gen import (
    EXTRA_PORT,
    HTTP_PORT,
    SERVICES_FILE,
    SLICES_FILE,
    endpoint_address,
    prepare,
    write_atomically,
)
from benchmarks.push_latency import Deadline
from benchmarks.server_proc import Server, start_server
from benchmarks.sim_proxy import SotwProxy
from ca.spiffe import SpiffeId
from pyistiod.credentials import workload_xds_tls
from pyistiod.local_mesh import ENVOY_FLAGS, envoy_binary
from translators.envoy.bootstrap import render_bootstrap
from xds_server.types import CLUSTER, ENDPOINT, LISTENER, ROUTE, short_name

T = TypeVar("T")

ADMIN_PORT: Final = 15000
POLL: Final = 0.02
"""Admin polling interval while a change is measured, s."""
READY_POLL: Final = 0.25
COMPARED: Final = ("cds", "eds", "rds")
"""Types whose versions every proxy with the same view shares; LDS is per proxy."""
SETTLE: Final = 1.0
MOVED: Final = endpoint_address(0, 0, 1)
"""Where the endpoint change moves ``svc-0``'s first endpoint (``Mesh.move_endpoint(0)``)."""

Check = Callable[["Admin"], bool]


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """One run's parameters."""

    services: int = 100
    envoys: int = 20
    debounce_after: float = 0.1
    ready_timeout: float = 120.0
    change_timeout: float = 60.0
    run_timeout: float = 400.0


def envoy_ip(k: int) -> str:
    """Envoy ``k``'s pod IP (``k`` from 1)."""
    return f"127.0.4.{k}"


def envoy_node_id(k: int) -> str:
    """Envoy ``k``'s node ID: pod ``envoy-k`` in namespace default."""
    return f"sidecar~{envoy_ip(k)}~envoy-{k}.default~default.svc.cluster.local"


def cluster_name(port: int, service: int = 0) -> str:
    """The outbound cluster of ``svc-{service}``'s ``port``."""
    return f"outbound|{port}||svc-{service}.default.svc.cluster.local"


class Admin:
    """One Envoy's admin interface over a kept-alive HTTP connection."""

    def __init__(self, host: str, port: int = ADMIN_PORT, timeout: float = 2.0) -> None:
        self.address = f"{host}:{port}"
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def get(self, path: str) -> str | None:
        """The body of a 200 answer to GET ``path``; None on any error (reconnects next time)."""
        try:
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
            body = resp.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return None
        return body if resp.status == 200 else None

    def resources(self, resource: str, name_regex: str = "", eds: bool = False) -> list[Any]:
        """``/config_dump?resource=...`` entries (``name_regex``: full match); [] on error."""
        query = {"resource": resource} | ({"name_regex": name_regex} if name_regex else {})
        body = self.get("/config_dump?" + ("include_eds&" if eds else "") + _encode(query))
        if not body:
            return []
        configs: list[Any] = json.loads(body).get("configs", [])
        return configs

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _encode(query: dict[str, str]) -> str:
    return urllib.parse.urlencode(query, quote_via=urllib.parse.quote)


def _regex(text: str) -> str:
    return "".join("\\" + c if c in ".|^$*+?()[]{}\\" else c for c in text)


class Envoys:
    """N real Envoy processes on 127.0.4.1..N, logging under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.admins: list[Admin] = []

    def start(self, count: int, ca_dir: Path, xds_port: int) -> None:
        """Write each bootstrap (TLS xDS with its token) and start each Envoy."""
        identity = SpiffeId("cluster.local", "default", "default")
        tls = workload_xds_tls(ca_dir, identity, datetime.now(UTC), timedelta(hours=1))
        for k in range(1, count + 1):
            boot = render_bootstrap(envoy_node_id(k), "127.0.0.1", xds_port, ADMIN_PORT, tls=tls)
            path = self.workdir / f"envoy-{k}.yaml"
            path.write_text(yaml.safe_dump(boot))
            log = (self.workdir / f"envoy-{k}.log").open("wb")
            argv = [envoy_binary(), "-c", str(path), *ENVOY_FLAGS]
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
            log.close()
            self.admins.append(Admin(envoy_ip(k)))

    def check_alive(self) -> None:
        """Raise with the log's tail if an Envoy has exited."""
        for k, proc in enumerate(self.procs, 1):
            if proc.poll() is not None:
                tail = (self.workdir / f"envoy-{k}.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"envoy-{k} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        """Terminate every Envoy, kill any still running after 5 s."""
        for admin in self.admins:
            admin.close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class SimProxies:
    """N simulated proxies (one ``load_worker.Worker``) on an event loop in a thread."""

    def __init__(self, address: str, count: int, ca_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        identity = SpiffeId("cluster.local", "default", "default")
        tls = workload_xds_tls(ca_dir, identity, datetime.now(UTC), timedelta(hours=1))
        spec = WorkerSpec(address, False, 0, count, 100, (tls.root_pem, tls.token, tls.server_name))
        self.worker = Worker(spec)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the proxies' loop; its result, within ``timeout`` (+ 10 s slack)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout + 10)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Start ``coro`` on the proxies' loop; a concurrent future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def mark(self, types: list[str]) -> None:
        """Start measuring a change of ``types`` on every proxy."""

        async def mark() -> None:
            self.worker.mark(types)

        self.call(mark(), 10)

    def versions(self) -> dict[str, list[str]]:
        """Per type (short name), the distinct versions the proxies hold."""

        async def read() -> dict[str, list[str]]:
            seen: dict[str, set[str]] = {}
            for p in self.worker.proxies:
                assert isinstance(p, SotwProxy)
                for t, v in p.versions.items():
                    seen.setdefault(short_name(t), set()).add(v)
            return {t: sorted(vs) for t, vs in sorted(seen.items())}

        return self.call(read(), 10)

    def stop(self) -> None:
        """Close every stream, stop the loop and its thread."""
        with contextlib.suppress(Exception):
            self.call(self.worker.stop(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


def initial_ready(services: int) -> list[Check]:
    """Checks that an Envoy holds the initial config: S active outbound clusters, LDS, RDS."""

    def clusters(a: Admin) -> bool:
        active = a.resources("dynamic_active_clusters")
        names = {c.get("cluster", {}).get("name") for c in active if c.get("version_info")}
        return all(cluster_name(HTTP_PORT, i) in names for i in range(services))

    return [clusters, _listener_active(HTTP_PORT), _route_present(HTTP_PORT)]


def endpoint_moved(address: str) -> list[Check]:
    """Check that ``svc-0``'s cluster holds ``address`` (``/clusters`` is what Envoy uses)."""
    name = cluster_name(HTTP_PORT)
    path = "/clusters?" + _encode({"filter": f"^{_regex(name)}$"})
    line = f"{name}::{address}:{HTTP_PORT}::"
    return [lambda a: line in (a.get(path) or "")]


def route_added() -> list[Check]:
    """Checks that the new port arrived: cluster active (it has had its EDS), listener
    active (it has had its RDS), route configuration present."""
    name = cluster_name(EXTRA_PORT)
    path = "/clusters?" + _encode({"filter": f"^{_regex(name)}$"})
    line = f"{name}::observability_name::"
    return [
        lambda a: line in (a.get(path) or ""),
        _listener_active(EXTRA_PORT),
        _route_present(EXTRA_PORT),
    ]


def _listener_active(port: int) -> Check:
    def check(a: Admin) -> bool:
        found = a.resources("dynamic_listeners", f".*_{port}")
        return any("active_state" in entry for entry in found)

    return check


def _route_present(port: int) -> Check:
    return lambda a: bool(a.resources("dynamic_route_configs", str(port)))


def poll(admin: Admin, checks: list[Check], until: float, interval: float) -> float | None:
    """Poll ``checks`` in order (each stays true once true) every ``interval``.

    Returns the time the last one was seen true, or None at ``until``.
    """
    pending = list(checks)
    while pending:
        started = time.monotonic()
        if pending[0](admin):
            pending.pop(0)
            continue
        if started >= until:
            return None
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return time.monotonic()


def poll_all(
    admins: list[Admin], checks: list[Check], timeout: float, interval: float = POLL
) -> tuple[list[threading.Thread], list[float | None]]:
    """Start one polling thread per Envoy; the threads and the list they fill in."""
    until = time.monotonic() + timeout
    times: list[float | None] = [None] * len(admins)

    def one(i: int) -> None:
        times[i] = poll(admins[i], checks, until, interval)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(admins))]
    for t in threads:
        t.start()
    return threads, times


def join(threads: list[threading.Thread], timeout: float) -> None:
    """Wait for ``threads`` (each has its own deadline); ``timeout`` bounds it all."""
    until = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, until - time.monotonic()))


def envoy_versions(admin: Admin, eds_cluster: str) -> dict[str, str]:
    """The version an Envoy last accepted per type.

    CDS and LDS: ``config_dump``'s ``version_info``; RDS: that of the most recently
    updated route configuration; EDS: Envoy's config_dump carries no version for
    endpoints, so the ``version_text`` stat of ``eds_cluster``, the cluster whose
    endpoints the phase changed last.
    """
    body = admin.get("/config_dump")
    if not body:
        return {}
    sections = {s["@type"].rsplit(".", 1)[1]: s for s in json.loads(body)["configs"]}
    clusters = sections.get("ClustersConfigDump", {})
    listeners = sections.get("ListenersConfigDump", {})
    routes = sections.get("RoutesConfigDump", {}).get("dynamic_route_configs") or [{}]
    latest = max(routes, key=lambda e: e.get("last_updated", ""))
    return {
        "cds": clusters.get("version_info", ""),
        "eds": stat_text(admin, f"cluster.{eds_cluster}.version_text"),
        "lds": listeners.get("version_info", ""),
        "rds": latest.get("version_info", ""),
    }


def stat_text(admin: Admin, name: str) -> str:
    """A text stat (text readout) of an Envoy; "" if absent."""
    body = admin.get("/stats?" + _encode({"filter": f"^{_regex(name)}$"})) or ""
    for line in body.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return value.strip('"')
    return ""


def rejected(admin: Admin) -> int:
    """How many xDS updates this Envoy rejected (sum of ``*.update_rejected``)."""
    body = admin.get("/stats?" + _encode({"filter": "update_rejected$"})) or ""
    return sum(int(v) for _, _, v in (line.rpartition(": ") for line in body.splitlines()) if v)


def compare(admins: list[Admin], sims: dict[str, list[str]], eds_cluster: str) -> dict[str, Any]:
    """Each Envoy's versions against the simulated proxies': one entry per Envoy."""
    per_envoy: list[dict[str, Any]] = []
    for k, admin in enumerate(admins, 1):
        got = envoy_versions(admin, eds_cluster)
        same = {t: [got.get(t)] == sims.get(t) for t in COMPARED}
        per_envoy.append({"envoy": k, "versions": got, "same": same, "rejected": rejected(admin)})
    return {
        "simulated": sims,
        "all_same": all(all(e["same"].values()) for e in per_envoy),
        "rejected_total": sum(e["rejected"] for e in per_envoy),
        "envoys": per_envoy,
    }


def _sim_latencies(reply: dict[str, Any], types: list[str], edited: float) -> list[float]:
    """push_latency's measure: per proxy, the last marked type's arrival after the edit."""
    times: list[dict[str, float]] = reply["times"]
    return [max(t.values()) - edited for t in times if len(t) == len(types)]


def _change(
    envoys: Envoys,
    sims: SimProxies,
    path: Path,
    text: str,
    checks: list[Check],
    timeout: float,
    say: Callable[..., None],
) -> dict[str, Any]:
    """Apply one edit; measure Envoys and simulated proxies; compare versions."""
    types = [ENDPOINT] if path.name == SLICES_FILE else [CLUSTER, ENDPOINT, LISTENER, ROUTE]
    eds_cluster = cluster_name(HTTP_PORT if path.name == SLICES_FILE else EXTRA_PORT)
    sims.mark(types)
    threads, times = poll_all(envoys.admins, checks, timeout)
    edited = time.monotonic()
    write_atomically(path, text)
    collected = sims.submit(sims.worker.collect(timeout))
    join(threads, timeout + 5)
    reply: dict[str, Any] = collected.result(timeout + 10)
    real = [t - edited for t in times if t is not None]
    simulated = _sim_latencies(reply, types, edited)
    time.sleep(0.3)  # let the proxies ACK what they just received
    change = {
        "envoy": {
            "converged": len(real),
            "latency": report.summarize(real),
            "per_envoy_s": [None if t is None else round(t - edited, 4) for t in times],
        },
        "simulated": {
            "converged": len(simulated),
            "latency": report.summarize(simulated),
            "errors": len(reply["errors"]),
        },
        "versions": compare(envoys.admins, sims.versions(), eds_cluster),
    }
    name = "endpoint" if path.name == SLICES_FILE else "route"
    say(f"  {name}: {_row(name, change, len(envoys.admins))}")
    time.sleep(SETTLE)
    return change


def _wait_ready(envoys: Envoys, services: int, timeout: float) -> float:
    """Wait until every Envoy holds the initial config; seconds it took. Raises on timeout."""
    started = time.monotonic()
    threads, times = poll_all(envoys.admins, initial_ready(services), timeout, READY_POLL)
    while any(t.is_alive() for t in threads):
        envoys.check_alive()
        time.sleep(0.2)
    missing = [k for k, t in enumerate(times, 1) if t is None]
    if missing:
        raise TimeoutError(f"envoys {missing} lacked the initial config after {timeout:.0f} s")
    return max(t for t in times if t is not None) - started


def _start(
    cfg: CheckConfig, server: Server, workdir: Path, envoys: Envoys, sims: SimProxies, dl: Deadline
) -> dict[str, Any]:
    """Start the Envoys and simulated proxies; wait until all hold the initial config."""
    started = time.monotonic()
    envoys.start(cfg.envoys, workdir / "ca", server.secure_port)
    storm = sims.submit(sims.worker.start(dl.cap(cfg.ready_timeout)))
    envoy_s = _wait_ready(envoys, cfg.services, dl.cap(cfg.ready_timeout))
    reply: dict[str, Any] = storm.result(dl.cap(cfg.ready_timeout) + 10)
    done = [t - started for t in reply["done_at"] if t is not None]
    time.sleep(SETTLE)
    return {
        "envoys_ready_s": round(envoy_s, 3),
        "simulated_ready": len(done),
        "simulated_ready_s": round(max(done), 3) if done else None,
        "versions": compare(envoys.admins, sims.versions(), cluster_name(HTTP_PORT)),
    }


def run(cfg: CheckConfig, progress: bool = True) -> dict[str, Any]:
    """Run the check once; the result as a JSON-ready dict."""
    say = print if progress else (lambda *a, **k: None)
    dl = Deadline(cfg.run_timeout)
    workdir, config_dir, mesh = prepare(cfg.services, "pyistiod-envoy-check-")
    server: Server | None = None
    sims: SimProxies | None = None
    envoys = Envoys(workdir)
    try:
        say(f"[S={cfg.services} N={cfg.envoys}] starting pyistiod")
        server = start_server(config_dir, cfg.debounce_after, workdir / "server.log", dl.cap(60))
        sims = SimProxies(f"127.0.0.1:{server.secure_port}", cfg.envoys, workdir / "ca")
        say(f"  starting {cfg.envoys} Envoys (TLS xDS) and {cfg.envoys} simulated proxies")
        result: dict[str, Any] = {"services": cfg.services, "envoys": cfg.envoys}
        result["xds"] = "envoys and simulated proxies: TLS port with a workload token"
        result["initial"] = _start(cfg, server, workdir, envoys, sims, dl)
        say(f"  all ready (Envoys in {result['initial']['envoys_ready_s']:.2f} s)")
        result["changes"] = {
            name: _change(
                envoys, sims, config_dir / path, text(0), checks, dl.cap(cfg.change_timeout), say
            )
            for name, path, text, checks in (
                ("endpoint", SLICES_FILE, mesh.move_endpoint, endpoint_moved(MOVED)),
                ("route", SERVICES_FILE, mesh.add_port, route_added()),
            )
        }
        return result
    finally:
        envoys.stop()
        if sims is not None:
            sims.stop()
        if server is not None:
            server.stop()
            _show_log(workdir / "server.log")
        shutil.rmtree(workdir, ignore_errors=True)


def _show_log(log: Path) -> None:
    """Print the tail of the server's log (warnings and errors only) to stderr."""
    text = log.read_text(errors="replace") if log.exists() else ""
    if text.strip():
        print(f"  server log (last lines):\n{text[-2000:]}", file=sys.stderr)


def _lat(side: dict[str, Any], n: int) -> str:
    lat = side["latency"]
    text = " / ".join(report._s(lat[q]) for q in ("p50", "p99", "max")) + " s"
    return text if side["converged"] == n else text + f" ({side['converged']}/{n})"


def _row(name: str, change: dict[str, Any], n: int) -> str:
    v = change["versions"]
    same = "yes" if v["all_same"] else "NO"
    return (
        f"| {name} | {_lat(change['envoy'], n)} | {_lat(change['simulated'], n)} | "
        f"{same} | {v['rejected_total']} |"
    )


def table(result: dict[str, Any]) -> str:
    """A Markdown table: real Envoy vs simulated convergence per change, versions equal."""
    n = result["envoys"]
    lines = [
        "| change | real Envoy p50 / p99 / max | simulated p50 / p99 / max | "
        "CDS/EDS/RDS versions equal | Envoy rejects |",
        "|---|---|---|---|---|",
    ]
    lines += [_row(name, c, n) for name, c in result["changes"].items()]
    init = result["initial"]["versions"]
    lines.append(f"\ninitial config: versions equal {'yes' if init['all_same'] else 'NO'}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.envoy_check", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--services", type=int, default=100, help="S (default 100)")
    p.add_argument("--envoys", type=int, default=20, help="N real Envoys and N simulated")
    p.add_argument("--debounce-after", type=float, default=0.1, help="server debounce, s")
    p.add_argument("--ready-timeout", type=float, default=120.0)
    p.add_argument("--change-timeout", type=float, default=60.0)
    p.add_argument("--run-timeout", type=float, default=400.0, help="bound on the run, s")
    p.add_argument("--json", type=Path, help="write the result here")
    return p


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the check; print a table and write JSON if asked. Exit 1 if anything disagreed."""
    a = _parser().parse_args(argv)
    if not 1 <= a.envoys <= 254:
        raise SystemExit("--envoys must be 1..254 (pod IPs 127.0.4.1-254)")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # even where the shell ignored it
    cfg = CheckConfig(a.services, a.envoys, a.debounce_after, a.ready_timeout,
                      a.change_timeout, a.run_timeout)  # fmt: skip
    try:
        result = run(cfg)
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    print(table(result))
    if a.json is not None:
        document = {
            "benchmark": "envoy_check",
            "machine": report.machine(),
            "revision": report.revision(),
            "clock": "time.monotonic (CLOCK_MONOTONIC, system-wide)",
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
            "run": result,
        }
        report.write_json(a.json, document)
    return 0 if ok(result) else 1


def ok(result: dict[str, Any]) -> bool:
    """Every Envoy and simulated proxy converged on both changes with equal versions."""
    n = result["envoys"]
    return result["initial"]["versions"]["all_same"] and all(
        c["envoy"]["converged"] == n and c["simulated"]["converged"] == n and
        c["versions"]["all_same"]
        for c in result["changes"].values()
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
