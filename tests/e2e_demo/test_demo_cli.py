"""``pyistiod demo`` as a user runs it: a bookinfo mesh of real Envoys behind a gateway.

One demo runs for the module, started as ``python -m pyistiod.cli demo`` with a
leftover invalid file in its config (which must be refused, not crash it). The
tests run in file order: a request through the gateway, the canary shifted
live, an invalid edit refused while traffic flows, a second demo refused at
once, then SIGTERM, after which no process the demo started may be left.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyistiod.demo import EXAMPLE
from pyistiod.local_mesh import http_get

pytestmark = pytest.mark.e2e

LEFTOVER = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: leftover
  namespace: default
spec:
  hosts: [details]
  http:
    - route:
        - destination: {host: details}
          timout: 5s
"""
SPLIT = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
    - route:
        - destination: {host: reviews, subset: v1}
          %s: 0
        - destination: {host: reviews, subset: v3}
          weight: 100
"""


@dataclass
class RunningDemo:
    """The demo process, what it printed so far, and its work directory."""

    proc: subprocess.Popen[str]
    workdir: Path
    output: list[str] = field(default_factory=list)
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    url: str = ""

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float) -> str:
        """The first line from now on matching ``pattern``; fails with the output so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if re.search(pattern, line):
                return line
        pytest.fail(f"no line matching {pattern!r}; the demo said:\n" + "\n".join(self.output))

    def productpage(self) -> dict[str, Any]:
        status, body = http_get(self.url, timeout=10)
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root``, each with its start time (to tell a reused pid)."""
    parents: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents.setdefault(int(fields[1]), []).append(pid)
        started[pid] = fields[19]
    found: dict[int, str] = {}
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = started[pid]
        todo += parents.get(pid, [])
    return found


def alive(pids: dict[int, str]) -> list[int]:
    """Those of ``pids`` still running (same start time), zombies aside."""
    left = []
    for pid, start in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[19] == start and fields[0] != "Z":
            left.append(pid)
    return left


def start_demo(workdir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pyistiod.cli", "demo", "--workdir", str(workdir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    work = tmp_path_factory.mktemp("demo")
    shutil.copytree(EXAMPLE, work / "config")
    (work / "config" / "leftover.yaml").write_text(LEFTOVER)
    running = RunningDemo(start_demo(work), work)
    threading.Thread(target=running.read, daemon=True).start()
    try:
        line = running.wait_line(r"curl http://\S+/productpage", timeout=150)
        running.url = line.split()[-1]
        running.wait_line("Ctrl-C stops everything", timeout=5)
        yield running
    finally:
        left = descendants(running.proc.pid)
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            running.proc.wait(30)
        for pid in alive(left):  # only if a test failed: leave nothing running
            os.kill(pid, signal.SIGKILL)


def test_a_leftover_invalid_file_is_refused_and_the_demo_starts(demo: RunningDemo) -> None:
    refused = [line for line in demo.output if "refused: leftover.yaml" in line]
    assert refused and "field spec.http[0].route[0].timout" in refused[0], demo.output


def test_productpage_answers_through_the_gateway_with_details_and_reviews(
    demo: RunningDemo,
) -> None:
    seen = set()
    for _ in range(8):
        answer = demo.productpage()
        assert answer["pod"] == "productpage-v1"
        assert "sa/istio-ingressgateway" in answer["xfcc"]  # mTLS from the gateway
        details, reviews = answer["calls"]["details"], answer["calls"]["reviews"]
        assert details["pod"] == "details-v1"
        assert "sa/bookinfo-productpage" in reviews["xfcc"]
        if reviews["pod"] != "reviews-v1":  # v2 and v3 call ratings
            assert reviews["calls"]["ratings"]["pod"] == "ratings-v1"
        seen.add(reviews["pod"])
    assert seen <= {"reviews-v1", "reviews-v3"}  # the example's split: v1 50 / v3 50


def test_the_authorization_policy_keeps_productpage_from_ratings(demo: RunningDemo) -> None:
    productpage_outbound = "http://127.2.20.11:9080/"
    assert http_get(productpage_outbound, host="ratings")[0] == 403
    assert http_get(productpage_outbound, host="details")[0] == 200


def test_shifting_the_canary_reaches_the_traffic(demo: RunningDemo) -> None:
    (demo.workdir / "config" / "reviews-split.yaml").write_text(SPLIT % "weight")
    demo.wait_line("^\\[.*\\] applied: ", timeout=20)
    deadline = time.monotonic() + 20
    recent: list[str] = []
    while recent[-10:] != ["reviews-v3"] * 10:
        assert time.monotonic() < deadline, f"not only v3 within 20 s: {recent}"
        recent.append(demo.productpage()["calls"]["reviews"]["pod"])


def test_an_invalid_edit_is_refused_and_traffic_keeps_flowing(demo: RunningDemo) -> None:
    (demo.workdir / "config" / "reviews-split.yaml").write_text(SPLIT % "weigth")
    line = demo.wait_line("refused: reviews-split.yaml", timeout=20)
    assert "weigth" in line and "last valid version stays in force" in line
    for _ in range(5):
        assert demo.productpage()["calls"]["reviews"]["pod"] == "reviews-v3"


def test_a_second_demo_fails_at_once_saying_the_address_is_in_use(
    demo: RunningDemo, tmp_path: Path
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "junk.yaml").write_text("kind: [")
    started = time.monotonic()
    second = start_demo(tmp_path, "--reset")
    out, _ = second.communicate(timeout=30)
    assert second.returncode != 0 and "is in use" in out, out
    assert time.monotonic() - started < 15
    assert sorted(p.name for p in (tmp_path / "config").iterdir()) == sorted(
        p.name for p in EXAMPLE.iterdir()
    )  # --reset restored the example before the demo found the addresses taken


def test_sigterm_stops_every_process_the_demo_started(demo: RunningDemo) -> None:
    started = descendants(demo.proc.pid)
    assert len(started) >= 1 + 6 * 2 + 1  # pyistiod, 6 apps and sidecars, the gateway
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(30) == 0
    assert alive(started) == []


def test_a_child_that_exits_stops_the_demo_saying_which_and_why(tmp_path: Path) -> None:
    running = RunningDemo(start_demo(tmp_path), tmp_path)
    threading.Thread(target=running.read, daemon=True).start()
    started: dict[int, str] = {}
    try:
        running.wait_line("Ctrl-C stops everything", timeout=150)
        started = descendants(running.proc.pid)
        [details] = [p for p in started if b"details-v1" in Path(f"/proc/{p}/cmdline").read_bytes()
                     and b"echo_app" in Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
        os.kill(details, signal.SIGKILL)
        running.wait_line("^app-details-v1 was killed by SIGKILL", timeout=20)
        assert running.proc.wait(30) == 1
        assert alive(started) == []
    finally:
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            running.proc.wait(30)
        for pid in alive(started):
            os.kill(pid, signal.SIGKILL)
