"""``pyistiod demo``: the example mesh with real Envoy sidecars, on loopback."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pyistiod.local_mesh import LocalMesh, Pod, Ports, get_ok, wait_for
from translators.mesh.model.mesh import MeshModel
from translators.sources.files import load_dir

PORTS = Ports()


def pods_of(model: MeshModel) -> list[Pod]:
    """One demo pod per Pod in the model (gateways aside), with its HTTP and TCP ports."""
    pods = []
    for w in model.workloads.values():
        if w.source.kind != "Pod" or ("istio", "ingressgateway") in w.labels:
            continue
        ports = dict(w.ports)
        http = ports.get("http", next(iter(ports.values()), 8080))
        pods.append(
            Pod(
                w.name,
                w.namespace,
                w.address,
                http,
                ports.get("tcp"),
                dict(sorted(w.labels)),
                w.service_account,
            )
        )
    return pods


def run_demo(duration: float, workdir: Path) -> int:
    """Start everything, prove one request crosses two sidecars, print how to try it."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "mesh"
    if not config.exists():
        shutil.copytree(Path(__file__).parent / "examples" / "mesh", config)
    pods = pods_of(load_dir(config).model)
    mesh = LocalMesh(workdir)
    try:
        mesh.start_pyistiod(config, PORTS)
        for pod in pods:
            mesh.start_app(pod)
            mesh.start_sidecar(pod, PORTS)
        front = next(p for p in pods if p.labels.get("app") == "frontend")
        url = f"http://{front.ip}:{front.http_port}/call/backend/9080/hello"
        body = wait_for(lambda: get_ok(url), timeout=30)
        print(
            f"pyistiod is serving {len(pods)} Envoy sidecars from {config}/ (edit it: "
            "changes are pushed live).\n"
            f"A request through frontend's sidecar, frontend, then backend's sidecar:\n"
            f"  curl {url}\n  -> {body}\n"
            f"Envoy admin: http://{front.ip}:15000/config_dump   "
            f"metrics: http://127.0.0.1:{PORTS.monitoring}/metrics   logs: {workdir}/*.log"
        )
        deadline = time.monotonic() + duration if duration else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except TimeoutError:
        print(f"the mesh did not come up; see the logs in {workdir}/")
        return 1
    finally:
        mesh.stop()
    return 0
