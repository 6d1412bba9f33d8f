"""The names a peer's certificate must carry, as Envoy matches them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from envoy.extensions.transport_sockets.tls.v3 import common_pb2
from envoy.type.matcher.v3 import string_pb2

SanType: TypeAlias = "common_pb2.SubjectAltNameMatcher.SanType.ValueType"
DNS: SanType = common_pb2.SubjectAltNameMatcher.DNS
URI: SanType = common_pb2.SubjectAltNameMatcher.URI
IP_ADDRESS: SanType = common_pb2.SubjectAltNameMatcher.IP_ADDRESS


def names_required(names: Iterable[str], san_type: SanType = DNS) -> (
    common_pb2.CertificateValidationContext
):  # fmt: skip
    """A validation context requiring one of ``names`` (exact, of ``san_type``); none: any."""
    return common_pb2.CertificateValidationContext(
        match_typed_subject_alt_names=[
            common_pb2.SubjectAltNameMatcher(
                san_type=san_type, matcher=string_pb2.StringMatcher(exact=name)
            )
            for name in names
        ]
    )
