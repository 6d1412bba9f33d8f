"""The CA's keys and certificates on disk (``--ca-dir``): self-signed root or plug-in CA.

Layouts (file names are Istio's):
  - self-signed: ``root-key.pem`` (mode 0600) and ``root-cert.pem``, created
    on first start (Istio's self-signed CA: 10-year root, O=<trust domain>);
  - plug-in (Istio's ``cacerts``): ``ca-cert.pem``, ``ca-key.pem``,
    ``root-cert.pem``, ``cert-chain.pem``. pyistiod signs with ``ca-cert.pem``
    and serves leaf + ca-cert + the further intermediates of ``cert-chain.pem``;
    roots travel separately.

Rule 1: an existing root is never overwritten. New files are written to a
temporary name and ``os.link``-ed into place, which fails if the name exists,
so two starting processes cannot both win and a crash leaves no half file.

Rule 2: every failure is a ``CAError`` whose ``path`` names the file and whose
reason says what to do; nothing is repaired silently. A root-cert without its
key (or the reverse) is refused rather than regenerated.

Rule 3: loading returns a ``SigningBundle``, which re-checks the key/cert/chain
invariants (authority.py Rule 2); the checks here exist to name the file.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID

from ca.authority import (
    CLOCK_SKEW_GRACE,
    KeyKind,
    PrivateKey,
    SigningBundle,
    cert_to_pem,
    describe,
    generate_workload_key,
    is_ca,
    issued_by,
    private_key_to_pem,
    same_public_key,
    signature_hash,
)
from ca.errors import CAError, CAErrorKind
from ca.spiffe import validate_trust_domain

ROOT_KEY = "root-key.pem"
ROOT_CERT = "root-cert.pem"
PLUGIN_CA_CERT = "ca-cert.pem"
PLUGIN_CA_KEY = "ca-key.pem"
PLUGIN_ROOT_CERT = "root-cert.pem"
PLUGIN_CERT_CHAIN = "cert-chain.pem"
DEFAULT_ROOT_VALIDITY = timedelta(days=3650)
"""Istio's ``DefaultSelfSignedCACertTTL`` (security/pkg/cmd/constants.go)."""


def load_ca(
    ca_dir: Path, trust_domain: str, now: datetime, key_kind: KeyKind = KeyKind.ECDSA_P256
) -> SigningBundle:
    """The plug-in CA if ``ca-key.pem`` or ``ca-cert.pem`` is in ``ca_dir``, else the root CA.

    Istio decides the same way: the presence of ``cacerts/ca-key.pem``.
    """
    if (ca_dir / PLUGIN_CA_KEY).exists() or (ca_dir / PLUGIN_CA_CERT).exists():
        return load_plugin_ca(ca_dir, now)
    return load_or_create_root(ca_dir, trust_domain, now, key_kind)


def load_or_create_root(
    ca_dir: Path,
    trust_domain: str,
    now: datetime,
    key_kind: KeyKind = KeyKind.ECDSA_P256,
    *,
    validity: timedelta = DEFAULT_ROOT_VALIDITY,
) -> SigningBundle:
    """Load the self-signed root from ``ca_dir``, creating it on first start (Rule 1).

    ``trust_domain`` (the root's Organization) is only used when creating;
    ``now`` stamps a new root and checks an existing one is still valid.
    """
    validate_trust_domain(trust_domain)
    key_path, cert_path = ca_dir / ROOT_KEY, ca_dir / ROOT_CERT
    have_key, have_cert = key_path.exists(), cert_path.exists()
    if not have_key and not have_cert:
        _create_root(ca_dir, trust_domain, now, key_kind, validity)
    elif have_key != have_cert:
        present, missing = (key_path, cert_path) if have_key else (cert_path, key_path)
        raise CAError(
            CAErrorKind.FILE_UNREADABLE,
            f"{missing.name} is missing but {present.name} exists; restore it, or move both "
            "aside to create a new root (workloads will then need the new root)",
            path=str(missing),
        )
    key = _read_key(key_path)
    root = _read_single_cert(cert_path)
    return self_signed_bundle(key, root, now, str(key_path), str(cert_path))


def load_plugin_ca(ca_dir: Path, now: datetime) -> SigningBundle:
    """Load Istio's ``cacerts`` layout from ``ca_dir`` and check it chains to the root."""
    key_path, cert_path = ca_dir / PLUGIN_CA_KEY, ca_dir / PLUGIN_CA_CERT
    roots_path, chain_path = ca_dir / PLUGIN_ROOT_CERT, ca_dir / PLUGIN_CERT_CHAIN
    key = _read_key(key_path)
    ca_cert = _read_single_cert(cert_path)
    roots = tuple(_read_certs(roots_path))
    chain = _read_certs(chain_path)
    if not same_public_key(key, ca_cert):
        raise CAError(
            CAErrorKind.KEY_CERT_MISMATCH,
            f"{key_path.name} is not the key of {cert_path.name}",
            path=str(key_path),
        )
    if not is_ca(ca_cert):
        raise CAError(
            CAErrorKind.CHAIN_INVALID,
            "not a CA certificate (needs basicConstraints CA:TRUE and keyCertSign)",
            path=str(cert_path),
        )
    # cert-chain.pem conventionally repeats ca-cert.pem first and the root last.
    intermediates = tuple(c for c in chain if c != ca_cert and c not in roots)
    _check_links(ca_cert, intermediates, roots, chain_path)
    for cert, path in [(ca_cert, cert_path), *((c, chain_path) for c in intermediates)]:
        _check_valid_at(cert, now, path)
    return SigningBundle(
        signing_key=key, signing_cert=ca_cert, intermediates=intermediates, roots=roots
    )


def _check_links(
    ca_cert: x509.Certificate,
    intermediates: tuple[x509.Certificate, ...],
    roots: tuple[x509.Certificate, ...],
    chain_path: Path,
) -> None:
    """Each certificate is signed by the next; the last by a root in ``root-cert.pem``."""
    chain = (ca_cert, *intermediates)
    for child, parent in itertools.pairwise(chain):
        if not issued_by(child, parent):
            raise CAError(
                CAErrorKind.CHAIN_INVALID,
                f"{describe(child)} is not signed by the next certificate, {describe(parent)}; "
                "list ca-cert first, then each issuer in order",
                path=str(chain_path),
            )
    if not any(issued_by(chain[-1], root) for root in roots):
        raise CAError(
            CAErrorKind.CHAIN_INVALID,
            f"the chain ends at {describe(chain[-1])}, which no certificate of "
            f"{PLUGIN_ROOT_CERT} signed",
            path=str(chain_path),
        )


def _check_valid_at(cert: x509.Certificate, now: datetime, where: Path | str) -> None:
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        raise CAError(
            CAErrorKind.CHAIN_INVALID,
            f"{describe(cert)} is valid only from {cert.not_valid_before_utc} to "
            f"{cert.not_valid_after_utc}, not now ({now}); replace it",
            path=str(where),
        )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CAError(
            CAErrorKind.FILE_UNREADABLE, f"cannot read: {e.strerror}", path=str(path)
        ) from e


def _read_key(path: Path) -> PrivateKey:
    return parse_key(_read_bytes(path), str(path))


def parse_key(data: bytes, where: str) -> PrivateKey:
    """An unencrypted PEM ECDSA or RSA key; ``where`` names its file (or Secret key) in errors."""
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise CAError(
            CAErrorKind.FILE_CORRUPT,
            f"not an unencrypted PEM private key ({e})",
            path=where,
        ) from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CAError(
            CAErrorKind.FILE_CORRUPT,
            f"key type {type(key).__name__} is not supported; use ECDSA or RSA",
            path=where,
        )
    return key


def _read_certs(path: Path) -> list[x509.Certificate]:
    return parse_certs(_read_bytes(path), str(path))


def parse_certs(data: bytes, where: str) -> list[x509.Certificate]:
    """PEM certificates, at least one; ``where`` names their file (or Secret key) in errors."""
    if not data.strip():
        raise CAError(CAErrorKind.FILE_CORRUPT, "is empty; expected PEM certificates", path=where)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise CAError(CAErrorKind.FILE_CORRUPT, f"not PEM certificates ({e})", path=where) from e
    return certs


def _read_single_cert(path: Path) -> x509.Certificate:
    return parse_single_cert(_read_bytes(path), str(path))


def parse_single_cert(data: bytes, where: str) -> x509.Certificate:
    """Exactly one PEM certificate."""
    certs = parse_certs(data, where)
    if len(certs) != 1:
        raise CAError(
            CAErrorKind.FILE_CORRUPT,
            f"holds {len(certs)} certificates; expected exactly one",
            path=where,
        )
    return certs[0]


def self_signed_bundle(
    key: PrivateKey, root: x509.Certificate, now: datetime, key_where: str, cert_where: str
) -> SigningBundle:
    """The bundle of a self-signed root CA, checked: its key, CA and self-issued, valid now."""
    if not same_public_key(key, root):
        raise CAError(
            CAErrorKind.KEY_CERT_MISMATCH,
            f"is not the key of {cert_where}",
            path=key_where,
        )
    if not (is_ca(root) and issued_by(root, root)):
        raise CAError(
            CAErrorKind.CHAIN_INVALID, "not a self-signed CA certificate", path=cert_where
        )
    _check_valid_at(root, now, cert_where)
    return SigningBundle(signing_key=key, signing_cert=root, intermediates=(), roots=(root,))


def _create_root(
    ca_dir: Path, trust_domain: str, now: datetime, key_kind: KeyKind, validity: timedelta
) -> None:
    """Generate the self-signed root and write it without overwriting anything (Rule 1)."""
    key = generate_workload_key(key_kind)
    cert = build_root_cert(key, trust_domain, now, validity)
    try:
        ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CAError(
            CAErrorKind.FILE_UNREADABLE,
            f"cannot create CA directory: {e.strerror}",
            path=str(ca_dir),
        ) from e
    _write_new(ca_dir / ROOT_KEY, private_key_to_pem(key), 0o600)
    _write_new(ca_dir / ROOT_CERT, cert_to_pem(cert), 0o644)


def build_root_cert(
    key: PrivateKey, trust_domain: str, now: datetime, validity: timedelta
) -> x509.Certificate:
    """A self-signed root like Istio's: O=<trust domain>, CA, keyCertSign, ``validity`` long.

    ``notBefore`` is backdated by ``CLOCK_SKEW_GRACE`` so a workload whose
    clock lags slightly still accepts a root created a moment ago.
    """
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_GRACE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, signature_hash(key))
    )


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``; fail if ``path`` exists (Rule 1)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # exactly ``mode``, whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        _fsync_dir(path.parent)
    except FileExistsError as e:
        raise CAError(
            CAErrorKind.FILE_UNREADABLE,
            "appeared while the root was being created (another process?); restart",
            path=str(path),
        ) from e
    except OSError as e:
        raise CAError(
            CAErrorKind.FILE_UNREADABLE, f"cannot write: {e.strerror}", path=str(path)
        ) from e
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entries durable (POSIX needs an fsync of the directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TOKEN_KEY = "token-key"


def load_or_create_token_key(ca_dir: Path) -> bytes:
    """The key that signs workload tokens (``ca.tokens``): 32 random bytes, mode 0600.

    Created on first use, never overwritten; a file of the wrong size is an error.
    """
    path = ca_dir / TOKEN_KEY
    if not path.exists():
        ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_new(path, os.urandom(32), 0o600)
    data = _read_bytes(path)
    if len(data) != 32:
        raise CAError(
            CAErrorKind.FILE_CORRUPT, f"holds {len(data)} bytes, expected 32", path=str(path)
        )
    return data
