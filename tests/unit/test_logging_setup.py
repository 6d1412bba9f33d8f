"""Log lines of several processes sharing one stderr (serve's workers) never interleave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOGS_MANY_LINES = """
import structlog
from pyistiod import logging_setup
logging_setup.configure("info")
log = structlog.get_logger("t")
for i in range(2000):
    log.info("event.some_name", i=i, pad="x" * 150)
"""


def test_processes_sharing_a_log_file_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.log"
    with path.open("wb") as shared:
        procs = [
            subprocess.Popen([sys.executable, "-c", LOGS_MANY_LINES], stderr=shared)
            for _ in range(3)
        ]
        for proc in procs:
            assert proc.wait(60) == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 6000
    assert sorted(json.loads(line)["i"] for line in lines) == sorted(list(range(2000)) * 3)
