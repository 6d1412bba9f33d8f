"""Kubernetes mode under load: initial sync, memory, and an EndpointSlice change reaching a proxy.

``python -m benchmarks.kube_sync [--services 1000] [--endpoints 10] [--istio 200] [--changes 20]
--json OUT.json --plot OUT.png`` starts a real kube-apiserver and etcd (paths from
``KUBE_APISERVER`` and ``ETCD``), fills it with S Services, S EndpointSlices of E
endpoints and I Istio objects (half VirtualServices, half DestinationRules), then
starts ``pyistiod serve --kubeconfig`` as its own process and measures:

- initial sync: from the process start until one ADS client holds CDS with every
  service's cluster (list of every kind, parse, settle, build, push);
- memory: the server's RSS once synced, and its peak;
- change: from an EndpointSlice update at the API server until the client holds
  EDS with the new address, C times, one service after the other (debounce 0.1 s
  included, as istiod's).

Everything runs on this machine: the API server, etcd, pyistiod and the client
share its CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client import ApiClient

from benchmarks import report
from benchmarks.mesh_gen import endpoint_address
from benchmarks.server_proc import memory_mb, workers_args
from benchmarks.sim_proxy import ADS_METHOD
from pyistiod.local_cluster import install_istio, start_cluster
from pyistiod.local_mesh import free_port, stop_process, wait_listening
from xds_server import types

NAMESPACE = "bench"


def _service(i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"svc-{i}"},
        "spec": {"ports": [{"name": "http", "port": 8080}], "selector": {"app": f"svc-{i}"}},
    }


def _slice(i: int, endpoints: int, generation: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": f"svc-{i}-a", "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {"addresses": [endpoint_address(i, e, generation)]} for e in range(endpoints)
        ],
    }


def _istio(i: int) -> tuple[str, dict[str, Any]]:
    host = f"svc-{i}"
    if i % 2:
        spec = {"host": host, "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}}}
        return "destinationrules", {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": host},
            "spec": spec,
        }
    return "virtualservices", {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": host},
        "spec": {"hosts": [host], "http": [{"route": [{"destination": {"host": host}}]}]},
    }


async def fill(api: ApiClient, services: int, endpoints: int, istio: int) -> float:
    """Create the mesh through the API, 32 requests at a time; returns the seconds it took."""
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    custom = client.CustomObjectsApi(api)
    await core.create_namespace({"metadata": {"name": NAMESPACE}})
    gate = asyncio.Semaphore(32)

    async def bounded(call: Any) -> None:
        async with gate:
            await call

    started = time.monotonic()
    calls: list[Any] = []
    for i in range(services):
        calls.append(core.create_namespaced_service(NAMESPACE, _service(i)))
        calls.append(discovery.create_namespaced_endpoint_slice(NAMESPACE, _slice(i, endpoints)))
    for i in range(istio):
        plural, body = _istio(i)
        calls.append(
            custom.create_namespaced_custom_object(
                "networking.istio.io", "v1", NAMESPACE, plural, body
            )
        )
    await asyncio.gather(*(bounded(c) for c in calls))
    return time.monotonic() - started


class Client:
    """One ADS client: subscribes to CDS and to the EDS of chosen clusters, ACKs everything."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self.node_id = f"sidecar~10.200.0.1~probe-0.{NAMESPACE}~{NAMESPACE}.svc.cluster.local"
        self.clusters: int = 0
        self.addresses: dict[str, set[str]] = {}
        self.changed = asyncio.Event()
        self.eds_names: list[str] = []

    async def requests(self) -> Any:
        while (msg := await self.queue.get()) is not None:
            yield msg

    async def run(self) -> None:
        call = self.channel.stream_stream(
            ADS_METHOD,
            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
            response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
        )(self.requests())
        node = {"id": self.node_id}
        await self.queue.put(discovery_pb2.DiscoveryRequest(node=node, type_url=types.CLUSTER))
        async for response in call:
            if response.type_url == types.CLUSTER:
                self.clusters = len(response.resources)
            elif response.type_url == types.ENDPOINT:
                for any_ in response.resources:
                    cla = endpoint_pb2.ClusterLoadAssignment()
                    any_.Unpack(cla)
                    self.addresses[cla.cluster_name] = {
                        e.endpoint.address.socket_address.address
                        for g in cla.endpoints
                        for e in g.lb_endpoints
                    }
            ack = discovery_pb2.DiscoveryRequest(
                node=node,
                type_url=response.type_url,
                version_info=response.version_info,
                response_nonce=response.nonce,
                resource_names=self.eds_names if response.type_url == types.ENDPOINT else [],
            )
            await self.queue.put(ack)
            self.changed.set()

    async def watch_endpoints(self, names: list[str]) -> None:
        self.eds_names = names
        await self.queue.put(
            discovery_pb2.DiscoveryRequest(
                node={"id": self.node_id}, type_url=types.ENDPOINT, resource_names=names
            )
        )

    async def until(self, done: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self.changed.clear()
                await self.changed.wait()


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    try:
        cluster = start_cluster(workdir / "cluster")
    except LookupError as missing:
        raise SystemExit(f"benchmarks.kube_sync {missing}") from None
    proc: subprocess.Popen[bytes] | None = None
    try:
        async with await config.new_client_from_config(str(cluster.kubeconfig)) as api:
            await install_istio(api)
            fill_s = await fill(api, args.services, args.endpoints, args.istio)
            print(f"  filled the API server in {fill_s:.1f} s", flush=True)
            port = free_port()
            argv = [
                *(sys.executable, "-m", "pyistiod.cli", "serve"),
                *("--kubeconfig", str(cluster.kubeconfig), "--xds-address", f"127.0.0.1:{port}"),
                *("--secure-xds-address", "", "--monitoring-address", "", "--webhook-address", ""),
                *("--log-level", "warning", "--debounce-after", "0.1"),
                *workers_args(1),  # one process, as before serve defaulted to one per core
            ]
            started = time.monotonic()
            log = (workdir / "pyistiod.log").open("wb")
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            await asyncio.to_thread(wait_listening, proc, port, 300)  # after its first sync
            probe = Client(port)
            task = asyncio.create_task(probe.run())
            await probe.until(lambda: probe.clusters >= args.services, 300)
            sync_s = time.monotonic() - started
            steady, peak = memory_mb(proc.pid)
            print(
                f"  initial sync {sync_s:.2f} s, RSS {steady:.0f} MB (peak {peak:.0f})", flush=True
            )
            latencies = await _changes(api, probe, args)
            task.cancel()
            await probe.channel.close()
    finally:
        try:
            if proc is not None:
                stop_process(proc, grace=20)
        finally:
            cluster.stop()
    return {
        "services": args.services,
        "endpoints_per_service": args.endpoints,
        "istio_objects": args.istio,
        "fill_s": round(fill_s, 3),
        "initial_sync_s": round(sync_s, 3),
        "rss_mb": {"steady": round(steady, 1), "peak": round(peak, 1)},
        "endpoint_change_s": report.summarize(latencies),
        "endpoint_change_samples": [round(x, 4) for x in latencies],
    }


async def _changes(api: ApiClient, probe: Client, args: argparse.Namespace) -> list[float]:
    discovery = client.DiscoveryV1Api(api)
    names = [f"outbound|8080||svc-{i}.{NAMESPACE}.svc.cluster.local" for i in range(args.changes)]
    await probe.watch_endpoints(names)
    await probe.until(lambda: all(n in probe.addresses for n in names), 60)
    latencies = []
    for i in range(args.changes):
        await asyncio.sleep(0.3)  # let the previous change settle
        moved = endpoint_address(i, 0, generation=1)
        started = time.monotonic()
        body: Any = {"endpoints": _slice(i, args.endpoints, generation=1)["endpoints"]}
        await discovery.patch_namespaced_endpoint_slice(f"svc-{i}-a", NAMESPACE, body)
        await probe.until(lambda i=i, moved=moved: moved in probe.addresses.get(names[i], ()), 60)
        latencies.append(time.monotonic() - started)
    print(
        f"  endpoint change p50 {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s",
        flush=True,
    )
    return latencies


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (sync, change) = plt.subplots(1, 2, figsize=(11, 4))
    sync.bar(["fill API", "initial sync"], [result["fill_s"], result["initial_sync_s"]])
    sync.set(ylabel="seconds", title=f"S={result['services']}, E={result['endpoints_per_service']}")
    samples = result["endpoint_change_samples"]
    change.plot(range(1, len(samples) + 1), samples, "-o")
    change.set(xlabel="change", ylabel="seconds", title="EndpointSlice update -> proxy EDS")
    for ax in (sync, change):
        ax.grid(True, alpha=0.3)
    fig.suptitle("pyistiod Kubernetes mode (API server, etcd, pyistiod and client on one host)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.kube_sync", description=__doc__.split("\n")[0]
    )
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--endpoints", type=int, default=10, help="endpoints per EndpointSlice")
    p.add_argument("--istio", type=int, default=200, help="VirtualServices + DestinationRules")
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path)
    args = p.parse_args(argv)
    print(f"[kube_sync S={args.services} E={args.endpoints} I={args.istio}]", flush=True)
    with tempfile.TemporaryDirectory(prefix="kube-sync-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    document = {
        "benchmark": "kube_sync",
        "machine": report.machine(),
        "revision": report.revision(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "result": result,
    }
    if args.json:
        report.write_json(args.json, document)
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
