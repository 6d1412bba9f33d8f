"""The demo mesh the end-to-end tests drive: its pods, ports and helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyistiod.local_mesh import LocalMesh, Pod, Ports, config_dump, http_get

CERT_TTL = "6s"
"""Workload certificates live seconds here, so rotation happens while the tests run."""

E2E_WORKERS = 2
"""The e2e meshes run ``serve --workers 2``: every suite proves the workers serve as one
control plane (the supervisor, the CA, /debug and rotation across processes)."""


@dataclass
class Mesh:
    """The running mesh and what the tests need to reach it."""

    local: LocalMesh
    config: Path
    ports: Ports
    pods: dict[str, Pod]
    debounce: float

    def admin(self, pod: str) -> str:
        return f"{self.pods[pod].ip}:15000"

    def dump(self, pod: str) -> dict[str, Any]:
        return config_dump(self.admin(pod))

    def clusters_text(self, pod: str) -> str:
        return http_get(f"http://{self.admin(pod)}/clusters")[1]

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in (self.local.workdir / "pyistiod.log").read_text().splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events

    def call_backend(self) -> tuple[int, str]:
        front = self.pods["frontend-0"]
        return http_get(f"http://{front.ip}:{front.http_port}/call/backend/9080/hello")
