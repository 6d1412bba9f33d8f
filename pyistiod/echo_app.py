"""A tiny HTTP app for the demo mesh and the end-to-end tests.

``GET /anything`` answers JSON naming the pod, path, Host header and the
``x-forwarded-client-cert`` header its sidecar added (the caller's SPIFFE ID
when the call came over mTLS).
``GET /call/HOST/PORT/PATH`` calls service ``HOST:PORT`` through the pod's own
sidecar (its outbound address, with ``Host: HOST``) and wraps the answer, so
one request crosses both sidecars. ``GET /flaky...`` fails every other request
with 500; ``GET /__count`` tells how many requests the app has served (to see
mirrored copies arrive). ``--tcp-port`` adds a line-echo TCP server.
"""

from __future__ import annotations

import argparse
import json
import socketserver
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _handler(pod: str, outbound: str) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()
    served = [0]  # requests served, /__count excluded

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
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
            req = urllib.request.Request(url, headers={"Host": host})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    return 200, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                return 502, {"status": err.code, "body": err.read().decode(errors="replace")}
            except OSError as err:
                return 502, {"error": str(err)}

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


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
    a = p.parse_args()
    if a.tcp_port:
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        tcp = socketserver.ThreadingTCPServer((a.address, a.tcp_port), _Echo)
        threading.Thread(target=tcp.serve_forever, daemon=True).start()
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer((a.address, a.port), _handler(a.pod, a.outbound)).serve_forever()


if __name__ == "__main__":
    main()
