"""Every setting of pyistiod in one typed object, passed in (no env-var flags)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

DEFAULT_CA_DIR = ".pyistiod/ca"
"""Where ``serve`` keeps its CA, and where ``bootstrap`` mints tokens from, unless told."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``pyistiod serve`` runs with; defaults follow istiod's."""

    config_dir: Path | None = None
    """A directory of Kubernetes-shaped YAML, watched; with ``kubeconfig``, both feed one mesh."""
    kubeconfig: Path | None = None
    """Follow the API server this kubeconfig names (list-then-watch)."""
    in_cluster: bool = False
    """Follow the API server of the cluster pyistiod runs in (its ServiceAccount)."""
    webhook_address: str = "127.0.0.1:15017"
    """The validating admission webhook (istiod's port 15017), in Kubernetes mode; "" to
    disable. Outside a cluster pyistiod registers it with the API server by this URL."""
    discovery_selectors: tuple[str, ...] = ()
    """Istio's ``meshConfig.discoverySelectors`` as label selectors (``env=prod,tier in (a,b)``):
    in Kubernetes mode only the namespaces matching one of them (and the system namespace)
    count; none given, every namespace."""
    system_namespace: str = "istio-system"
    """istiod's namespace: in Kubernetes mode the CA Secret ``istio-ca-secret`` lives there."""
    kube_sync_timeout: float = 60.0
    """How long the first list of every watched kind may take before serve refuses to start."""
    xds_address: str = "127.0.0.1:15010"
    """Plain-text xDS (istiod's port 15010)."""
    monitoring_address: str = "127.0.0.1:15014"
    """Prometheus ``/metrics`` (istiod's port 15014)."""
    debounce_after: float = 0.1
    """Quiet period after the last config change before a push (istiod: 100 ms)."""
    debounce_max: float = 10.0
    """Longest a push waits under a stream of changes (istiod: 10 s)."""
    domain_suffix: str = "cluster.local"
    allow_empty_config: bool = False
    """Let a config directory that yields no object empty the mesh; by default such a read
    is taken for an accident and the last good config stays served."""
    push_concurrency: int = 100
    """Responses encoded and written at once (Istio's ``PILOT_PUSH_THROTTLE``), per worker."""
    connection_rate: float = 1000.0
    """New xDS streams admitted per second, after a burst as large (istiod's
    ``PILOT_MAX_REQUESTS_PER_SECOND`` does the same job, with a lower default); the
    workers share it."""
    workers: int = 1
    """Processes serving xDS (``serve --workers``; the command's default is the number of
    cores): with more than one, a supervisor owns the config sources, the CA and the
    monitoring port, and each worker serves the proxies the kernel hands it."""
    identifier: str = "pyistiod"
    """``control_plane.identifier`` in every response."""
    secure_xds_address: str = "127.0.0.1:15012"
    """TLS xDS and the CA service (istiod's port 15012); "" to disable."""
    ca_dir: Path = Path(".pyistiod/ca")
    """Root CA (created on first start) or Istio's plug-in ``cacerts`` layout; token key."""
    trust_domain: str = "cluster.local"
    workload_cert_ttl: timedelta = timedelta(hours=24)
    """Lifetime of workload certificates (Istio's default 24 h)."""


def host_port(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) split; raises ``ValueError`` naming the address."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
