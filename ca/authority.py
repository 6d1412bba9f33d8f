"""The pure signing core: a frozen signing bundle and ``sign``.

Rule 1: ``sign`` reads no clock, file, environment or global: the bundle, the
CSR, the identity, the lifetime and ``now`` are all passed in. Its only
randomness is the certificate serial and the signature nonce.

Rule 2: a ``SigningBundle`` is valid by construction: the key belongs to the
signing certificate, the signing certificate is a CA, and each certificate of
``signing_cert + intermediates`` is signed by the next one, the last by one of
``roots``. Rotation builds a new bundle and swaps one reference, so a signer
never sees a half-rotated key and certificate.

Rule 3: the identity comes from the caller (who authenticated the workload),
never from the CSR. The CSR may carry no SAN, or exactly that one URI SAN;
anything else is refused, as Istio's RA ``ValidateCSR`` does.

Rule 4: the served chain is leaf + CA certificates up to, not including, the
root; the root travels separately. No certificate of ``roots`` is ever in the
chain and no byte is added between PEM blocks (STYLE.md, Avoid 8).
"""

from __future__ import annotations

import enum
import ipaddress
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca.errors import CAError, CAErrorKind
from ca.spiffe import SpiffeId

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""The key types pyistiod generates and signs with."""

DEFAULT_MAX_WORKLOAD_TTL = timedelta(days=90)
"""Istio's ``DefaultMaxWorkloadCertTTL`` (security/pkg/cmd/constants.go)."""
CLOCK_SKEW_GRACE = timedelta(minutes=2)
"""Istio's ``ClockSkewGracePeriod``: leaves are backdated this much (pki/util/generate_cert.go)."""
MIN_RSA_BITS = 2048
"""Istio's ``MinimumRsaKeySize``."""
_ACCEPTED_CURVES = (ec.SECP256R1, ec.SECP384R1)


class KeyKind(enum.Enum):
    """Key algorithms for workload and root keys."""

    ECDSA_P256 = "ecdsa-p256"
    RSA_2048 = "rsa-2048"


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A signed workload certificate, ready for SDS (Rule 4).

    ``chain_pem`` is the leaf followed by the CA certificates up to, not
    including, the root; ``root_pem`` holds the trusted roots. The validity
    fields are read back from the encoded certificate (whole seconds, UTC).
    """

    cert_pem: bytes
    chain_pem: bytes
    root_pem: bytes
    not_before: datetime
    not_after: datetime
    serial_number: int


@dataclass(frozen=True)
class SigningBundle:
    """A CA's signing key, its certificate, the intermediates above it and the roots (Rule 2).

    ``intermediates`` are the certificates between ``signing_cert`` and a root,
    in issuing order, excluding both. For a self-signed root CA
    ``signing_cert`` is the root itself and ``intermediates`` is empty.
    """

    signing_key: PrivateKey
    signing_cert: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    roots: tuple[x509.Certificate, ...]
    ca_chain_pem: bytes = field(init=False, repr=False)
    """The CA part of the served chain (Rule 4), computed once."""
    roots_pem: bytes = field(init=False, repr=False)
    """All roots, PEM-concatenated, computed once."""
    leaf_aki: x509.AuthorityKeyIdentifier = field(init=False, repr=False)
    """The authorityKeyIdentifier every leaf carries, computed once."""

    def __post_init__(self) -> None:
        check_bundle(self.signing_key, self.signing_cert, self.intermediates, self.roots)
        served = [c for c in (self.signing_cert, *self.intermediates) if c not in self.roots]
        object.__setattr__(self, "ca_chain_pem", b"".join(map(cert_to_pem, served)))
        object.__setattr__(self, "roots_pem", b"".join(map(cert_to_pem, self.roots)))
        object.__setattr__(self, "leaf_aki", _authority_key_id(self.signing_cert, self.signing_key))

    @property
    def not_after(self) -> datetime:
        """When the bundle stops being able to issue: the earliest expiry on its chain."""
        return min(c.not_valid_after_utc for c in (self.signing_cert, *self.intermediates))


def _authority_key_id(cert: x509.Certificate, key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    """The AKI naming the issuer ``cert``: its own SKI if it has one, else derived from its key."""
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def check_bundle(
    key: PrivateKey,
    cert: x509.Certificate,
    intermediates: tuple[x509.Certificate, ...],
    roots: tuple[x509.Certificate, ...],
) -> None:
    """Raise a ``CAError`` unless key, signing cert, intermediates and roots form a CA (Rule 2)."""
    if not roots:
        raise CAError(CAErrorKind.CHAIN_INVALID, "no root certificate")
    if not same_public_key(key, cert):
        raise CAError(CAErrorKind.KEY_CERT_MISMATCH, "signing key does not match signing cert")
    for ca_cert in (cert, *intermediates):
        if not is_ca(ca_cert):
            raise CAError(CAErrorKind.CHAIN_INVALID, f"{describe(ca_cert)} is not a CA certificate")
    chain = (cert, *intermediates)
    for child, parent in itertools.pairwise(chain):
        if not issued_by(child, parent):
            raise CAError(
                CAErrorKind.CHAIN_INVALID, f"{describe(child)} is not signed by {describe(parent)}"
            )
    if not any(issued_by(chain[-1], root) for root in roots):
        raise CAError(
            CAErrorKind.CHAIN_INVALID,
            f"{describe(chain[-1])} is not signed by any root certificate",
        )


def sign(
    bundle: SigningBundle,
    csr_pem: bytes,
    spiffe_id: SpiffeId,
    ttl: timedelta,
    now: datetime,
    *,
    max_ttl: timedelta = DEFAULT_MAX_WORKLOAD_TTL,
) -> IssuedCert:
    """Issue a workload leaf for ``spiffe_id`` from ``csr_pem`` (Rules 1, 3, 4).

    The leaf is valid from ``now - CLOCK_SKEW_GRACE`` to ``now + ttl``, capped
    at the bundle's own expiry: a leaf outliving its issuer would fail
    verification anyway, and workloads schedule renewal from the certificate's
    real ``notAfter`` (Istio's agent does the same, since external CAs may
    shorten lifetimes).
    """
    _require_utc(now)
    _check_ttl(ttl, max_ttl)
    _check_bundle_valid_at(bundle, now)
    csr = _load_csr(csr_pem)
    public_key = _check_csr(csr, spiffe_id)
    not_after = min(now + ttl, bundle.not_after)
    builder = _leaf_builder(bundle, public_key, spiffe_id, now - CLOCK_SKEW_GRACE, not_after)
    return _issue(bundle, builder)


def _issue(bundle: SigningBundle, builder: x509.CertificateBuilder) -> IssuedCert:
    """Sign ``builder`` with the bundle's key; the chain is the leaf and the CA chain."""
    try:
        leaf = builder.sign(bundle.signing_key, signature_hash(bundle.signing_key))
    except (ValueError, TypeError) as e:
        raise CAError(CAErrorKind.CERT_GENERATION, f"signing the leaf failed: {e}") from e
    leaf_pem = cert_to_pem(leaf)
    return IssuedCert(
        cert_pem=leaf_pem,
        chain_pem=leaf_pem + bundle.ca_chain_pem,
        root_pem=bundle.roots_pem,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        serial_number=leaf.serial_number,
    )


def _require_utc(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC)")


def _check_ttl(ttl: timedelta, max_ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise CAError(CAErrorKind.TTL_INVALID, f"requested TTL {ttl} is not positive")
    if ttl > max_ttl:
        raise CAError(
            CAErrorKind.TTL_INVALID,
            f"requested TTL {ttl} is greater than the max allowed TTL {max_ttl}",
        )


def _check_bundle_valid_at(bundle: SigningBundle, now: datetime) -> None:
    for cert in (bundle.signing_cert, *bundle.intermediates):
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            raise CAError(
                CAErrorKind.CA_NOT_READY,
                f"{describe(cert)} is valid only from {cert.not_valid_before_utc} "
                f"to {cert.not_valid_after_utc}, not at {now}",
            )


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    if csr_pem.count(b"-----BEGIN ") != 1:
        raise CAError(CAErrorKind.CSR_MALFORMED, "expected exactly one PEM CERTIFICATE REQUEST")
    try:
        return x509.load_pem_x509_csr(csr_pem)
    except ValueError as e:
        raise CAError(CAErrorKind.CSR_MALFORMED, f"cannot parse CSR: {e}") from e


def _check_csr(
    csr: x509.CertificateSigningRequest, spiffe_id: SpiffeId
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """Check signature, key and SANs of ``csr``; return its public key (Rule 3)."""
    try:
        signature_ok = csr.is_signature_valid
        public_key = csr.public_key()
        extensions = csr.extensions
    except UnsupportedAlgorithm as e:
        raise CAError(CAErrorKind.CSR_KEY_REJECTED, f"CSR key or signature: {e}") from e
    except ValueError as e:
        raise CAError(CAErrorKind.CSR_MALFORMED, f"cannot decode CSR: {e}") from e
    if not signature_ok:
        raise CAError(CAErrorKind.CSR_SIGNATURE_INVALID, "CSR signature does not verify")
    accepted = _accepted_public_key(public_key)
    try:
        names = list(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return accepted
    if names != [x509.UniformResourceIdentifier(str(spiffe_id))]:
        shown = ", ".join(str(n.value) for n in names) or "nothing"
        raise CAError(
            CAErrorKind.IDENTITY_MISMATCH, f"CSR SAN asks for {shown}; the caller is {spiffe_id}"
        )
    return accepted


def _accepted_public_key(key: object) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _ACCEPTED_CURVES):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise CAError(
        CAErrorKind.CSR_KEY_REJECTED,
        f"CSR key {_key_name(key)} is not ECDSA P-256/P-384 or RSA >= {MIN_RSA_BITS} bits",
    )


def _key_name(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return type(key).__name__


def issue_server_cert(
    bundle: SigningBundle,
    key: PrivateKey,
    spiffe_id: SpiffeId,
    dns_names: Sequence[str],
    ttl: timedelta,
    now: datetime,
    ip_addresses: Sequence[str] = (),
) -> IssuedCert:
    """A serving certificate for the control plane itself (its own key, no CSR).

    Like istiod's own certificate: the SPIFFE identity plus DNS names such as
    ``istiod.istio-system.svc`` that proxies verify when they dial it, and IP
    addresses for a caller that dials one (an API server calling the webhook by URL).
    """
    _require_utc(now)
    _check_bundle_valid_at(bundle, now)
    not_after = min(now + ttl, bundle.not_after)
    public_key = _accepted_public_key(key.public_key())
    builder = _leaf_builder(
        bundle, public_key, spiffe_id, now - CLOCK_SKEW_GRACE, not_after, dns_names, ip_addresses
    )
    return _issue(bundle, builder)


def _leaf_builder(
    bundle: SigningBundle,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    spiffe_id: SpiffeId,
    not_before: datetime,
    not_after: datetime,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> x509.CertificateBuilder:
    """The leaf template of Istio's ``genCertTemplateFromCSR`` for a non-CA cert."""
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(str(spiffe_id))]
    sans += [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return (
        x509.CertificateBuilder()
        # RFC 5280 4.2.1.6: an empty subject requires a critical SAN.
        .subject_name(x509.Name([]))
        .issuer_name(bundle.signing_cert.subject)
        .public_key(public_key)
        .serial_number(secrets.randbelow(2**128 - 1) + 1)  # positive, 128 random bits
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_KEY_USAGE, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(sans),
            critical=True,
        )
        .add_extension(bundle.leaf_aki, critical=False)
    )


_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_encipherment=True,
    content_commitment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def generate_workload_key(kind: KeyKind = KeyKind.ECDSA_P256) -> PrivateKey:
    """A fresh workload private key: ECDSA P-256 (default) or RSA 2048."""
    match kind:
        case KeyKind.ECDSA_P256:
            return ec.generate_private_key(ec.SECP256R1())
        case KeyKind.RSA_2048:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_csr(key: PrivateKey, spiffe_id: SpiffeId) -> bytes:
    """A PEM CSR for ``spiffe_id``: empty subject, one URI SAN, signed by ``key``."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(spiffe_id))]),
            critical=True,
        )
        .sign(key, signature_hash(key))
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def private_key_to_pem(key: PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM (what SDS hands Envoy and storage writes)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_to_pem(cert: x509.Certificate) -> bytes:
    """``cert`` as one PEM block, exactly as encoded (no extra newline)."""
    return cert.public_bytes(serialization.Encoding.PEM)


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The digest paired with ``key``, as Go's x509 picks it: SHA-384 for P-384, else SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384() if key.curve.key_size <= 384 else hashes.SHA512()
    return hashes.SHA256()


def same_public_key(key: PrivateKey, cert: x509.Certificate) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def is_ca(cert: x509.Certificate) -> bool:
    """Whether ``cert`` may sign certificates (basicConstraints CA and keyCertSign)."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca and ku.key_cert_sign


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent`` names and signs ``child``."""
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def describe(cert: x509.Certificate) -> str:
    """A short human name for ``cert`` in error messages: subject and serial."""
    subject = cert.subject.rfc4514_string() or "<empty subject>"
    return f"certificate {subject} (serial {cert.serial_number:x})"
