"""The bookinfo mesh the traffic tests drive: its pods, ports and helpers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyistiod.local_mesh import LocalMesh, Pod, Ports, config_dump, get_ok

EXAMPLES = Path(__file__).parents[2] / "pyistiod" / "examples"
EXTERNAL = ("127.0.9.1", 7777)
"""An "external" service: a plain echo app outside the mesh, reached through a ServiceEntry."""


@dataclass
class Bookinfo:
    """The running mesh; the test client plays productpage's app."""

    local: LocalMesh
    config: Path
    ports: Ports
    pods: dict[str, Pod]

    def call(
        self, host: str, path: str = "/", headers: dict[str, str] | None = None, port: int = 9080
    ) -> tuple[int, dict[str, Any]]:
        """GET through productpage's sidecar (its outbound listener) to ``host``."""
        req = urllib.request.Request(
            f"http://127.2.0.101:{port}{path}", headers={"Host": host, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            body = err.read()
            return err.code, json.loads(body) if body.startswith(b"{") else {}
        except OSError:
            return 0, {}  # not listening (yet): the sidecar is still starting

    def pod_of(self, host: str, path: str = "/", headers: dict[str, str] | None = None) -> str:
        status, body = self.call(host, path, headers)
        return str(body.get("pod", status))

    def apply(self, name: str, text: str) -> Path:
        path = self.config / name
        path.write_text(text)
        return path

    def dump(self, pod: str) -> dict[str, Any]:
        return config_dump(f"{self.pods[pod].ip}:15000")

    def served(self, pod: str) -> int:
        body = get_ok(f"http://127.1.0.{self.pods[pod].ip.rsplit('.', 1)[1]}:9080/__count")
        return int(json.loads(body or "{}").get("count", -1))
