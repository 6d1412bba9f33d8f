"""Protobuf wire encoding of xDS responses from pre-serialized resources.

Each resource is serialized once (``Resource.of``) and its ``Any`` encoding is
kept. A response is then the concatenation of a few small header fields and
those shared bytes, with no protobuf object built per proxy. Only the fields
pyistiod sends are encoded; ``tests/unit/test_wire.py`` decodes the output with
the real protobuf classes to prove the encoding.

Field numbers (envoy/service/discovery/v3/discovery.proto):
  DiscoveryResponse:      version_info=1 resources=2 type_url=4 nonce=5 control_plane=6
  DeltaDiscoveryResponse: system_version_info=1 resources=2 type_url=4 nonce=5
                          removed_resources=6 control_plane=7
  Resource:               version=1 resource=2 name=3
  Any:                    type_url=1 value=2
  ControlPlane:           identifier=1
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

_LEN: Final = 2  # wire type of length-delimited fields


def varint(value: int) -> bytes:
    """The base-128 varint encoding of a non-negative integer."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it; IndexError if it runs past the end."""
    value, shift = 0, 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def tag(field: int) -> bytes:
    """The key of a length-delimited field."""
    return varint((field << 3) | _LEN)


def length_delimited(field: int, payload: bytes) -> bytes:
    """A whole length-delimited field: key, length, payload."""
    return tag(field) + varint(len(payload)) + payload


def string_field(field: int, value: str) -> bytes:
    """A string field, or nothing for the empty string (proto3 default)."""
    return length_delimited(field, value.encode()) if value else b""


def strings_field(field: int, values: Iterable[str]) -> bytes:
    """A repeated string field: one entry per value, empty ones included."""
    return b"".join(length_delimited(field, v.encode()) for v in values)


def encode_any(type_url: str, value: bytes) -> bytes:
    """A ``google.protobuf.Any`` holding ``value`` of ``type_url``."""
    return string_field(1, type_url) + length_delimited(2, value)


def sotw_entry_header(any_bytes: bytes) -> bytes:
    """The key and length that make ``any_bytes`` a ``DiscoveryResponse.resources`` entry."""
    return tag(2) + varint(len(any_bytes))


def delta_entry_header(name: str, version: str, any_bytes: bytes) -> bytes:
    """Everything of a ``DeltaDiscoveryResponse.resources`` entry before the ``Any`` bytes."""
    inner = string_field(3, name) + string_field(1, version) + tag(2) + varint(len(any_bytes))
    return tag(2) + varint(len(inner) + len(any_bytes)) + inner


def control_plane(identifier: str) -> bytes:
    """An encoded ``ControlPlane`` message (without the field key that embeds it)."""
    return string_field(1, identifier)


def sotw_response(
    *,
    version: str,
    type_url: str,
    nonce: str,
    entries: Iterable[tuple[bytes, bytes]],
    control_plane_bytes: bytes = b"",
    encoded: Sequence[bytes] = (),
) -> bytes:
    """An encoded ``DiscoveryResponse``; ``entries`` are (header, any_bytes) pairs,
    ``encoded`` runs of entries already encoded (whole parts)."""
    parts = [string_field(1, version), *encoded, *_flatten(entries), string_field(4, type_url)]
    parts.append(string_field(5, nonce))
    if control_plane_bytes:
        parts.append(length_delimited(6, control_plane_bytes))
    return b"".join(parts)


def delta_response(
    *,
    system_version: str,
    type_url: str,
    nonce: str,
    entries: Iterable[tuple[bytes, bytes]],
    removed: Sequence[str] = (),
    control_plane_bytes: bytes = b"",
) -> bytes:
    """An encoded ``DeltaDiscoveryResponse``; ``entries`` are (header, any_bytes) pairs."""
    parts = [string_field(1, system_version), *_flatten(entries), string_field(4, type_url)]
    parts.append(string_field(5, nonce))
    parts.extend(length_delimited(6, name.encode()) for name in removed)
    if control_plane_bytes:
        parts.append(length_delimited(7, control_plane_bytes))
    return b"".join(parts)


def _flatten(entries: Iterable[tuple[bytes, bytes]]) -> Iterator[bytes]:
    for header, body in entries:
        yield header
        yield body
