"""What the protocol core costs per new stream, with no transport: a measurement script.

Usage::

    python -m benchmarks.core_cost [--names 1000] [--streams 2000] [--json OUT.json]

A snapshot of ``--names`` clusters and as many endpoint resources (tiny fake bytes: the
core never looks inside) is shared by ``--streams`` new streams, as after a connect
storm where every proxy sees every service. Each stream, state of the world or delta,
with the transport's ``SharedResponses`` as its nonce source, does what a sidecar's
stream does first: a wildcard CDS request, its ACK, an EDS subscription to every name
(the names as fresh strings, as each request brings them), and its ACK; each response is
encoded, once per content, as the server does. The figure is the process CPU time per
stream, in microseconds: the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import report
from xds_server import types, wire
from xds_server.protocol.delta import DeltaStream
from xds_server.protocol.events import Action, DeltaRequest, Send, SotwRequest
from xds_server.protocol.sotw import SotwStream
from xds_server.snapshot import Resource, ResourceSet, Snapshot
from xds_server.transport.responses import SharedResponses

CDS, EDS = types.CLUSTER, types.ENDPOINT


def snapshot(names: list[str]) -> Snapshot:
    """Every name as a cluster and as an endpoint resource."""
    return Snapshot.of(
        ResourceSet.of(t, (Resource.from_bytes(t, n, n.encode()) for n in names))
        for t in (CDS, EDS)
    )


def _sent(actions: list[Action]) -> Send:
    return next(a for a in actions if isinstance(a, Send))


def sotw_stream(shared: SharedResponses, snap: Snapshot, names: list[str]) -> Send:
    """One state-of-the-world stream's first four requests; returns its EDS response."""
    s = SotwStream(nonces=shared.nonce)
    s.on_snapshot(snap)
    cds = _sent(s.on_request(SotwRequest(CDS)))
    shared.encode(cds)
    s.on_request(SotwRequest(CDS, version_info=cds.version, response_nonce=cds.nonce))
    fresh = tuple(n.encode().decode() for n in names)
    eds = _sent(s.on_request(SotwRequest(EDS, resource_names=fresh)))
    shared.encode(eds)
    s.on_request(
        SotwRequest(EDS, version_info=eds.version, response_nonce=eds.nonce, resource_names=fresh)
    )
    return eds


def delta_stream(shared: SharedResponses, snap: Snapshot, names: list[str]) -> Send:
    """One delta stream's first four requests; returns its EDS response."""
    s = DeltaStream(nonces=shared.nonce)
    s.on_snapshot(snap)
    cds = _sent(s.on_request(DeltaRequest(CDS)))
    shared.encode(cds)
    s.on_request(DeltaRequest(CDS, response_nonce=cds.nonce))
    fresh = tuple(n.encode().decode() for n in names)
    eds = _sent(s.on_request(DeltaRequest(EDS, subscribe=fresh)))
    shared.encode(eds)
    s.on_request(DeltaRequest(EDS, response_nonce=eds.nonce))
    return eds


def per_stream_us(
    run: Callable[[SharedResponses, Snapshot, list[str]], Send], names: int, streams: int
) -> float:
    """CPU microseconds per stream for ``streams`` new streams on one shared snapshot."""
    listed = [f"outbound|8080||svc-{i}.ns-{i % 10}.svc.cluster.local" for i in range(names)]
    snap = snapshot(listed)
    shared = SharedResponses(wire.control_plane("core_cost"))
    started = time.process_time()
    for _ in range(streams):
        run(shared, snap, listed)
    return (time.process_time() - started) / streams * 1e6


def main(argv: list[str] | None = None) -> None:
    """Run the measurement (``argv``: the command-line arguments, ``sys.argv`` if None)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.core_cost", description=__doc__)
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"names": args.names, "streams": args.streams}
    for mode, run in (("sotw", sotw_stream), ("delta", delta_stream)):
        runs = [per_stream_us(run, args.names, args.streams) for _ in range(args.repeats)]
        result[f"{mode}_us_per_stream"] = round(statistics.median(runs), 1)
        result[f"{mode}_us_runs"] = [round(r, 1) for r in runs]
        print(f"{mode}: {result[f'{mode}_us_per_stream']} us per stream (runs {runs})")
    if args.json:
        report.write_results(Path(args.json), "core_cost", result)


if __name__ == "__main__":
    main()
