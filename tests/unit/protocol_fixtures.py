"""Snapshots made of tiny fake resources, for protocol tests without Envoy types."""

from __future__ import annotations

from xds_server import types
from xds_server.snapshot import Resource, ResourceSet, Snapshot


def res(type_url: str, name: str, content: str = "") -> Resource:
    """A resource whose bytes are its name and content (so content changes its version)."""
    return Resource.from_bytes(type_url, name, f"{name}:{content}".encode())


def snap(**by_short: dict[str, str]) -> Snapshot:
    """``snap(cds={"a": "1"}, eds={"a": "x"})``: a snapshot by short type name."""
    urls = {
        "cds": types.CLUSTER,
        "eds": types.ENDPOINT,
        "lds": types.LISTENER,
        "rds": types.ROUTE,
        "sds": types.SECRET,
    }
    return Snapshot.of(
        ResourceSet.of(urls[k], (res(urls[k], n, c) for n, c in v.items()))
        for k, v in by_short.items()
    )
