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

The first model crosses the channel whole; each later one as a ``ModelDelta`` from the
one sent before: the fields that changed, and of the keyed fields (endpoints, workloads)
only the keys that changed. So an endpoint edit ships one service's endpoints, not the
mesh, and the worker's model keeps every unchanged part as the very object it had, which
is what its snapshot builder's memos look up first. Each frame is pickled once and written
to every worker. ``MappingProxyType`` fields are pickled as the dicts they wrap.
"""

from __future__ import annotations

import asyncio
import copyreg
import pickle
import struct
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, fields, replace
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


_KEYED = ("endpoints", "workloads")
"""The model's mappings, sent key by key."""


@dataclass(frozen=True)
class ModelDelta:
    """How one model differs from the one sent before it (``model_delta``)."""

    replaced: dict[str, Any]
    """Fields whose value changed, with the new value."""
    keyed: dict[str, tuple[dict[Hashable, Any], tuple[Hashable, ...]]]
    """For a changed mapping field: the entries added or changed, and the keys removed."""

    def apply(self, old: MeshModel) -> MeshModel:
        """The new model, from ``old`` (the model the delta was taken from); every
        unchanged field, and every unchanged entry of a mapping, is ``old``'s own object."""
        changes = dict(self.replaced)
        for name, (changed, removed) in self.keyed.items():
            entries = dict(getattr(old, name))
            for key in removed:
                del entries[key]
            entries.update(changed)
            changes[name] = MappingProxyType(dict(sorted(entries.items())))  # as build() sorts
        return replace(old, **changes)


def model_delta(old: MeshModel, new: MeshModel) -> ModelDelta:
    """What changed from ``old`` to ``new``, field by field (compared by identity, then
    value) and, in the mappings, key by key."""
    replaced: dict[str, Any] = {}
    keyed: dict[str, tuple[dict[Hashable, Any], tuple[Hashable, ...]]] = {}
    for f in fields(MeshModel):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before is after or before == after:
            continue
        if f.name in _KEYED:
            keyed[f.name] = _entries_delta(before, after)
        else:
            replaced[f.name] = after
    return ModelDelta(replaced, keyed)


def _entries_delta(
    old: Mapping[Hashable, Any], new: Mapping[Hashable, Any]
) -> tuple[dict[Hashable, Any], tuple[Hashable, ...]]:
    changed = {k: v for k, v in new.items() if k not in old or old[k] != v}
    return changed, tuple(k for k in old if k not in new)


@dataclass(frozen=True)
class Apply:
    """A new model in force, as its delta from the one sent before; ``changed_at`` is the
    monotonic time of its first change."""

    delta: ModelDelta
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
