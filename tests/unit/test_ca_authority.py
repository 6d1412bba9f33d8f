"""The pure signing core (ca/authority.py): issued fields, chain verification, refusals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from ca.authority import (
    CLOCK_SKEW_GRACE,
    DEFAULT_MAX_WORKLOAD_TTL,
    IssuedCert,
    KeyKind,
    PrivateKey,
    SigningBundle,
    generate_workload_key,
    make_csr,
    sign,
    signature_hash,
)
from ca.errors import CAError, CAErrorKind
from ca.spiffe import SpiffeId
from ca.storage import build_root_cert
from xds_server.errors import StatusCode

WEB = SpiffeId("cluster.local", "default", "web")
DB = SpiffeId("cluster.local", "default", "db")
DAY = timedelta(days=1)


# --- PKI helpers, shared with test_ca_storage -------------------------------------------


def make_root(now: datetime, validity: timedelta = timedelta(days=3650)) -> SigningBundle:
    """A self-signed ECDSA root bundle created at ``now``."""
    key = generate_workload_key(KeyKind.ECDSA_P256)
    root = build_root_cert(key, "cluster.local", now, validity)
    return SigningBundle(signing_key=key, signing_cert=root, intermediates=(), roots=(root,))


def make_ca_cert(
    issuer: SigningBundle | tuple[x509.Certificate, PrivateKey],
    name: str,
    now: datetime,
    validity: timedelta = timedelta(days=365),
    *,
    is_ca: bool = True,
) -> tuple[x509.Certificate, PrivateKey]:
    """An intermediate CA cert named ``name`` signed by ``issuer``, with its fresh key."""
    cert, key = (
        (issuer.signing_cert, issuer.signing_key) if isinstance(issuer, SigningBundle) else issuer
    )
    child_key = generate_workload_key(KeyKind.ECDSA_P256)
    ski = x509.SubjectKeyIdentifier.from_public_key(child_key.public_key())
    issuer_ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    built = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(cert.subject)
        .public_key(child_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(_key_usage(is_ca), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
        .sign(key, signature_hash(key))
    )
    return built, child_key


def _key_usage(is_ca: bool) -> x509.KeyUsage:
    off = False
    return x509.KeyUsage(
        digital_signature=not is_ca,
        content_commitment=off,
        key_encipherment=off,
        data_encipherment=off,
        key_agreement=off,
        key_cert_sign=is_ca,
        crl_sign=is_ca,
        encipher_only=off,
        decipher_only=off,
    )


def verify_leaf(issued: IssuedCert, at: datetime) -> list[x509.Certificate]:
    """Verify ``issued`` with cryptography's RFC 5280 verifier; return the built chain."""
    chain = x509.load_pem_x509_certificates(issued.chain_pem)
    roots = x509.load_pem_x509_certificates(issued.root_pem)
    verifier = PolicyBuilder().store(Store(roots)).time(at).build_client_verifier()
    verified = verifier.verify(chain[0], chain[1:])
    assert verified.subjects == [x509.UniformResourceIdentifier(str(WEB))]
    return verified.chain


def pem_to_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)


def der_to_pem_csr(der: bytes) -> bytes:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return (
        f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n".encode()
    )


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def now() -> datetime:
    """The fixed clock every test signs at (STYLE.md 7: clocks come from fixtures)."""
    return datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def root(now: datetime) -> SigningBundle:
    return make_root(now - DAY)


@pytest.fixture
def csr() -> bytes:
    return make_csr(generate_workload_key(), WEB)


# --- issued certificate fields ----------------------------------------------------------


@pytest.mark.parametrize("kind", list(KeyKind))
def test_issued_leaf_fields(root: SigningBundle, now: datetime, kind: KeyKind) -> None:
    key = generate_workload_key(kind)
    issued = sign(root, make_csr(key, WEB), WEB, DAY, now)
    leaf = x509.load_pem_x509_certificate(issued.cert_pem)
    ext = leaf.extensions
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert list(san.value) == [
        x509.UniformResourceIdentifier("spiffe://cluster.local/ns/default/sa/web")
    ]
    assert san.critical  # the subject is empty (RFC 5280 4.2.1.6)
    assert leaf.subject == x509.Name([])
    assert leaf.issuer == root.signing_cert.subject
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment
    assert not (ku.key_cert_sign or ku.crl_sign or ku.content_commitment or ku.key_agreement)
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert 0 < leaf.serial_number < 2**128
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_validity_comes_from_the_passed_in_now(root: SigningBundle, now: datetime) -> None:
    issued = sign(root, make_csr(generate_workload_key(), WEB), WEB, timedelta(hours=24), now)
    leaf = x509.load_pem_x509_certificate(issued.cert_pem)
    assert timedelta(minutes=2) == CLOCK_SKEW_GRACE
    assert leaf.not_valid_before_utc == now - CLOCK_SKEW_GRACE == issued.not_before
    assert leaf.not_valid_after_utc == now + timedelta(hours=24) == issued.not_after
    assert issued.serial_number == leaf.serial_number


def test_serials_are_random(root: SigningBundle, now: datetime, csr: bytes) -> None:
    serials = {sign(root, csr, WEB, DAY, now).serial_number for _ in range(20)}
    assert len(serials) == 20


def test_csr_without_san_gets_the_callers_identity(root: SigningBundle, now: datetime) -> None:
    key = generate_workload_key()
    bare = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, signature_hash(key))
    )
    issued = sign(root, bare.public_bytes(serialization.Encoding.PEM), WEB, DAY, now)
    verify_leaf(issued, now)


# --- chain and verification -------------------------------------------------------------


def test_self_signed_chain_is_the_leaf_alone(
    root: SigningBundle, now: datetime, csr: bytes
) -> None:
    issued = sign(root, csr, WEB, DAY, now)
    assert issued.chain_pem == issued.cert_pem  # the root is never in the chain
    assert issued.root_pem == root.signing_cert.public_bytes(serialization.Encoding.PEM)
    chain = verify_leaf(issued, now)
    assert chain[-1] == root.signing_cert


def test_chain_verifies_within_the_backdate_and_not_after_expiry(
    root: SigningBundle, now: datetime, csr: bytes
) -> None:
    issued = sign(root, csr, WEB, DAY, now)
    verify_leaf(issued, now - timedelta(minutes=1))  # a workload clock one minute behind
    verify_leaf(issued, issued.not_after - timedelta(seconds=1))
    with pytest.raises(VerificationError):
        verify_leaf(issued, issued.not_after + timedelta(seconds=1))


def test_intermediate_chain_is_served_without_the_root(
    root: SigningBundle, now: datetime, csr: bytes
) -> None:
    mid_cert, mid_key = make_ca_cert(root, "intermediate", now)
    ca_cert, ca_key = make_ca_cert((mid_cert, mid_key), "signing-ca", now)
    bundle = SigningBundle(
        signing_key=ca_key, signing_cert=ca_cert, intermediates=(mid_cert,), roots=root.roots
    )
    issued = sign(bundle, csr, WEB, DAY, now)
    served = x509.load_pem_x509_certificates(issued.chain_pem)
    assert served[1:] == [ca_cert, mid_cert]
    assert root.signing_cert not in served
    pem = serialization.Encoding.PEM
    assert issued.chain_pem == b"".join(c.public_bytes(pem) for c in served)
    assert b"\n\n" not in issued.chain_pem  # no newline hacks (STYLE.md Avoid 8)
    assert verify_leaf(issued, now) == [served[0], ca_cert, mid_cert, root.signing_cert]


def test_lifetime_is_capped_at_the_signing_chain_expiry(now: datetime, csr: bytes) -> None:
    short_root = make_root(now - DAY, validity=DAY + timedelta(hours=6))
    issued = sign(short_root, csr, WEB, timedelta(days=30), now)
    assert issued.not_after == short_root.signing_cert.not_valid_after_utc
    verify_leaf(issued, now)


# --- refusals ---------------------------------------------------------------------------


def _refused(
    kind: CAErrorKind, root: SigningBundle, csr: bytes, now: datetime, **kw: object
) -> CAError:
    with pytest.raises(CAError) as err:
        sign(root, csr, kw.pop("sid", WEB), kw.pop("ttl", DAY), now, **kw)  # type: ignore[arg-type]
    assert err.value.kind is kind
    return err.value


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"not a csr",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\n",
    ],
)
def test_malformed_csr_is_refused(root: SigningBundle, now: datetime, bad: bytes) -> None:
    err = _refused(CAErrorKind.CSR_MALFORMED, root, bad, now)
    assert err.grpc_status is StatusCode.INVALID_ARGUMENT


def test_two_csrs_in_one_request_are_refused(
    root: SigningBundle, now: datetime, csr: bytes
) -> None:
    _refused(CAErrorKind.CSR_MALFORMED, root, csr + csr, now)


def test_csr_with_a_bad_signature_is_refused(
    root: SigningBundle, now: datetime, csr: bytes
) -> None:
    der = pem_to_der(csr)
    assert der.count(b"sa/web") == 1
    tampered = der_to_pem_csr(der.replace(b"sa/web", b"sa/wex"))
    _refused(CAErrorKind.CSR_SIGNATURE_INVALID, root, tampered, now)


def test_csr_for_another_identity_is_refused(root: SigningBundle, now: datetime) -> None:
    other = make_csr(generate_workload_key(), DB)
    err = _refused(CAErrorKind.IDENTITY_MISMATCH, root, other, now)
    assert err.grpc_status is StatusCode.PERMISSION_DENIED
    assert "spiffe://cluster.local/ns/default/sa/db" in str(err)
    assert "db" not in err.client_message


def test_csr_with_extra_names_is_refused(root: SigningBundle, now: datetime) -> None:
    key = generate_workload_key()
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(str(WEB)),
        x509.DNSName("web.default.svc"),
    ]
    extra = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .sign(key, signature_hash(key))
        .public_bytes(serialization.Encoding.PEM)
    )
    _refused(CAErrorKind.IDENTITY_MISMATCH, root, extra, now)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 1024), id="rsa-1024"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP521R1()), id="p-521"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, id="ed25519"),
    ],
)
def test_weak_or_unsupported_csr_keys_are_refused(
    root: SigningBundle, now: datetime, key: object
) -> None:
    k = key()  # type: ignore[operator]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(k, None if isinstance(k, ed25519.Ed25519PrivateKey) else signature_hash(k))
        .public_bytes(serialization.Encoding.PEM)
    )
    _refused(CAErrorKind.CSR_KEY_REJECTED, root, csr, now)


def test_excessive_ttl_is_refused(root: SigningBundle, now: datetime, csr: bytes) -> None:
    assert timedelta(days=90) == DEFAULT_MAX_WORKLOAD_TTL
    sign(root, csr, WEB, DEFAULT_MAX_WORKLOAD_TTL, now)  # the maximum itself is allowed
    err = _refused(
        CAErrorKind.TTL_INVALID, root, csr, now, ttl=DEFAULT_MAX_WORKLOAD_TTL + timedelta(seconds=1)
    )
    assert "greater than the max allowed TTL" in str(err)
    _refused(
        CAErrorKind.TTL_INVALID, root, csr, now, ttl=timedelta(hours=2), max_ttl=timedelta(hours=1)
    )


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)])
def test_non_positive_ttl_is_refused(
    root: SigningBundle, now: datetime, csr: bytes, ttl: timedelta
) -> None:
    _refused(CAErrorKind.TTL_INVALID, root, csr, now, ttl=ttl)


@pytest.mark.parametrize("offset", [-2 * DAY, 4000 * DAY])
def test_a_ca_outside_its_validity_is_not_ready(
    root: SigningBundle, now: datetime, csr: bytes, offset: timedelta
) -> None:
    err = _refused(CAErrorKind.CA_NOT_READY, root, csr, now + offset)
    assert err.grpc_status is StatusCode.UNAVAILABLE


def test_naive_now_is_a_programming_error(root: SigningBundle, csr: bytes) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(root, csr, WEB, DAY, datetime(2025, 3, 1, 12))


# --- the bundle -------------------------------------------------------------------------


def test_bundle_is_frozen(root: SigningBundle) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        root.signing_key = generate_workload_key()  # type: ignore[misc]


def test_bundle_refuses_a_key_of_another_cert(root: SigningBundle) -> None:
    with pytest.raises(CAError) as err:
        dataclasses.replace(root, signing_key=generate_workload_key())
    assert err.value.kind is CAErrorKind.KEY_CERT_MISMATCH


def test_bundle_refuses_a_non_ca_signing_cert(root: SigningBundle, now: datetime) -> None:
    leaf, key = make_ca_cert(root, "not-a-ca", now, is_ca=False)
    with pytest.raises(CAError) as err:
        SigningBundle(signing_key=key, signing_cert=leaf, intermediates=(), roots=root.roots)
    assert err.value.kind is CAErrorKind.CHAIN_INVALID


def test_bundle_refuses_a_chain_to_a_foreign_root(root: SigningBundle, now: datetime) -> None:
    ca_cert, ca_key = make_ca_cert(root, "signing-ca", now)
    foreign = make_root(now)
    with pytest.raises(CAError, match="not signed by any root") as err:
        SigningBundle(
            signing_key=ca_key, signing_cert=ca_cert, intermediates=(), roots=foreign.roots
        )
    assert err.value.kind is CAErrorKind.CHAIN_INVALID
    with pytest.raises(CAError, match="no root"):
        SigningBundle(signing_key=ca_key, signing_cert=ca_cert, intermediates=(), roots=())


def test_generate_workload_key_kinds() -> None:
    ecdsa = generate_workload_key()
    assert isinstance(ecdsa, ec.EllipticCurvePrivateKey)
    assert isinstance(ecdsa.curve, ec.SECP256R1)
    rsa_key = generate_workload_key(KeyKind.RSA_2048)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert rsa_key.key_size == 2048


def test_make_csr_names_the_identity() -> None:
    csr = x509.load_pem_x509_csr(make_csr(generate_workload_key(), WEB))
    assert csr.is_signature_valid
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier(str(WEB))]
