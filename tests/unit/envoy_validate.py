"""Run the real Envoy in ``--mode validate`` over a config: proof that Envoy accepts it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ENVOY = Path(sys.executable).parent / "envoy"


def envoy_validate(config: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    """Write ``config`` as JSON under ``directory`` and validate it with Envoy."""
    path = directory / "envoy.json"
    path.write_text(json.dumps(config, indent=1))
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--disable-hot-restart", "-l", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
