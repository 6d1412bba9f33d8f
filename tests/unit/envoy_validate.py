"""Run the real Envoy in ``--mode validate`` over a config: proof that Envoy accepts it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ENVOY = Path(sys.executable).parent / "envoy"


def envoy_validate(config: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    """Write ``config`` as JSON under ``directory`` and validate it with Envoy."""
    path = directory / "envoy.json"
    path.write_text(json.dumps(config, indent=1))
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--disable-hot-restart", "-l", "warn"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def with_static_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with SDS-over-ADS secrets replaced by static secrets of the same names.

    ``envoy --mode validate`` crashes (Envoy 1.40) on a STATIC cluster whose
    TLS secrets come over ADS, since validate mode has no ADS stream; a
    reference by name alone (no ``sds_config``) reads a static secret
    instead. The secrets ``default`` and ``ROOTCA`` hold a self-signed test
    certificate with a SPIFFE URI SAN.
    """
    result: dict[str, Any] = _strip_sds_sources(config)
    cert, key = _self_signed("spiffe://cluster.local/ns/default/sa/default")
    result["static_resources"]["secrets"] = [
        {
            "name": "default",
            "tls_certificate": {
                "certificate_chain": {"inline_string": cert},
                "private_key": {"inline_string": key},
            },
        },
        {"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_string": cert}}},
    ]
    return result


_SDS_REFERENCES = ("tls_certificate_sds_secret_configs", "validation_context_sds_secret_config")


def _strip_sds_sources(value: Any) -> Any:
    if isinstance(value, list):
        return [_strip_sds_sources(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in _SDS_REFERENCES:
            refs = item if isinstance(item, list) else [item]
            stripped = [{k: v for k, v in ref.items() if k != "sds_config"} for ref in refs]
            out[key] = stripped if isinstance(item, list) else stripped[0]
        else:
            out[key] = _strip_sds_sources(item)
    return out


def _self_signed(uri: str) -> tuple[str, str]:
    """A self-signed EC certificate (PEM) with URI SAN ``uri``, and its key (PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=36500))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()
