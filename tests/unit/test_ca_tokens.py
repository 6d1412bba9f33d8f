"""Workload tokens: issued, verified, and refused with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ca import tokens
from ca.errors import CAError, CAErrorKind
from ca.spiffe import SpiffeId
from ca.storage import load_or_create_token_key

KEY = b"k" * 32
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WHO = SpiffeId("cluster.local", "default", "frontend")


def refused(token: str, *, key: bytes = KEY, td: str = "cluster.local", now: datetime = NOW) -> str:
    with pytest.raises(CAError) as err:
        tokens.verify(key, token, td, now)
    assert err.value.kind is CAErrorKind.UNAUTHENTICATED
    return err.value.reason


def test_round_trip() -> None:
    token = tokens.issue(KEY, WHO, NOW, timedelta(hours=1))
    assert tokens.verify(KEY, token, "cluster.local", NOW + timedelta(minutes=59)) == WHO


def test_expired_forged_and_foreign_tokens_are_refused() -> None:
    token = tokens.issue(KEY, WHO, NOW, timedelta(hours=1))
    assert "expired" in refused(token, now=NOW + timedelta(hours=1))
    assert "signature" in refused(token, key=b"x" * 32)
    assert "trust domain" in refused(token, td="other.domain")
    prefix, version, _, mac = token.split(".")
    other = tokens.issue(
        KEY, SpiffeId("cluster.local", "default", "admin"), NOW, timedelta(hours=1)
    ).split(".")[2]
    assert "signature" in refused(f"{prefix}.{version}.{other}.{mac}")
    assert "not a pyistiod token" in refused("Bearer abc")
    assert "decodable" in refused(f"{prefix}.{version}.!!!.{mac}")


def test_token_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_token_key(tmp_path / "ca")
    assert len(key) == 32
    assert (tmp_path / "ca" / "token-key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_token_key(tmp_path / "ca") == key
    (tmp_path / "ca" / "token-key").write_bytes(b"short")
    with pytest.raises(CAError, match="expected 32"):
        load_or_create_token_key(tmp_path / "ca")
