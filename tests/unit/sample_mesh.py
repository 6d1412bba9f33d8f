"""A small hand-built mesh for translator tests.

Namespace ``default``: ``backend`` (HTTP 9080 -> 8080, gRPC 9090 -> named port
``grpc`` = 7070 on its pod), ``frontend`` (HTTP 80 -> 8000) and ``legacy`` (TCP
9080, loses the port to HTTP). Namespace ``data``: ``db`` (TCP 5432). Service
entries: ``api.example.com`` (DNS, TLS 443, no endpoints), ``passthrough.example.com``
(NONE, TCP 8443) and ``backend.default`` (STATIC, HTTP 9080: collides with
backend's ``backend.default`` domain).

``meshed_model`` is the same mesh with sidecars, as security tests want it:
backend and frontend endpoints carry Istio's ``security.istio.io/tlsMode:
istio`` label and their service accounts; ``db`` has no sidecar.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import NO_POLICIES, Policies
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.services import (
    Endpoint,
    ObjectKey,
    Protocol,
    Resolution,
    Service,
    ServicePort,
    Workload,
    labels_of,
)

BACKEND = "backend.default.svc.cluster.local"
FRONTEND = "frontend.default.svc.cluster.local"
LEGACY = "legacy.default.svc.cluster.local"
DB = "db.data.svc.cluster.local"
API = "api.example.com"
PASSTHROUGH = "passthrough.example.com"
BACKEND_SE = "backend.default"


def kube_service(
    name: str, namespace: str, ports: Sequence[ServicePort], app: str, addresses: tuple[str, ...]
) -> Service:
    """A Kubernetes Service selecting ``app=<app>``."""
    return Service(
        hostname=f"{name}.{namespace}.svc.cluster.local",
        namespace=namespace,
        name=name,
        ports=tuple(ports),
        source=ObjectKey("Service", namespace, name),
        selector=labels_of({"app": app}),
        addresses=addresses,
    )


def service_entry(host: str, port: ServicePort, resolution: Resolution) -> Service:
    """A ServiceEntry host in namespace ``default``."""
    return Service(
        hostname=host,
        namespace="default",
        name=host,
        ports=(port,),
        source=ObjectKey("ServiceEntry", "default", host),
        resolution=resolution,
        is_kubernetes=False,
    )


def services() -> list[Service]:
    """Every service of the sample mesh."""
    return [
        kube_service(
            "backend",
            "default",
            [
                ServicePort("http", 9080, Protocol.HTTP, 8080),
                ServicePort("grpc", 9090, Protocol.GRPC, "grpc"),
            ],
            "backend",
            ("10.96.0.10",),
        ),
        kube_service(
            "frontend", "default", [ServicePort("http", 80, Protocol.HTTP, 8000)], "frontend", ()
        ),
        kube_service("legacy", "default", [ServicePort("tcp", 9080, Protocol.TCP)], "legacy", ()),
        kube_service("db", "data", [ServicePort("tcp", 5432, Protocol.TCP, 5432)], "db", ()),
        service_entry(API, ServicePort("tls", 443, Protocol.TLS), Resolution.DNS),
        service_entry(PASSTHROUGH, ServicePort("tcp", 8443, Protocol.TCP), Resolution.NONE),
        service_entry(BACKEND_SE, ServicePort("http", 9080, Protocol.HTTP), Resolution.STATIC),
    ]


def endpoints(extra_backend: bool = False) -> dict[str, list[Endpoint]]:
    """Endpoints by hostname; ``extra_backend`` adds a second ready backend pod."""
    backend = [
        Endpoint(9080, "127.0.1.1", 8080, workload="backend-1"),
        Endpoint(9090, "127.0.1.1", 7070, workload="backend-1"),
        Endpoint(9080, "127.0.1.3", 8080, workload="backend-3", ready=False),
    ]
    if extra_backend:
        backend.append(Endpoint(9080, "127.0.1.4", 8080, workload="backend-4"))
    return {
        BACKEND: backend,
        FRONTEND: [Endpoint(80, "127.0.1.2", 8000, workload="frontend-1")],
        DB: [Endpoint(5432, "127.0.2.1", 5432, workload="db-1")],
    }


def workloads() -> list[Workload]:
    """The pods of the sample mesh."""
    return [
        Workload(
            "default",
            "backend-1",
            "127.0.1.1",
            labels_of({"app": "backend"}),
            "backend",
            ObjectKey("Pod", "default", "backend-1"),
            ports=(("grpc", 7070),),
        ),
        Workload(
            "default",
            "frontend-1",
            "127.0.1.2",
            labels_of({"app": "frontend"}),
            "frontend",
            ObjectKey("Pod", "default", "frontend-1"),
        ),
    ]


def sample_model(extra_backend: bool = False, shuffle_seed: int | None = None) -> MeshModel:
    """The sample mesh; ``shuffle_seed`` feeds the inputs in a shuffled order."""
    svcs, wls = services(), workloads()
    eps = endpoints(extra_backend)
    if shuffle_seed is not None:
        rng = random.Random(shuffle_seed)
        rng.shuffle(svcs)
        rng.shuffle(wls)
        for items in eps.values():
            rng.shuffle(items)
    return MeshModel.build(svcs, eps, wls)


TLS_MODE_ISTIO = {"security.istio.io/tlsMode": "istio"}


def meshed_model(policies: Policies = NO_POLICIES) -> MeshModel:
    """The sample mesh with sidecars on backend and frontend, and ``policies``."""
    eps = endpoints()
    for host, app in ((BACKEND, "backend"), (FRONTEND, "frontend")):
        eps[host] = [
            replace(ep, labels=labels_of({"app": app, **TLS_MODE_ISTIO}), service_account=app)
            for ep in eps[host]
        ]
    eps[DB] = [replace(ep, labels=labels_of({"app": "db"}), service_account="db") for ep in eps[DB]]
    return MeshModel.build(services(), eps, workloads(), policies)


def sidecar(pod: str, ip: str, namespace: str = "default", app: str = "") -> Proxy:
    """A sidecar proxy with label ``app=<app>`` (none if empty)."""
    return Proxy(
        type=ProxyType.SIDECAR,
        ip=ip,
        pod_name=pod,
        namespace=namespace,
        domain=f"{namespace}.svc.cluster.local",
        labels=labels_of({"app": app} if app else {}),
    )


BACKEND_PROXY = sidecar("backend-1", "127.0.1.1", app="backend")
FRONTEND_PROXY = sidecar("frontend-1", "127.0.1.2", app="frontend")
DATA_PROXY = sidecar("client-1", "127.0.2.9", namespace="data", app="client")
ROUTER = Proxy(
    ProxyType.ROUTER,
    "127.0.9.1",
    "gw-1",
    "default",
    "default.svc.cluster.local",
    labels=labels_of({"app": "backend"}),
)
"""A gateway whose labels match ``backend``: routers still get no inbound side."""
