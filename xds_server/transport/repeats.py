"""State-of-the-world requests that repeat their stream's names, read from their bytes.

Every ACK of a state-of-the-world stream lists every name the proxy watches: a sidecar
that sees a thousand services ACKs each endpoint push with a thousand names, 47 KB.
Decoding that into Python strings and comparing them with the names held cost about
120 µs per ACK, two fifths of the server's work for an endpoint change. Almost every
such request repeats the names exactly, so the stream keeps the encoding of its names
(``encoding``, made once per shared name tuple) and ``read_repeat`` checks a request's
bytes against it, decoding only the few fields around it. Invariants:

1. ``read_repeat`` answers only for bytes that are exactly: an optional ``version_info``
   (field 1), the names' encoding (field 3, one entry per name, in order), an optional
   ``type_url`` (field 4), an optional ``response_nonce`` (field 5), and nothing else.
   Such bytes decode to a ``DiscoveryRequest`` with those names and those three fields,
   and no node, error detail or other field, so its answer is what decoding would give.
2. Anything else (a node, an ``error_detail`` (a NACK), other fields or order, bytes that
   are not valid UTF-8) gets None: the caller decodes the whole message.
3. ``encoding`` writes the canonical encoding, the one Envoy's protobuf library writes, so
   real ACKs match; a client that encodes otherwise is only decoded the slow way.
"""

from __future__ import annotations

from collections import OrderedDict

from xds_server import wire

_VERSION, _NAME, _TYPE, _NONCE = (wire.tag(f)[0] for f in (1, 3, 4, 5))
_MAX_ENCODINGS = 256
_encodings: OrderedDict[int, tuple[tuple[str, ...], bytes]] = OrderedDict()


def encoding(names: tuple[str, ...]) -> bytes:
    """The ``resource_names`` entries of ``names`` as a ``DiscoveryRequest`` holds them.

    Memoized per tuple object (the shared tuples of ``protocol.names``), the last 256."""
    memo = _encodings.get(id(names))
    if memo is not None and memo[0] is names:
        _encodings.move_to_end(id(names))
        return memo[1]
    data = wire.strings_field(3, names)
    _encodings[id(names)] = (names, data)
    if len(_encodings) > _MAX_ENCODINGS:
        _encodings.popitem(last=False)
    return data


def read_repeat(raw: bytes, names_encoding: bytes) -> tuple[str, str, str] | None:
    """``(version_info, type_url, response_nonce)`` of a request whose bytes are those
    fields around exactly ``names_encoding`` (invariant 1), else None."""
    try:
        version, pos = _string(raw, 0, _VERSION)
        if not raw.startswith(names_encoding, pos):
            return None
        type_url, pos = _string(raw, pos + len(names_encoding), _TYPE)
        nonce, pos = _string(raw, pos, _NONCE)
    except (IndexError, UnicodeDecodeError):
        return None
    return (version, type_url, nonce) if pos == len(raw) else None


def _string(raw: bytes, pos: int, key: int) -> tuple[str, int]:
    """The string field with one-byte ``key`` at ``pos`` ("" if another field is there),
    and the position after it. IndexError for a length running past the end."""
    if pos >= len(raw) or raw[pos] != key:
        return "", pos
    length, pos = wire.read_varint(raw, pos + 1)
    end = pos + length
    if end > len(raw):
        raise IndexError("length past the end")
    return raw[pos:end].decode(), end
