"""The file mode does not pay for Kubernetes: kubernetes-asyncio (~40 MB) loads only when used."""

from __future__ import annotations

import subprocess
import sys


def test_serving_files_does_not_import_the_kubernetes_client() -> None:
    code = (
        "import sys, pyistiod.cli, pyistiod.serve; "
        "print(sorted(m for m in sys.modules if m.startswith(('kubernetes_asyncio', 'aiohttp'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
