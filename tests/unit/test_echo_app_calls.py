"""echo_app's ``--calls``: a plain GET also calls the listed services and carries their answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from pyistiod.echo_app import _handler, parse_calls
from pyistiod.local_mesh import free_port, http_get


def serve(pod: str, calls: tuple[tuple[str, int], ...] = ()) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(pod, "127.0.0.1", calls))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def middle() -> Iterator[tuple[ThreadingHTTPServer, int]]:
    """``middle`` calls ``upstream`` (which answers) and ``gone`` (a port nobody listens on)."""
    upstream = serve("upstream-0")
    gone = free_port()
    port = upstream.server_address[1]
    server = serve("middle-0", (("upstream", int(port)), ("gone", gone)))
    yield server, gone
    server.shutdown()
    upstream.shutdown()


def test_a_plain_get_carries_each_upstreams_answer_keyed_by_host(
    middle: tuple[ThreadingHTTPServer, int],
) -> None:
    server, _ = middle
    status, body = http_get(f"http://127.0.0.1:{server.server_address[1]}/productpage")
    assert status == 200
    reply = json.loads(body)
    up = reply["calls"]["upstream"]
    assert (up["pod"], up["path"], up["host"]) == ("upstream-0", "/productpage", "upstream")


def test_a_failed_call_is_recorded_and_does_not_fail_the_request(
    middle: tuple[ThreadingHTTPServer, int],
) -> None:
    server, _ = middle
    status, body = http_get(f"http://127.0.0.1:{server.server_address[1]}/")
    assert status == 200
    failed = json.loads(body)["calls"]["gone"]
    assert failed["status"] == 0 and "error" in failed


def test_count_and_call_paths_do_not_fan_out(middle: tuple[ThreadingHTTPServer, int]) -> None:
    server, _ = middle
    status, body = http_get(f"http://127.0.0.1:{server.server_address[1]}/__count")
    assert status == 200 and "calls" not in json.loads(body)


def test_parse_calls() -> None:
    assert parse_calls("details:9080, reviews:9080") == (("details", 9080), ("reviews", 9080))
    assert parse_calls("") == ()
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_calls("details")
