"""Errors of the certificate authority, typed by kind.

    PyistiodError                     (xds_server.errors)
    └── CAError(kind, reason, path)   every CA failure
        └── InvalidSpiffeId(uri)      a SPIFFE ID that breaks the spec

Rule 1: every ``CAErrorKind`` maps to exactly one gRPC status through
``grpc_status_for``, a ``match`` that mypy checks for exhaustiveness
(``assert_never``); there is no default branch, so a new kind without a status
fails type checking instead of silently becoming INTERNAL. Istio's
``caerror.Error.HTTPErrorCode`` falls back to Internal for unknown types.

Rule 2: ``str(error)`` is the full reason, for logs (it may name files and
identities). ``client_message`` is the opaque text a remote caller gets: fixed
per kind, it never carries paths, key material or the reason.
"""

from __future__ import annotations

import enum
from typing import assert_never

from xds_server.errors import PyistiodError, StatusCode


class CAErrorKind(enum.Enum):
    """What went wrong, at the granularity a caller or operator acts on."""

    CA_NOT_READY = "CA_NOT_READY"
    """No usable signing bundle: not loaded yet, expired, or not yet valid."""
    CSR_MALFORMED = "CSR_MALFORMED"
    """The CSR is not a single parseable PEM certificate request."""
    CSR_SIGNATURE_INVALID = "CSR_SIGNATURE_INVALID"
    """The CSR's self-signature does not verify with its own public key."""
    CSR_KEY_REJECTED = "CSR_KEY_REJECTED"
    """The CSR's public key type or size is not accepted (ECDSA P-256/P-384, RSA >= 2048)."""
    IDENTITY_MISMATCH = "IDENTITY_MISMATCH"
    """The CSR asks for names other than the caller's authenticated identity."""
    INVALID_SPIFFE_ID = "INVALID_SPIFFE_ID"
    """A SPIFFE ID does not follow the SPIFFE spec or Istio's ns/sa form."""
    TTL_INVALID = "TTL_INVALID"
    """The requested lifetime is non-positive or above the maximum."""
    CERT_GENERATION = "CERT_GENERATION"
    """Building or signing the certificate failed inside the CA."""
    FILE_UNREADABLE = "FILE_UNREADABLE"
    """A CA file is missing or cannot be read or written."""
    FILE_CORRUPT = "FILE_CORRUPT"
    """A CA file does not hold the PEM object it should."""
    KEY_CERT_MISMATCH = "KEY_CERT_MISMATCH"
    """A private key does not belong to the certificate beside it."""
    CHAIN_INVALID = "CHAIN_INVALID"
    """A CA certificate chain does not lead to the root, or a CA cert is unusable."""
    UNAUTHENTICATED = "UNAUTHENTICATED"
    """The caller presented no credential, or one that is forged, expired or malformed."""
    AUTHN_UNAVAILABLE = "AUTHN_UNAVAILABLE"
    """The credential could not be checked: its reviewer (the Kubernetes API server) did
    not answer. Transient: the caller retries."""


def grpc_status_for(kind: CAErrorKind) -> StatusCode:
    """The gRPC status a caller receives for ``kind``; exhaustive (Rule 1).

    Istio maps CANotReady to Internal; here it is UNAVAILABLE, the code gRPC
    clients retry, because a CA that is still loading is a transient state.
    File-level kinds are FAILED_PRECONDITION: the operator must fix the CA
    directory before anything can succeed.
    """
    match kind:
        case CAErrorKind.CA_NOT_READY | CAErrorKind.AUTHN_UNAVAILABLE:
            return StatusCode.UNAVAILABLE
        case (
            CAErrorKind.CSR_MALFORMED
            | CAErrorKind.CSR_SIGNATURE_INVALID
            | CAErrorKind.CSR_KEY_REJECTED
            | CAErrorKind.INVALID_SPIFFE_ID
            | CAErrorKind.TTL_INVALID
        ):
            return StatusCode.INVALID_ARGUMENT
        case CAErrorKind.IDENTITY_MISMATCH:
            return StatusCode.PERMISSION_DENIED
        case CAErrorKind.UNAUTHENTICATED:
            return StatusCode.UNAUTHENTICATED
        case CAErrorKind.CERT_GENERATION:
            return StatusCode.INTERNAL
        case (
            CAErrorKind.FILE_UNREADABLE
            | CAErrorKind.FILE_CORRUPT
            | CAErrorKind.KEY_CERT_MISMATCH
            | CAErrorKind.CHAIN_INVALID
        ):
            return StatusCode.FAILED_PRECONDITION
        case _:
            assert_never(kind)


def client_message_for(kind: CAErrorKind) -> str:
    """The opaque message a remote caller sees for ``kind`` (Rule 2); exhaustive."""
    match kind:
        case CAErrorKind.CA_NOT_READY:
            return "certificate authority is not ready"
        case CAErrorKind.CSR_MALFORMED:
            return "certificate signing request is malformed"
        case CAErrorKind.CSR_SIGNATURE_INVALID:
            return "certificate signing request signature is invalid"
        case CAErrorKind.CSR_KEY_REJECTED:
            return "certificate signing request key type is not accepted"
        case CAErrorKind.IDENTITY_MISMATCH:
            return "certificate signing request names an identity the caller does not hold"
        case CAErrorKind.INVALID_SPIFFE_ID:
            return "identity is not a valid SPIFFE ID"
        case CAErrorKind.TTL_INVALID:
            return "requested certificate lifetime is not allowed"
        case CAErrorKind.UNAUTHENTICATED:
            return "the caller is not authenticated"
        case CAErrorKind.AUTHN_UNAVAILABLE:
            return "the caller's credential cannot be checked now; retry"
        case (
            CAErrorKind.CERT_GENERATION
            | CAErrorKind.FILE_UNREADABLE
            | CAErrorKind.FILE_CORRUPT
            | CAErrorKind.KEY_CERT_MISMATCH
            | CAErrorKind.CHAIN_INVALID
        ):
            return "certificate authority internal error"
        case _:
            assert_never(kind)


class CAError(PyistiodError):
    """A certificate authority failure of a given ``kind``.

    ``reason`` says what is wrong and what is needed to act; ``path`` names the
    file at fault for file-level kinds (empty otherwise).
    """

    def __init__(self, kind: CAErrorKind, reason: str, *, path: str = "") -> None:
        self.kind = kind
        self.reason = reason
        self.path = path
        self.grpc_status = grpc_status_for(kind)
        where = f"{path}: " if path else ""
        super().__init__(f"{kind.value}: {where}{reason}")

    @property
    def client_message(self) -> str:
        """The opaque text to return to a remote caller (no paths, no reason)."""
        return client_message_for(self.kind)


class InvalidSpiffeId(CAError):
    """A string is not a SPIFFE ID of Istio's ``spiffe://<td>/ns/<ns>/sa/<sa>`` form."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        super().__init__(CAErrorKind.INVALID_SPIFFE_ID, f"{uri!r}: {reason}")
