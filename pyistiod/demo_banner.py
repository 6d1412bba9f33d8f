"""What ``pyistiod demo`` prints once its mesh serves: who answered, and what to try."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from pyistiod.local_mesh import Pod
from translators.mesh.model.loopback import outbound_address


def path_of(answer: dict[str, Any]) -> str:
    """Who answered, as ``productpage-v1 -> (details-v1, reviews-v3 -> (ratings-v1))``."""
    calls = answer.get("calls", {})
    inner = ", ".join(path_of(a) if "pod" in a else f"{h}: {a.get('status')}"
                      for h, a in calls.items())  # fmt: skip
    return f"{answer.get('pod')} -> ({inner})" if calls else str(answer.get("pod"))


def command() -> str:
    """How to run ``pyistiod`` from this shell."""
    beside = Path(sys.executable).parent / "pyistiod"
    if shutil.which("pyistiod") or not beside.exists():
        return "pyistiod"
    return str(beside.relative_to(Path.cwd()) if beside.is_relative_to(Path.cwd()) else beside)


def banner(url: str, answer: dict[str, Any], pods: list[Pod], config: Path, workdir: Path,
           admin_port: int) -> str:  # fmt: skip
    """What to try, once the mesh serves."""
    front = next((p for p in pods if p.labels.get("app") == "productpage"), pods[0])
    reset = "" if workdir == Path(".demo") else f" --workdir {workdir}"
    return f"""
The demo mesh is up: pyistiod, an ingress gateway and {len(pods)} apps, each with a real
Envoy sidecar; mTLS STRICT mesh-wide, and AuthorizationPolicies saying who may call whom.

  curl {url}
      answered by {path_of(answer)}

Try:
  - shift the canary: edit the weights of reviews v1 and v3 in
    {config}/reviews-split.yaml, save, and curl again
  - {command()} proxy-status      every proxy's sync state, as istioctl shows it
  - curl -H 'Host: ratings' http://{outbound_address(front.ip)}:9080/
      productpage's sidecar calling ratings: 403, only reviews may
  - curl http://{front.ip}:{admin_port}/config_dump      what productpage's Envoy got
  - a bad edit (`weigth: 0` in that file): refused below, the last valid split stays
  - {command()} demo --reset{reset}      restore the example config
Edits applied or refused are told below; logs are in {workdir}/. Ctrl-C stops everything.
"""
