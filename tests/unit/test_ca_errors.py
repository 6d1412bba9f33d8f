"""CA error kinds map exhaustively to gRPC statuses and opaque client messages (ca/errors.py)."""

from __future__ import annotations

import pytest

from ca.errors import CAError, CAErrorKind, client_message_for, grpc_status_for
from xds_server.errors import PyistiodError, StatusCode

EXPECTED = {
    CAErrorKind.CA_NOT_READY: StatusCode.UNAVAILABLE,
    CAErrorKind.CSR_MALFORMED: StatusCode.INVALID_ARGUMENT,
    CAErrorKind.CSR_SIGNATURE_INVALID: StatusCode.INVALID_ARGUMENT,
    CAErrorKind.CSR_KEY_REJECTED: StatusCode.INVALID_ARGUMENT,
    CAErrorKind.IDENTITY_MISMATCH: StatusCode.PERMISSION_DENIED,
    CAErrorKind.UNAUTHENTICATED: StatusCode.UNAUTHENTICATED,
    CAErrorKind.AUTHN_UNAVAILABLE: StatusCode.UNAVAILABLE,
    CAErrorKind.INVALID_SPIFFE_ID: StatusCode.INVALID_ARGUMENT,
    CAErrorKind.TTL_INVALID: StatusCode.INVALID_ARGUMENT,
    CAErrorKind.CERT_GENERATION: StatusCode.INTERNAL,
    CAErrorKind.FILE_UNREADABLE: StatusCode.FAILED_PRECONDITION,
    CAErrorKind.FILE_CORRUPT: StatusCode.FAILED_PRECONDITION,
    CAErrorKind.KEY_CERT_MISMATCH: StatusCode.FAILED_PRECONDITION,
    CAErrorKind.CHAIN_INVALID: StatusCode.FAILED_PRECONDITION,
}


def test_mapping_table_covers_every_kind() -> None:
    assert set(EXPECTED) == set(CAErrorKind)


@pytest.mark.parametrize("kind", list(CAErrorKind))
def test_every_kind_maps_to_its_status(kind: CAErrorKind) -> None:
    assert grpc_status_for(kind) is EXPECTED[kind]
    err = CAError(kind, "the secret reason", path="/etc/pyistiod/ca/root-key.pem")
    assert err.grpc_status is EXPECTED[kind]
    assert isinstance(err, PyistiodError)


@pytest.mark.parametrize("kind", list(CAErrorKind))
def test_client_message_is_opaque_and_logs_get_everything(kind: CAErrorKind) -> None:
    err = CAError(kind, "the secret reason", path="/etc/pyistiod/ca/root-key.pem")
    assert err.client_message == client_message_for(kind)
    assert err.client_message
    assert "secret" not in err.client_message
    assert "/etc" not in err.client_message
    assert "the secret reason" in str(err)
    assert "/etc/pyistiod/ca/root-key.pem" in str(err)
    assert kind.value in str(err)
