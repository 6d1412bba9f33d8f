"""The gateway example (``pyistiod/examples/gateway``) made complete for a test run.

The example ships without its TLS Secret: no private key is committed.
``write_gateway_example(dest)`` copies the example's YAML to ``dest`` and adds
``shop-credential.yaml``, a ``kubernetes.io/tls`` Secret with a self-signed
certificate for ``shop.example.com`` generated with ``cryptography``; the
returned ``GatewayExample`` holds the certificate so a client can trust it.
"""

from __future__ import annotations

import base64
import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "pyistiod" / "examples" / "gateway"
HOST = "shop.example.com"
CREDENTIAL = "shop-credential"
NAMESPACE = "istio-system"


@dataclass(frozen=True, slots=True)
class GatewayExample:
    """Where the example was written, and the server certificate (PEM) to trust."""

    directory: Path
    cert_pem: bytes


def self_signed(host: str, days: int = 3650) -> tuple[bytes, bytes]:
    """A self-signed ECDSA P-256 server certificate for ``host`` and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days + 3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def tls_secret(
    name: str, namespace: str, cert_pem: bytes, key_pem: bytes, ca_pem: bytes = b""
) -> dict[str, object]:
    """A ``kubernetes.io/tls`` Secret document holding the pair (and ``ca.crt`` if given)."""
    data = {
        "tls.crt": base64.b64encode(cert_pem).decode(),
        "tls.key": base64.b64encode(key_pem).decode(),
    }
    if ca_pem:
        data["ca.crt"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": data,
    }


def write_gateway_example(dest: Path) -> GatewayExample:
    """Copy the example to ``dest`` and add its freshly generated TLS Secret."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in sorted(EXAMPLE_DIR.glob("*.yaml")):
        shutil.copy(source, dest / source.name)
    cert_pem, key_pem = self_signed(HOST)
    secret = tls_secret(CREDENTIAL, NAMESPACE, cert_pem, key_pem)
    (dest / f"{CREDENTIAL}.yaml").write_text(yaml.safe_dump(secret), encoding="utf-8")
    return GatewayExample(dest, cert_pem)
