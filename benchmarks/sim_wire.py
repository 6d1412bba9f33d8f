"""What the simulated sidecars read and write: xDS messages as wire bytes, not protobuf objects.

protobuf's Python module (upb) calls ``malloc_trim(0)`` after every 10,000 frees of arena
blocks. glibc then hands every free page of the heap back to the kernel, and the next
allocations fault them in again. A load worker that decodes a 472 KB route configuration
for each of a thousand proxies frees a lot: in a state-of-the-world VirtualService edit
at 2,000 proxies, each worker took about 250 page faults per response, and the load
generator needed 2.2-2.6 s of CPU where, with ``malloc_trim`` made a no-op (``LD_PRELOAD``,
a measurement only), it needed 1.1 s and the edit's p99 fell from 1.9-2.2 s to 1.2-1.3 s.
The load generator shares the machine with the server it measures, so here:

- requests are written as bytes (``sotw_request``, ``delta_request``), with no protobuf
  object per ACK; the encoding of a long name list is made once per tuple, by the
  server's own memo (``transport.repeats.encoding``);
- responses are read by walking their top-level fields (``read``). A response with at most
  ``MAX_WALKED`` resources (what a change sends: one route configuration, a few
  endpoints) is read without protobuf; a larger one (a connect storm's thousand clusters)
  is decoded by protobuf, which is then cheaper than a walk in Python, and its resources
  are read from that decoding. ``Response.decoded`` decodes on demand.

Invariants:

1. ``read`` gives the type URL, version, nonce, resource count and removed names that
   protobuf's decoding gives, for any bytes protobuf decodes (``test_bench_sim_wire.py``
   checks it on generated messages).
2. The request functions write what ``SerializeToString`` writes for the same message,
   so the server sees the same bytes as from a protobuf-built request (the same test).

Field numbers (envoy/service/discovery/v3/discovery.proto):
  DiscoveryRequest:       version_info=1 node=2 resource_names=3 type_url=4 response_nonce=5
  DeltaDiscoveryRequest:  node=1 type_url=2 resource_names_subscribe=3
                          resource_names_unsubscribe=4 response_nonce=6
  DiscoveryResponse:      version_info=1 resources=2 type_url=4 nonce=5 control_plane=6
  DeltaDiscoveryResponse: system_version_info=1 resources=2 type_url=4 nonce=5
                          removed_resources=6 control_plane=7
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from envoy.service.discovery.v3 import discovery_pb2

from xds_server import wire
from xds_server.transport.repeats import encoding

MAX_WALKED: Final = 8
"""Responses with more resources than this are decoded by protobuf."""

_VERSION, _RESOURCE, _TYPE, _NONCE, _REMOVED = 1, 2, 4, 5, 6
_LEN, _VARINT, _I64, _I32 = 2, 0, 1, 5
_MEMO_MIN: Final = 32


@dataclass(slots=True)
class Response:
    """A ``DiscoveryResponse`` (or, ``delta``, a ``DeltaDiscoveryResponse``) as received."""

    data: bytes
    delta: bool
    type_url: str = ""
    version: str = ""
    """``version_info``; in delta, ``system_version_info``."""
    nonce: str = ""
    count: int = 0
    """How many resources it carries."""
    removed: list[str] = field(default_factory=list)
    """Delta: ``removed_resources``."""
    message: Any = None
    """The protobuf decoding, once made (``decoded``)."""

    def decoded(self) -> Any:
        """The response decoded by protobuf (made on first use)."""
        if self.message is None:
            delta, sotw = discovery_pb2.DeltaDiscoveryResponse, discovery_pb2.DiscoveryResponse
            self.message = (delta if self.delta else sotw).FromString(self.data)
        return self.message


def read(data: bytes, delta: bool) -> Response:
    """``data`` read as a response: walked if it has at most ``MAX_WALKED`` resources,
    else decoded by protobuf (invariant 1)."""
    resp = Response(data, delta)
    try:
        if _walk(resp):
            return resp
    except (IndexError, UnicodeDecodeError):
        pass  # protobuf decides, and says what is wrong
    resp.removed = []
    msg = resp.decoded()
    resp.type_url, resp.nonce, resp.count = msg.type_url, msg.nonce, len(msg.resources)
    if delta:
        resp.version, resp.removed = msg.system_version_info, list(msg.removed_resources)
    else:
        resp.version = msg.version_info
    return resp


def _walk(resp: Response) -> bool:
    """Read the top-level fields of ``resp.data`` into ``resp``; False past ``MAX_WALKED``
    resources or on a field this does not read."""
    data, pos, end = resp.data, 0, len(resp.data)
    while pos < end:
        key, pos = wire.read_varint(data, pos)
        number, kind = key >> 3, key & 7
        if kind != _LEN:
            if kind == _VARINT:
                pos = wire.read_varint(data, pos)[1]
            elif kind in (_I64, _I32):
                pos += 8 if kind == _I64 else 4
            else:
                return False  # groups: let protobuf decide
            continue
        length, pos = wire.read_varint(data, pos)
        stop = pos + length
        if stop > end:
            raise IndexError("a field runs past the end")
        if number == _RESOURCE:
            resp.count += 1
            if resp.count > MAX_WALKED:
                return False
        elif number in (_VERSION, _TYPE, _NONCE) or (number == _REMOVED and resp.delta):
            text = data[pos:stop].decode()
            if number == _VERSION:
                resp.version = text
            elif number == _TYPE:
                resp.type_url = text
            elif number == _NONCE:
                resp.nonce = text
            else:
                resp.removed.append(text)
        pos = stop
    if pos != end:
        raise IndexError("a field runs past the end")
    return True


def _names(names: tuple[str, ...]) -> bytes:
    """``resource_names`` of a ``DiscoveryRequest``; a long list's encoding is made once per
    tuple (``repeats.encoding``: every proxy ACKs the same thousand endpoint names)."""
    return encoding(names) if len(names) >= _MEMO_MIN else wire.strings_field(3, names)


def sotw_request(
    type_url: str,
    *,
    version: str = "",
    nonce: str = "",
    names: tuple[str, ...] = (),
    node: bytes = b"",
) -> bytes:
    """An encoded ``DiscoveryRequest``; ``node`` is an encoded ``Node`` (invariant 2)."""
    return b"".join(
        (
            wire.string_field(1, version),
            wire.length_delimited(2, node) if node else b"",
            _names(names),
            wire.string_field(4, type_url),
            wire.string_field(5, nonce),
        )
    )


def delta_request(
    type_url: str,
    *,
    nonce: str = "",
    subscribe: Iterable[str] = (),
    unsubscribe: Iterable[str] = (),
    node: bytes = b"",
) -> bytes:
    """An encoded ``DeltaDiscoveryRequest``; ``node`` is an encoded ``Node`` (invariant 2)."""
    return b"".join(
        (
            wire.length_delimited(1, node) if node else b"",
            wire.string_field(2, type_url),
            wire.strings_field(3, subscribe),
            wire.strings_field(4, unsubscribe),
            wire.string_field(6, nonce),
        )
    )


def to_bytes(request: bytes | Any) -> bytes:
    """A request for the wire: bytes as they are, a protobuf message serialized."""
    return request if isinstance(request, bytes) else request.SerializeToString()
