"""The benchmark mesh as Kubernetes YAML: S services with 3 endpoints each, and its edits.

Every service is ``svc-N`` in namespace ``default`` with one HTTP port named
``http``: 8080 for all of them by default, or with K service ports
(``service_ports``) ``8080 + N % K``, so the S services spread evenly over K
port numbers. pyistiod, like Istio, names a sidecar's outbound route
configurations by port, so K ports give each sidecar K route configurations of
S/K virtual hosts instead of one of S (and K outbound listeners instead of
one); clusters and endpoints are the same. Its EndpointSlice holds 3 ready
addresses in 10.0.0.0/8.
Nothing dials these addresses: they only travel in EDS. The YAML is written
with string templates (not ``yaml.dump``) so that 5,000 services take
milliseconds, and each edit replaces a whole file atomically (write a
temporary file outside the watched directory, then ``os.replace``) so the
server never reads a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

SERVICES_FILE: Final = "services.yaml"
SLICES_FILE: Final = "endpointslices.yaml"
ROUTES_FILE: Final = "virtualservice.yaml"
HTTP_PORT: Final = 8080
EXTRA_PORT: Final = 9090
ENDPOINTS_PER_SERVICE: Final = 3

_SERVICE: Final = """\
apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
  namespace: default
spec:
  selector:
    app: svc-{i}
  ports:
{ports}"""

_PORT: Final = """\
    - name: {name}
      port: {port}
      targetPort: {port}
"""

_SLICE: Final = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-{i}-slice
  namespace: default
  labels:
    kubernetes.io/service-name: svc-{i}
addressType: IPv4
ports:
  - name: http
    port: {port}
    protocol: TCP
endpoints:
{endpoints}"""

_VIRTUAL_SERVICE: Final = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc-0
  namespace: default
spec:
  hosts: [svc-0]
  http:
    - timeout: {timeout}s
      route:
        - destination: {{host: svc-0}}
"""

_ENDPOINT: Final = """\
  - addresses: ["{address}"]
    conditions:
      ready: true
"""


def endpoint_address(service: int, endpoint: int, generation: int = 0) -> str:
    """The address of ``endpoint`` of ``svc-{service}``; a new ``generation`` moves it."""
    return f"10.{service // 256 % 256}.{service % 256}.{endpoint + 1 + 10 * generation}"


@dataclass
class Mesh:
    """The generated mesh and the edits applied to it so far."""

    services: int
    service_ports: int = 1
    """K: how many distinct port numbers the services' one HTTP port spreads over."""
    extra_ports: set[int] = field(default_factory=set)
    """Services that got a second HTTP port (``EXTRA_PORT``)."""
    generations: dict[int, int] = field(default_factory=dict)
    """Per service, how often its first endpoint was moved."""
    timeout: int = 10
    """Seconds of the VirtualService's route timeout (for svc-0)."""

    def __post_init__(self) -> None:
        if not 1 <= self.service_ports <= EXTRA_PORT - HTTP_PORT:
            raise ValueError(
                f"service_ports must be 1..{EXTRA_PORT - HTTP_PORT} (ports from {HTTP_PORT} "
                f"stay below the added port {EXTRA_PORT}), not {self.service_ports}"
            )

    def http_port(self, service: int) -> int:
        """The port number of ``svc-{service}``'s first HTTP port."""
        return HTTP_PORT + service % self.service_ports

    def services_yaml(self) -> str:
        """Every Service, as one multi-document YAML file."""
        docs = []
        for i in range(self.services):
            ports = _PORT.format(name="http", port=self.http_port(i))
            if i in self.extra_ports:
                ports += _PORT.format(name="http-extra", port=EXTRA_PORT)
            docs.append(_SERVICE.format(i=i, ports=ports))
        return "---\n".join(docs)

    def slices_yaml(self) -> str:
        """Every EndpointSlice, as one multi-document YAML file."""
        docs = []
        for i in range(self.services):
            gen = self.generations.get(i, 0)
            addresses = [endpoint_address(i, 0, gen)] + [
                endpoint_address(i, e) for e in range(1, ENDPOINTS_PER_SERVICE)
            ]
            endpoints = "".join(_ENDPOINT.format(address=a) for a in addresses)
            docs.append(_SLICE.format(i=i, port=self.http_port(i), endpoints=endpoints))
        return "---\n".join(docs)

    def write(self, config_dir: Path) -> None:
        """Write both files into ``config_dir``."""
        write_atomically(config_dir / SERVICES_FILE, self.services_yaml())
        write_atomically(config_dir / SLICES_FILE, self.slices_yaml())
        write_atomically(config_dir / ROUTES_FILE, self.routes_yaml())

    def routes_yaml(self) -> str:
        """The one VirtualService (svc-0's, with a route timeout)."""
        return _VIRTUAL_SERVICE.format(timeout=self.timeout)

    def move_endpoint(self, service: int) -> str:
        """Move the first endpoint of ``svc-{service}``; returns the file's new text."""
        self.generations[service] = self.generations.get(service, 0) + 1
        return self.slices_yaml()

    def edit_timeout(self, service: int) -> str:
        """Change the VirtualService's route timeout (a pure RDS edit; ``service`` is 0)."""
        del service
        self.timeout += 1
        return self.routes_yaml()

    def add_port(self, service: int) -> str:
        """Give ``svc-{service}`` a second HTTP port; returns the file's new text."""
        self.extra_ports.add(service)
        return self.services_yaml()


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename.

    The temporary file lives in the parent of ``path``'s directory: outside the
    watched directory, on the same file system (``os.replace`` cannot cross one).
    """
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".tmp", dir=path.parent.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare(services: int, prefix: str, service_ports: int = 1) -> tuple[Path, Path, Mesh]:
    """A fresh work directory holding the generated mesh's config: (workdir, config dir, mesh)."""
    mesh = Mesh(services, service_ports)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    config_dir = workdir / "mesh"
    config_dir.mkdir()
    mesh.write(config_dir)
    return workdir, config_dir, mesh
