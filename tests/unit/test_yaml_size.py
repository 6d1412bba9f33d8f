"""A YAML alias bomb is refused unread, in bounded time and memory; honest aliases still load."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from translators.mesh.documents.fields import describe
from translators.sources.files import load_dir
from translators.sources.yaml_size import expanded_nodes

BOMB = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: bomb, namespace: default}
spec:
  workloadSelector:
    labels: &i [&h [&g [&f [&e [&d [&c [&b [&a [x, x, x, x, x, x, x, x, x],
      *a, *a, *a, *a, *a, *a, *a, *a], *b, *b, *b, *b, *b, *b, *b, *b], *c, *c, *c, *c, *c,
      *c, *c, *c], *d, *d, *d, *d, *d, *d, *d, *d], *e, *e, *e, *e, *e, *e, *e, *e], *f, *f,
      *f, *f, *f, *f, *f, *f], *g, *g, *g, *g, *g, *g, *g, *g], *h, *h, *h, *h, *h, *h, *h, *h]
  egress: [{hosts: ["./*"]}]
"""

HONEST = """apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: fine, namespace: default, labels: &l {app: reviews}}
spec:
  workloadSelector: {labels: *l}
  egress: [{hosts: ["./*"]}]
"""


def test_the_bomb_is_refused_unread_in_bounded_time_and_memory(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)
    (tmp_path / "fine.yaml").write_text(HONEST)
    tracemalloc.start()
    started = time.perf_counter()
    result = load_dir(tmp_path)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    (error,) = result.errors
    assert (error.path, error.document) == ("bomb.yaml", 0)
    assert "expands to more than 1,000,000 nodes through YAML aliases" in error.reason
    assert result.objects == 1  # the honest Sidecar, aliases and all, is in force
    assert elapsed < 5  # unbounded, it ran for minutes: this bounds the work, not the speed
    assert peak < 20 * 2**20


def test_counting_visits_each_shared_node_once() -> None:
    leaf = ["x"] * 9
    level = leaf
    for _ in range(8):
        level = [level] * 9
    assert expanded_nodes(level, limit=10**12) == sum(9**k for k in range(10))
    assert expanded_nodes(level, limit=1000) == 1001
    cycle: list[object] = []
    cycle.append(cycle)
    assert expanded_nodes(cycle) > 1_000_000


def test_error_messages_render_a_huge_value_short() -> None:
    level: list[object] = ["x"] * 9
    for _ in range(8):
        level = [level] * 9
    assert len(describe(level)) < 60
