"""An HTTPS server outside the mesh with a CA of its own, for TLS origination tests.

It answers every GET with JSON naming the SNI the client sent, so a test sees what Envoy
put in its ClientHello, and, when it requires client certificates (``client_ca``), the
common name of the one the client presented.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass
class OwnCa:
    """A root that signs server certificates, written as PEM files under ``directory``."""

    directory: Path
    name: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.name))
            .issuer_name(_name(self.name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.directory / f"{self.name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    @property
    def pem_bytes(self) -> bytes:
        """The root certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, name: str) -> tuple[bytes, bytes]:
        """(certificate, key) PEM of a leaf for ``name`` (common name and DNS SAN), good for
        a server and a client alike."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def server_files(self, dns_name: str) -> tuple[Path, Path]:
        """(certificate, key) files of a server certificate for ``dns_name``."""
        cert, key = self.issue(dns_name)
        cert_path = self.directory / f"{dns_name}.crt"
        key_path = self.directory / f"{dns_name}.key"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        return cert_path, key_path


def reply_json(handler: BaseHTTPRequestHandler, body: object) -> None:
    """Answer 200 with ``body`` as JSON (the test servers' one kind of answer)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class HttpsEcho:
    """The server, in a thread of the test process; ``sni_seen`` lists every ClientHello's
    server name (in order); ``stop`` ends it. With ``client_ca`` it requires a client
    certificate signed by that CA (a handshake without one fails) and answers with the
    client certificate's common name (``client``)."""

    def __init__(
        self, address: tuple[str, int], cert: Path, key: Path, client_ca: Path | None = None
    ) -> None:
        self.sni_seen: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.sni_callback = lambda _sock, name, _ctx: self.sni_seen.append(name or "")
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(client_ca))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                peer = getattr(self.connection, "getpeercert", lambda: None)() or {}
                subject = dict(pair[0] for pair in peer.get("subject", ()))
                client = subject.get("commonName", "")
                reply_json(self, {"tls": True, "path": self.path, "client": client})

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads answers, not logs."""

        self.server = ThreadingHTTPServer(address, Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
