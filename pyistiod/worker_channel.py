"""What the supervisor of ``serve --workers N`` and a worker say to each other.

One Unix socket pair per worker; each message is a 4-byte big-endian length and a
pickle. Only the supervisor and its own children hold the two ends, so a pickle here
comes from this program, never from the network. Messages:

- supervisor to worker: ``Start`` once (the settings, the worker's place, the CA, the
  first model), then an ``Apply`` per config change in force. The end of the stream
  (the supervisor gone, however it ended) tells the worker to stop.
- worker to supervisor: ``Serving`` once it listens (with its own monitoring port,
  which the supervisor's 15014 reads and merges), and an ``ApplyFailed`` if a model
  did not translate (that worker keeps its last good one).

A model crosses the channel as one pickle made once per change and written to every
worker. Its ``MappingProxyType`` fields are pickled as the dicts they wrap.
"""

from __future__ import annotations

import asyncio
import copyreg
import pickle
import struct
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ca.authority import SigningBundle, cert_to_pem, private_key_to_pem
from ca.storage import parse_certs, parse_key, parse_single_cert
from pyistiod.settings import Settings
from translators.mesh.model.mesh import MeshModel

_LENGTH = struct.Struct(">I")


def _read_only(d: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(d)


copyreg.pickle(MappingProxyType, lambda m: (_read_only, (dict(m),)))


@dataclass(frozen=True)
class BundlePem:
    """A ``SigningBundle`` as PEM (its key objects do not pickle)."""

    key: bytes
    cert: bytes
    intermediates: bytes
    roots: bytes

    @classmethod
    def of(cls, bundle: SigningBundle) -> BundlePem:
        """``bundle`` as PEM."""
        return cls(
            private_key_to_pem(bundle.signing_key),
            cert_to_pem(bundle.signing_cert),
            b"".join(map(cert_to_pem, bundle.intermediates)),
            bundle.roots_pem,
        )

    def bundle(self) -> SigningBundle:
        """The ``SigningBundle`` again (its invariants re-checked)."""
        return SigningBundle(
            parse_key(self.key, "supervisor"),
            parse_single_cert(self.cert, "supervisor"),
            tuple(parse_certs(self.intermediates, "supervisor")) if self.intermediates else (),
            tuple(parse_certs(self.roots, "supervisor")),
        )


@dataclass(frozen=True)
class Start:
    """Everything a worker needs to serve: sent once, first."""

    settings: Settings
    """The supervisor's settings; the xDS addresses hold the concrete ports."""
    index: int
    """This worker's number, 0 to ``count - 1``."""
    count: int
    log_level: str
    bundle: BundlePem
    model: MeshModel


@dataclass(frozen=True)
class Apply:
    """A new model in force; ``changed_at`` is the monotonic time of its first change."""

    model: MeshModel
    changed_at: float


@dataclass(frozen=True)
class Serving:
    """The worker listens on the xDS ports; its monitoring server is on ``monitoring_port``."""

    monitoring_port: int


@dataclass(frozen=True)
class ApplyFailed:
    """A model the worker could not translate (a translator bug): it keeps the last one."""

    error: str


def encode(message: object) -> bytes:
    """``message`` framed for the channel (pickle it once, write it to many)."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def receive(reader: asyncio.StreamReader) -> object | None:
    """The next message, or None once the other end has gone."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        body = await reader.readexactly(_LENGTH.unpack(head)[0])
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    message: object = pickle.loads(body)
    return message
