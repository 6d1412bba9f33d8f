"""``pyistiod demo``: a bookinfo-style mesh, real Envoy sidecars and a gateway, on loopback.

The config is ``examples/demo/`` copied to ``WORKDIR/config/`` (``--reset``
copies it again), served by a ``pyistiod serve`` of its own; every process's
log is ``WORKDIR/NAME.log``. The demo says what it starts, waits until every
proxy is in sync and one request crosses the gateway, then prints how to try
it and, while it runs, a line per edit pyistiod applies or refuses. A child
that exits stops the demo (``demo_children``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from pyistiod import demo_children as children
from pyistiod.demo_banner import banner
from pyistiod.demo_events import LogFollower, Narrator
from pyistiod.local_mesh import LocalMesh, Pod, Ports, http_get
from pyistiod.proxy_status import fetch
from translators.mesh.model.loopback import app_address, outbound_address
from translators.mesh.model.mesh import MeshModel
from translators.sources.files import load_dir

EXAMPLE = Path(__file__).parent / "examples" / "demo"
PORTS = Ports()
ADMIN_PORT = 15000
GATEWAY = ("istio", "ingressgateway")


def pods_of(model: MeshModel, gateways: bool = False) -> list[Pod]:
    """One pod per Pod in the model, with its HTTP and TCP ports: the sidecar'd ones, or
    (``gateways``) the ingress gateways (``router`` proxies, no app)."""
    pods = []
    for w in model.workloads.values():
        if w.source.kind != "Pod" or (GATEWAY in w.labels) != gateways:
            continue
        ports = dict(w.ports)
        http = ports.get("http", next(iter(ports.values()), 8080))
        kind = "router" if gateways else "sidecar"
        labels = dict(sorted(w.labels))
        tcp = ports.get("tcp")
        pods.append(Pod(w.name, w.namespace, w.address, http, tcp, labels, w.service_account, kind))
    return pods


def app_calls(config: Path) -> dict[str, str]:
    """Each Pod's ``--calls`` (from its first container's ``args``), by name; a file that
    does not parse is skipped (pyistiod reports it)."""
    found: dict[str, str] = {}
    for path in sorted(config.rglob("*.y*ml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError):
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "Pod":
                args = (((doc.get("spec") or {}).get("containers") or [{}])[0] or {}).get("args")
                if isinstance(args, list) and "--calls" in args[:-1]:
                    name = str((doc.get("metadata") or {}).get("name"))
                    found[name] = str(args[args.index("--calls") + 1])
    return found


def addresses(pods: list[Pod], gateways: list[Pod]) -> list[tuple[str, int]]:
    """Every address the demo's processes bind: pyistiod's ports, then per pod its inbound,
    app, outbound and admin addresses (a gateway: its listener and admin)."""
    found = [("127.0.0.1", p) for p in (PORTS.xds, PORTS.secure_xds, PORTS.monitoring)]
    for pod in pods:
        for host in (pod.ip, app_address(pod.ip), outbound_address(pod.ip)):
            found.append((host, pod.http_port))
    return (
        found
        + [(g.ip, g.http_port) for g in gateways]
        + [(p.ip, ADMIN_PORT) for p in pods + gateways]
    )


def productpage(url: str) -> dict[str, Any] | None:
    """productpage's answer through the gateway, if details and reviews answered in it."""
    status, body = http_get(url)
    try:
        answer = json.loads(body) if status == 200 else None
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    calls = answer.get("calls", {})
    return answer if all("pod" in calls.get(s, {}) for s in ("details", "reviews")) else None


class Demo:
    """The running demo: its processes, pyistiod's log and the terminal lines it prints."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.workdir, self.config = workdir, config
        self.mesh = LocalMesh(workdir, own_groups=True)
        self.events = LogFollower(workdir / "pyistiod.log")
        self.narrator = Narrator()
        model = load_dir(config).model
        calls = app_calls(config)
        self.pods = [dataclasses.replace(p, calls=calls.get(p.name, "")) for p in pods_of(model)]
        self.gateways = pods_of(model, gateways=True)
        self.synced = -1
        self.lagging: set[str] = set()

    def tick(self) -> None:
        """Print what pyistiod applied or refused since the last tick; raise ``ChildExited``
        if a child has exited."""
        for line in self.events.lines():
            if (said := self.narrator.line(line)) is not None:
                print(f"[{time.strftime('%H:%M:%S')}] {said}", flush=True)
        children.check(self.mesh)

    def wait(self, what: str, check: Any, timeout: float) -> Any:
        """Tick until ``check()`` is truthy; ``TimeoutError`` naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not (result := check()):
            self.tick()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} within {timeout:.0f} s")
            time.sleep(0.2)
        return result

    def in_sync(self, node_ids: set[str]) -> bool:
        """Whether every proxy in ``node_ids`` ACKed every type it was sent (``/debug/syncz``)."""
        try:
            proxies = fetch(f"127.0.0.1:{PORTS.monitoring}")
        except OSError:
            return False
        synced = {p["proxy"] for p in proxies
                  if p["types"] and all(t["synced"] for t in p["types"].values())}  # fmt: skip
        self.lagging = node_ids - synced
        if len(synced & node_ids) != self.synced:
            self.synced = len(synced & node_ids)
            print(f"  {self.synced}/{len(node_ids)} proxies in sync", flush=True)
        return node_ids <= synced

    def start(self) -> str:
        """Start everything and wait until it serves; the gateway's productpage URL."""
        pods, gateways = self.pods, self.gateways
        print(f"starting pyistiod (config {self.config}/, logs {self.workdir}/*.log)", flush=True)
        self.mesh.start_pyistiod(self.config, PORTS)
        ready = f"http://127.0.0.1:{PORTS.monitoring}/ready"
        self.wait("pyistiod was not ready", lambda: http_get(ready)[0] == 200, 60)
        print(f"pyistiod is serving: xDS and CA on 127.0.0.1:{PORTS.secure_xds}, "
              f"metrics and /debug on 127.0.0.1:{PORTS.monitoring}", flush=True)  # fmt: skip
        print(f"starting {len(pods)} apps with their Envoy sidecars, and the ingress gateway")
        for pod in pods:
            self.mesh.start_app(pod)
            self.mesh.start_sidecar(pod, PORTS, ADMIN_PORT)
        for gateway in gateways:
            self.mesh.start_sidecar(gateway, PORTS, ADMIN_PORT)
        print("waiting for every proxy to be in sync (pyistiod's /debug/syncz)", flush=True)
        node_ids = {p.node_id for p in pods + gateways}
        try:
            self.wait("the proxies were not in sync", lambda: self.in_sync(node_ids), 90)
        except TimeoutError as err:
            raise TimeoutError(f"{err} (not: {', '.join(sorted(self.lagging))})") from None
        url = f"http://{gateways[0].ip}:{gateways[0].http_port}/productpage" if gateways else ""
        answer = self.wait("productpage did not answer", lambda: productpage(url), 60)
        return banner(url, answer, self.pods, self.config, self.workdir, ADMIN_PORT)


def prepare(workdir: Path, reset: bool) -> Path:
    """The demo's config directory in ``workdir``, copied from the example if missing (or
    ``reset``)."""
    config = workdir / "config"
    if reset and config.exists():
        shutil.rmtree(config)
        print(f"restored {config}/ from the example")
    if not config.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(EXAMPLE, config)
    return config


def run_demo(duration: float, workdir: Path, reset: bool = False) -> int:
    """Run the demo until Ctrl-C, SIGTERM, ``duration`` seconds or a child's exit."""
    demo = Demo(workdir, prepare(workdir, reset))
    if (busy := children.taken(addresses(demo.pods, demo.gateways))) is not None:
        print(f"demo: {busy[0]}:{busy[1]} is in use: is another demo (or pyistiod) running?",
              file=sys.stderr)  # fmt: skip
        return 1
    if not demo.pods or not demo.gateways:
        print(f"demo: {demo.config}/ holds no app pods or no ingress gateway pod "
              "(pyistiod demo --reset restores the example)", file=sys.stderr)  # fmt: skip
        return 1
    with children.stop_signals():
        try:
            return _serve(demo, duration)
        except KeyboardInterrupt:  # a second Ctrl-C while saying the first
            return 0
        finally:
            children.stopping(demo.mesh)
            print("stopped: every process the demo started has ended", flush=True)


def _serve(demo: Demo, duration: float) -> int:
    """Start the demo and tell what happens until it should stop; the exit code."""
    try:
        print(demo.start(), flush=True)
        deadline = time.monotonic() + duration if duration else None
        while deadline is None or time.monotonic() < deadline:
            demo.tick()
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    except children.ChildExited as exited:
        print(f"\n{exited.report()}\nstopping the demo", file=sys.stderr, flush=True)
        return 1
    except TimeoutError as err:
        print(f"\ndemo: {err}; logs in {demo.workdir}/", file=sys.stderr, flush=True)
        return 1
    return 0
