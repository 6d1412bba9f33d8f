"""Root CA and plug-in CA on disk (ca/storage.py): creation, persistence, errors naming files."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from test_ca_authority import WEB, make_ca_cert, make_root, verify_leaf

from ca import storage
from ca.authority import (
    KeyKind,
    PrivateKey,
    SigningBundle,
    generate_workload_key,
    make_csr,
    private_key_to_pem,
    sign,
)
from ca.errors import CAError, CAErrorKind

PEM = serialization.Encoding.PEM
DAY = timedelta(days=1)


@pytest.fixture
def now() -> datetime:
    """The fixed clock (STYLE.md 7)."""
    return datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    return tmp_path / "ca"


def _error(call: object, kind: CAErrorKind, file: str) -> CAError:
    with pytest.raises(CAError) as err:
        call()  # type: ignore[operator]
    assert err.value.kind is kind
    assert err.value.path.endswith(file), err.value
    assert file in str(err.value)
    return err.value


# --- self-signed root -------------------------------------------------------------------


def test_first_start_creates_the_root(ca_dir: Path, now: datetime) -> None:
    bundle = storage.load_or_create_root(ca_dir, "cluster.local", now)
    key_file, cert_file = ca_dir / "root-key.pem", ca_dir / "root-cert.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700
    root = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert root == bundle.signing_cert and bundle.roots == (root,)
    assert (
        root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "cluster.local"
    )
    assert root.subject == root.issuer
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.not_valid_after_utc == now + timedelta(days=3650)
    assert root.not_valid_before_utc <= now
    assert bundle.intermediates == ()
    assert sorted(p.name for p in ca_dir.iterdir()) == ["root-cert.pem", "root-key.pem"]


def test_rsa_root(ca_dir: Path, now: datetime) -> None:
    bundle = storage.load_or_create_root(ca_dir, "cluster.local", now, KeyKind.RSA_2048)
    assert isinstance(bundle.signing_key, rsa.RSAPrivateKey)


def test_existing_root_is_loaded_never_overwritten(ca_dir: Path, now: datetime) -> None:
    first = storage.load_or_create_root(ca_dir, "cluster.local", now)
    before = {p.name: p.read_bytes() for p in ca_dir.iterdir()}
    later = storage.load_or_create_root(ca_dir, "other.domain", now + 30 * DAY, KeyKind.RSA_2048)
    assert later.signing_cert == first.signing_cert
    assert private_key_to_pem(later.signing_key) == private_key_to_pem(first.signing_key)
    assert {p.name: p.read_bytes() for p in ca_dir.iterdir()} == before


def test_issued_leaves_verify_against_the_persisted_root(ca_dir: Path, now: datetime) -> None:
    storage.load_or_create_root(ca_dir, "cluster.local", now)
    reloaded = storage.load_or_create_root(ca_dir, "cluster.local", now + DAY)
    issued = sign(reloaded, make_csr(generate_workload_key(), WEB), WEB, DAY, now + DAY)
    assert issued.root_pem == (ca_dir / "root-cert.pem").read_bytes()
    verify_leaf(issued, now + DAY)


@pytest.mark.parametrize("file", ["root-key.pem", "root-cert.pem"])
@pytest.mark.parametrize("content", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_corrupt_file_is_named(ca_dir: Path, now: datetime, file: str, content: bytes) -> None:
    storage.load_or_create_root(ca_dir, "cluster.local", now)
    (ca_dir / file).write_bytes(content)
    _error(
        lambda: storage.load_or_create_root(ca_dir, "cluster.local", now),
        CAErrorKind.FILE_CORRUPT,
        file,
    )


def test_encrypted_key_is_refused_by_name(ca_dir: Path, now: datetime) -> None:
    bundle = storage.load_or_create_root(ca_dir, "cluster.local", now)
    encrypted = bundle.signing_key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    (ca_dir / "root-key.pem").write_bytes(encrypted)
    err = _error(
        lambda: storage.load_or_create_root(ca_dir, "cluster.local", now),
        CAErrorKind.FILE_CORRUPT,
        "root-key.pem",
    )
    assert "unencrypted" in err.reason


def test_unreadable_file_is_named(ca_dir: Path, now: datetime) -> None:
    storage.load_or_create_root(ca_dir, "cluster.local", now)
    (ca_dir / "root-cert.pem").unlink()
    (ca_dir / "root-cert.pem").mkdir()  # unreadable even for root, unlike chmod 000
    _error(
        lambda: storage.load_or_create_root(ca_dir, "cluster.local", now),
        CAErrorKind.FILE_UNREADABLE,
        "root-cert.pem",
    )


def test_mismatched_key_and_cert_are_named(ca_dir: Path, now: datetime) -> None:
    storage.load_or_create_root(ca_dir, "cluster.local", now)
    (ca_dir / "root-key.pem").write_bytes(private_key_to_pem(generate_workload_key()))
    err = _error(
        lambda: storage.load_or_create_root(ca_dir, "cluster.local", now),
        CAErrorKind.KEY_CERT_MISMATCH,
        "root-key.pem",
    )
    assert "root-cert.pem" in err.reason


@pytest.mark.parametrize(
    ("kept", "missing"), [("root-key.pem", "root-cert.pem"), ("root-cert.pem", "root-key.pem")]
)
def test_half_a_root_is_refused_not_regenerated(
    ca_dir: Path, now: datetime, kept: str, missing: str
) -> None:
    storage.load_or_create_root(ca_dir, "cluster.local", now)
    (ca_dir / missing).unlink()
    kept_bytes = (ca_dir / kept).read_bytes()
    _error(
        lambda: storage.load_or_create_root(ca_dir, "cluster.local", now),
        CAErrorKind.FILE_UNREADABLE,
        missing,
    )
    assert not (ca_dir / missing).exists()
    assert (ca_dir / kept).read_bytes() == kept_bytes


def test_expired_root_is_refused(ca_dir: Path, now: datetime) -> None:
    storage.load_or_create_root(ca_dir, "cluster.local", now, validity=DAY)
    _error(
        lambda: storage.load_or_create_root(ca_dir, "cluster.local", now + 2 * DAY),
        CAErrorKind.CHAIN_INVALID,
        "root-cert.pem",
    )


def test_a_non_ca_root_cert_is_refused(ca_dir: Path, now: datetime) -> None:
    root = make_root(now)
    leaf, key = make_ca_cert(root, "leaf", now, is_ca=False)
    ca_dir.mkdir()
    (ca_dir / "root-cert.pem").write_bytes(leaf.public_bytes(PEM))
    (ca_dir / "root-key.pem").write_bytes(private_key_to_pem(key))
    _error(
        lambda: storage.load_or_create_root(ca_dir, "cluster.local", now),
        CAErrorKind.CHAIN_INVALID,
        "root-cert.pem",
    )


# --- plug-in CA (Istio's cacerts) -------------------------------------------------------


def _write_cacerts(
    ca_dir: Path,
    ca: tuple[x509.Certificate, PrivateKey],
    chain: list[x509.Certificate],
    roots: list[x509.Certificate],
) -> None:
    ca_dir.mkdir(exist_ok=True)
    (ca_dir / "ca-cert.pem").write_bytes(ca[0].public_bytes(PEM))
    (ca_dir / "ca-key.pem").write_bytes(private_key_to_pem(ca[1]))
    (ca_dir / "cert-chain.pem").write_bytes(b"".join(c.public_bytes(PEM) for c in chain))
    (ca_dir / "root-cert.pem").write_bytes(b"".join(c.public_bytes(PEM) for c in roots))


@pytest.fixture
def pki(
    now: datetime,
) -> tuple[SigningBundle, x509.Certificate, tuple[x509.Certificate, PrivateKey]]:
    """root -> intermediate -> signing CA, as an operator's offline PKI would issue."""
    root = make_root(now - DAY)
    mid = make_ca_cert(root, "intermediate", now)
    ca = make_ca_cert(mid, "istiod-ca", now)
    return root, mid[0], ca


PkiFixture = tuple[SigningBundle, x509.Certificate, tuple[x509.Certificate, PrivateKey]]


@pytest.mark.parametrize("istio_layout", [True, False], ids=["ca+mid+root", "mid-only"])
def test_plugin_ca_serves_the_full_chain(
    ca_dir: Path, now: datetime, pki: PkiFixture, istio_layout: bool
) -> None:
    root, mid, ca = pki
    chain = [ca[0], mid, root.signing_cert] if istio_layout else [mid]
    _write_cacerts(ca_dir, ca, chain, [root.signing_cert])
    bundle = storage.load_ca(ca_dir, "cluster.local", now)
    assert bundle.signing_cert == ca[0] and bundle.intermediates == (mid,)
    issued = sign(bundle, make_csr(generate_workload_key(), WEB), WEB, DAY, now)
    served = x509.load_pem_x509_certificates(issued.chain_pem)
    assert served[1:] == [ca[0], mid]
    assert issued.root_pem == root.signing_cert.public_bytes(PEM)
    assert verify_leaf(issued, now)[-1] == root.signing_cert
    assert not (ca_dir / "root-key.pem").exists()  # plug-in mode never creates a root


def test_plugin_ca_accepts_a_multi_root_trust_bundle(
    ca_dir: Path, now: datetime, pki: PkiFixture
) -> None:
    root, mid, ca = pki
    other = make_root(now)
    _write_cacerts(
        ca_dir, ca, [ca[0], mid, root.signing_cert], [other.signing_cert, root.signing_cert]
    )
    bundle = storage.load_plugin_ca(ca_dir, now)
    issued = sign(bundle, make_csr(generate_workload_key(), WEB), WEB, DAY, now)
    assert x509.load_pem_x509_certificates(issued.root_pem) == [
        other.signing_cert,
        root.signing_cert,
    ]
    verify_leaf(issued, now)


def test_plugin_key_mismatch_is_named(ca_dir: Path, now: datetime, pki: PkiFixture) -> None:
    root, mid, ca = pki
    _write_cacerts(ca_dir, (ca[0], generate_workload_key()), [mid], [root.signing_cert])
    _error(lambda: storage.load_plugin_ca(ca_dir, now), CAErrorKind.KEY_CERT_MISMATCH, "ca-key.pem")


def test_plugin_chain_to_a_foreign_root_is_named(
    ca_dir: Path, now: datetime, pki: PkiFixture
) -> None:
    _root, mid, ca = pki
    foreign = make_root(now)
    _write_cacerts(ca_dir, ca, [mid], [foreign.signing_cert])
    err = _error(
        lambda: storage.load_plugin_ca(ca_dir, now), CAErrorKind.CHAIN_INVALID, "cert-chain.pem"
    )
    assert "root-cert.pem" in err.reason


def test_plugin_chain_missing_an_intermediate_is_named(
    ca_dir: Path, now: datetime, pki: PkiFixture
) -> None:
    root, _mid, ca = pki
    _write_cacerts(ca_dir, ca, [ca[0], root.signing_cert], [root.signing_cert])
    _error(lambda: storage.load_plugin_ca(ca_dir, now), CAErrorKind.CHAIN_INVALID, "cert-chain.pem")


def test_plugin_chain_in_the_wrong_order_is_named(ca_dir: Path, now: datetime) -> None:
    root = make_root(now - DAY)
    mid1 = make_ca_cert(root, "mid1", now)
    mid2 = make_ca_cert(mid1, "mid2", now)
    ca = make_ca_cert(mid2, "istiod-ca", now)
    _write_cacerts(ca_dir, ca, [mid1[0], mid2[0]], [root.signing_cert])
    err = _error(
        lambda: storage.load_plugin_ca(ca_dir, now), CAErrorKind.CHAIN_INVALID, "cert-chain.pem"
    )
    assert "in order" in err.reason
    _write_cacerts(ca_dir, ca, [mid2[0], mid1[0]], [root.signing_cert])
    assert storage.load_plugin_ca(ca_dir, now).intermediates == (mid2[0], mid1[0])


def test_plugin_non_ca_cert_is_named(ca_dir: Path, now: datetime, pki: PkiFixture) -> None:
    root, _mid, _ca = pki
    not_ca = make_ca_cert(root, "not-a-ca", now, is_ca=False)
    _write_cacerts(ca_dir, not_ca, [not_ca[0], root.signing_cert], [root.signing_cert])
    _error(lambda: storage.load_plugin_ca(ca_dir, now), CAErrorKind.CHAIN_INVALID, "ca-cert.pem")


def test_plugin_empty_chain_file_is_named(ca_dir: Path, now: datetime, pki: PkiFixture) -> None:
    root, _mid, ca = pki
    _write_cacerts(ca_dir, ca, [], [root.signing_cert])
    err = _error(
        lambda: storage.load_plugin_ca(ca_dir, now), CAErrorKind.FILE_CORRUPT, "cert-chain.pem"
    )
    assert "empty" in err.reason


def test_plugin_expired_ca_cert_is_named(ca_dir: Path, now: datetime, pki: PkiFixture) -> None:
    root, mid, ca = pki
    _write_cacerts(ca_dir, ca, [mid], [root.signing_cert])
    _error(
        lambda: storage.load_plugin_ca(ca_dir, now + 400 * DAY),
        CAErrorKind.CHAIN_INVALID,
        "ca-cert.pem",
    )


@pytest.mark.parametrize("file", ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"])
def test_plugin_missing_file_is_named(
    ca_dir: Path, now: datetime, pki: PkiFixture, file: str
) -> None:
    root, mid, ca = pki
    _write_cacerts(ca_dir, ca, [mid], [root.signing_cert])
    (ca_dir / file).unlink()
    call = (
        (lambda: storage.load_plugin_ca(ca_dir, now))
        if file == "ca-key.pem"
        else (lambda: storage.load_ca(ca_dir, "cluster.local", now))
    )
    _error(call, CAErrorKind.FILE_UNREADABLE, file)


def test_load_ca_falls_back_to_the_self_signed_root(ca_dir: Path, now: datetime) -> None:
    bundle = storage.load_ca(ca_dir, "cluster.local", now)
    assert (ca_dir / "root-key.pem").exists()
    assert bundle.signing_cert in bundle.roots


def test_invalid_trust_domain_creates_nothing(ca_dir: Path, now: datetime) -> None:
    with pytest.raises(CAError) as err:
        storage.load_or_create_root(ca_dir, "Cluster.Local", now)
    assert err.value.kind is CAErrorKind.INVALID_SPIFFE_ID
    assert not ca_dir.exists()
