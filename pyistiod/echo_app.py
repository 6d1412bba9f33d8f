"""A tiny HTTP app for the demo mesh and the end-to-end tests.

``GET /anything`` answers JSON naming the pod, path, Host header and the
``x-forwarded-client-cert`` header its sidecar added (the caller's SPIFFE ID
when the call came over mTLS).
``GET /call/HOST/PORT/PATH`` calls service ``HOST:PORT`` through the pod's own
sidecar (its outbound address, with ``Host: HOST``) and wraps the answer, so
one request crosses both sidecars. ``GET /flaky...`` fails every other request
with 500; ``GET /__count`` tells how many requests the app has served (to see
mirrored copies arrive). A request with ``Upgrade: websocket`` becomes a websocket
(RFC 6455) that echoes each text message back. ``--tcp-port`` adds a line-echo TCP server.

``--calls HOST:PORT,...`` makes the app a middle tier, like bookinfo's productpage:
every other GET also calls each listed service through the sidecar (same path,
``Host: HOST``) and puts the answers in its body under ``"calls"``, keyed by host.
A failed call does not fail the request: its entry holds the status (0 when
nothing answered) and the error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socketserver
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def call_upstream(url: str, host: str, timeout: float = 5.0) -> tuple[int, object]:
    """GET ``url`` with ``Host: host``: 200 and its JSON answer, else the failure's status
    (0 when nothing answered) and a JSON-ready description of it."""
    req = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return 200, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {"status": err.code, "body": err.read().decode(errors="replace")}
    except (OSError, ValueError) as err:  # ValueError: an answer that is not JSON
        return 0, {"status": 0, "error": str(err)}


def parse_calls(text: str) -> tuple[tuple[str, int], ...]:
    """``HOST:PORT[,HOST:PORT...]`` as pairs; ``ValueError`` naming a malformed entry."""
    calls = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"--calls wants HOST:PORT entries, got {entry!r}")
        calls.append((host, int(port)))
    return tuple(calls)


def _handler(
    pod: str, outbound: str, calls: tuple[tuple[str, int], ...] = ()
) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()
    served = [0]  # requests served, /__count excluded

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.headers.get("Upgrade", "").lower() == "websocket":
                self._websocket()
                return
            if self.path == "/__count":
                self._reply(200, {"pod": pod, "count": served[0]})
                return
            with lock:
                served[0] += 1
                n = served[0]
            body: dict[str, object] = {
                "pod": pod,
                "path": self.path,
                "host": self.headers.get("Host", ""),
                "xfcc": self.headers.get("x-forwarded-client-cert", ""),
            }
            status = 200
            if self.path.startswith("/call/"):
                status, body["upstream"] = self._call()
            elif self.path.startswith("/flaky") and n % 2:
                status = 500  # every other request fails (500: not retried by default)
            elif calls:
                body["calls"] = {
                    host: call_upstream(f"http://{outbound}:{port}{self.path}", host)[1]
                    for host, port in calls
                }
            self._reply(status, body)

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _call(self) -> tuple[int, object]:
            _, _, host, port, *rest = self.path.split("/", 4)
            url = f"http://{outbound}:{port}/{rest[0] if rest else ''}"
            status, answer = call_upstream(url, host)
            return (200, answer) if status == 200 else (502, answer)

        def _websocket(self) -> None:
            """Accept the upgrade, then echo text messages until the peer closes."""
            key = self.headers.get("Sec-WebSocket-Key", "")
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", websocket_accept(key))
            self.end_headers()
            self.wfile.flush()
            while (message := read_frame(self.rfile)) is not None:
                self.wfile.write(frame(message, mask=False))
                self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def websocket_accept(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` answering ``key`` (RFC 6455, 4.2.2)."""
    digest = hashlib.sha1((key + _WEBSOCKET_GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def frame(text: str, *, mask: bool) -> bytes:
    """One final text frame (a client masks, a server does not; RFC 6455, 5.2)."""
    payload = text.encode()
    size = len(payload)
    head = bytes([0x81]) + (
        bytes([size | (0x80 if mask else 0)])
        if size < 126
        else bytes([126 | (0x80 if mask else 0)]) + size.to_bytes(2, "big")
    )
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(stream: Any) -> str | None:
    """The text of the next frame on ``stream`` (masked or not); None at a close or EOF."""
    head = stream.read(2)
    if len(head) < 2 or head[0] & 0x0F == 0x8:
        return None
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(stream.read(2), "big")
    key = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    payload = stream.read(size)
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload)).decode(errors="replace")


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


def main() -> None:
    """Run the app until killed."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pod", required=True)
    p.add_argument("--address", required=True, help="where the app listens (its app address)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--outbound", default="127.0.0.1", help="the sidecar's outbound address")
    p.add_argument("--tcp-port", type=int)
    p.add_argument("--calls", type=parse_calls, default=(),
                   help="HOST:PORT,... to call through the sidecar on every GET")  # fmt: skip
    a = p.parse_args()
    if a.tcp_port:
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        tcp = socketserver.ThreadingTCPServer((a.address, a.tcp_port), _Echo)
        threading.Thread(target=tcp.serve_forever, daemon=True).start()
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer((a.address, a.port), _handler(a.pod, a.outbound, a.calls)).serve_forever()


if __name__ == "__main__":
    main()
