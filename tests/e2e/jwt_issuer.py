"""A token issuer for the JWT tests: ES256 tokens signed with a key of its own, and its JWKS
served over HTTP from a thread of the test process (what ``jwksUri`` points Envoy at).

The signer is the few lines RFC 7515 asks for (base64url header and payload, an ECDSA
P-256 SHA-256 signature as raw ``r || s``), so the tests need no JWT library.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tls_upstream import reply_json


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """One signing key (``kid``) and the tokens it signs."""

    def __init__(self, issuer: str, kid: str = "k1") -> None:
        self.issuer = issuer
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, str]:
        """The public key as a JSON Web Key."""
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": self.kid,
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }

    def token(self, sub: str, ttl: float = 600, **claims: Any) -> str:
        """A token for ``sub`` expiring in ``ttl`` seconds (negative: already expired)."""
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": sub, "iat": now, "exp": now + int(ttl), **claims}
        header = {"alg": "ES256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class JwksServer:
    """Serves ``{"keys": [...]}`` of ``issuers`` at any path; ``fetches`` counts the GETs."""

    def __init__(self, address: tuple[str, int], *issuers: Issuer) -> None:
        body = json.dumps({"keys": [i.jwk() for i in issuers]}).encode()
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.fetches += 1
                reply_json(self, body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests read answers, not logs."""

        self.server = ThreadingHTTPServer(address, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
