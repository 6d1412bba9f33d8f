"""The monitoring port's JSON views of what pyistiod holds: istiod's ``/debug`` endpoints.

- ``config_dump(cache, proxy_id)``: what pyistiod would send that proxy now, per
  type, as Envoy writes its own config dump (protobuf JSON, camelCase), from the
  snapshot the proxy is served from.
- ``configz(loader)``: the objects in force (kind, namespace, name, where read)
  and the refused ones with each error and what stands in for them.

Invariants:

1. Read only, on the event loop that owns the cache and the loader (see
   ``monitoring.on_loop``); nothing is built or changed for a view.
2. No private key leaves: every ``privateKey`` field of a Secret (the
   workload's key, a gateway's credential), and every other field Envoy keeps
   secret material in (``password``, ``sessionTicketKeys``, a generic
   secret's ``secret``), is replaced by ``[redacted]``; tokens are never in a
   snapshot.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, json_format

from translators.sources.loader import Loader
from xds_server import types
from xds_server.cache import SnapshotCache

REDACTED = "[redacted]"

SECRET_FIELDS = frozenset({"privateKey", "password", "sessionTicketKeys", "secret"})
"""Envoy's fields (protobuf JSON names) that hold key material (invariant 2)."""


def config_dump(cache: SnapshotCache, proxy_id: str) -> dict[str, Any] | None:
    """What ``proxy_id`` is served, per type (``None``: no such proxy is connected)."""
    snapshot = cache.snapshot(proxy_id)
    if snapshot is None:
        return None
    configs: dict[str, Any] = {}
    for type_url in types.ADS_ORDER:
        resources = [_as_json(r.any_bytes) for r in snapshot.get(type_url)]
        configs[types.short_name(type_url)] = {
            "version": snapshot.version(type_url),
            "resources": resources,
        }
    return {"proxy": proxy_id, "configs": configs}


def _as_json(any_bytes: bytes) -> Any:
    packed = any_pb2.Any.FromString(any_bytes)
    return _redact(json_format.MessageToDict(packed))


def _redact(value: Any) -> Any:
    """``value`` with every secret field replaced (invariant 2)."""
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_FIELDS else _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def configz(loader: Loader) -> dict[str, Any]:
    """The objects in force and the refused ones (what the last applied read settled)."""
    in_force = [
        {
            "kind": key.kind,
            "namespace": key.namespace,
            "name": key.name,
            "from": str(obj.meta.origin),
        }
        for key, obj in sorted(loader.in_force.items())
    ]
    refused = [
        {
            "object": str(refusal.key) if refusal.key else "",
            "errors": [
                {"file": e.path, "document": e.document, "field": e.field, "reason": e.reason}
                for e in refusal.errors
            ],
            "in_force_instead": refusal.standing(),
        }
        for refusal in loader.refusals
    ]
    return {"in_force": in_force, "refused": refused}
