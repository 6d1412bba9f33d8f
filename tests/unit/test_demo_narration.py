"""What ``pyistiod demo`` tells on the terminal, and how it reads its example and its children."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from pyistiod import demo_children
from pyistiod.demo import EXAMPLE, addresses, app_calls, pods_of
from pyistiod.demo_banner import path_of
from pyistiod.demo_events import LogFollower, Narrator
from pyistiod.local_mesh import LocalMesh
from translators.sources.files import load_dir

INVALID = {
    "event": "config.invalid",
    "file": "reviews-split.yaml",
    "document": 0,
    "object": "VirtualService default/reviews",
    "field": "spec.http[0].route[0].weigth",
    "reason": 'unknown field; did you mean "weight"?',
    "in_force": "its last valid version",
}
APPLIED = {"event": "config.applied", "objects": 25, "files": 7, "refused": 1}


def told(narrator: Narrator, *entries: dict[str, object]) -> list[str | None]:
    return [narrator.line(json.dumps(e)) for e in entries]


def test_a_refusal_is_one_line_with_file_object_field_and_reason() -> None:
    line, applied = told(Narrator(), INVALID, APPLIED)
    assert line == (
        "refused: reviews-split.yaml (document 0) VirtualService default/reviews: field "
        'spec.http[0].route[0].weigth: unknown field; did you mean "weight"? '
        "(its last valid version stays in force)"
    )
    assert applied == "applied: 25 objects from 7 files in force, 1 refused (see above)"


def test_a_refusal_repeated_by_the_next_read_is_told_as_still_refused() -> None:
    narrator = Narrator()
    told(narrator, INVALID, APPLIED)
    again, _ = told(narrator, INVALID, APPLIED)
    assert again is not None and again.startswith("still refused: reviews-split.yaml")


def test_debug_lines_and_non_json_say_nothing() -> None:
    narrator = Narrator()
    assert told(narrator, {"event": "xds.ack", "node": "n"}) == [None]
    assert narrator.line("Traceback (most recent call last):") is None


def test_the_follower_reads_complete_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "pyistiod.log"
    follower = LogFollower(log)
    assert follower.lines() == []  # not written yet
    log.write_text('{"a": 1}\n{"b"')
    assert follower.lines() == ['{"a": 1}']
    with log.open("a") as f:
        f.write(": 2}\n")
    assert follower.lines() == ['{"b": 2}']


def test_the_example_runs_bookinfo_behind_a_gateway() -> None:
    model = load_dir(EXAMPLE).model
    pods = {p.name: p for p in pods_of(model)}
    assert set(pods) == {
        *("productpage-v1", "details-v1", "ratings-v1"),
        *("reviews-v1", "reviews-v2", "reviews-v3"),
    }
    [gateway] = pods_of(model, gateways=True)
    assert gateway.proxy_type == "router" and gateway.http_port == 8080
    assert app_calls(EXAMPLE) == {
        "productpage-v1": "details:9080,reviews:9080",
        "reviews-v2": "ratings:9080",
        "reviews-v3": "ratings:9080",
    }
    bound = addresses(list(pods.values()), [gateway])
    assert len(bound) == len(set(bound)) == 3 + 6 * 3 + 1 + 7


def test_path_of_names_who_answered() -> None:
    answer = {
        "pod": "productpage-v1",
        "calls": {
            "details": {"pod": "details-v1"},
            "reviews": {"pod": "reviews-v2", "calls": {"ratings": {"status": 403}}},
        },
    }
    assert path_of(answer) == "productpage-v1 -> (details-v1, reviews-v2 -> (ratings: 403))"


def test_an_address_listened_on_is_taken() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()
        assert demo_children.taken([busy]) == busy
    assert demo_children.taken([busy]) is None


def test_an_exited_child_is_named_with_its_code_and_last_lines(tmp_path: Path) -> None:
    mesh = LocalMesh(tmp_path)
    script = "import sys; print('\\n'.join(f'line {i}' for i in range(20))); sys.exit(3)"
    mesh.spawn("app-x", [sys.executable, "-c", script]).wait(10)
    try:
        demo_children.check(mesh)
    except demo_children.ChildExited as exited:
        assert str(exited) == "app-x exited with code 3"
        assert exited.tail == [f"line {i}" for i in range(10, 20)]
    else:
        raise AssertionError("no ChildExited")
    finally:
        mesh.stop()


def test_exit_reasons_and_readable_log_lines() -> None:
    assert demo_children.exit_reason(-9) == "was killed by SIGKILL"
    line = json.dumps({"event": "serve.failed", "level": "error", "timestamp": "t", "why": "x"})
    assert demo_children.readable(line) == "error serve.failed why=x"
    assert demo_children.readable("plain") == "plain"
