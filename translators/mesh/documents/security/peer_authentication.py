"""Read a PeerAuthentication (``security.istio.io``), as Istio's ``ValidatePeerAuthentication``.

Invariants:

1. A reader records every problem in ``Problems`` and returns an object
   anyway; ``parse_object`` drops it if any error was recorded.
2. ``selector.matchLabels`` is the only workload selection (``selector``).
   ``portLevelMtls``, when present, holds at least one port, needs a
   selector and is keyed by port number (a YAML integer or a numeric string).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.security.selector import workload_selector
from translators.mesh.model.policies import MtlsMode, PeerAuthentication


@dataclass(frozen=True, slots=True)
class PeerAuthenticationObject:
    """A parsed PeerAuthentication with its metadata."""

    meta: Meta
    policy: PeerAuthentication


def parse_peer_authentication(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> PeerAuthenticationObject:
    """Read and validate a PeerAuthentication's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    selector = workload_selector(p, spec, warnings)
    mtls = v.mapping(p, spec.get("mtls"), "spec.mtls") or {}
    mode = v.choice(p, mtls.get("mode"), "spec.mtls.mode", MtlsMode, MtlsMode.UNSET)
    raw_ports = spec.get("portLevelMtls")
    port_modes = _port_modes(p, raw_ports)
    if isinstance(raw_ports, Mapping) and not raw_ports:
        p.add(
            "spec.portLevelMtls",
            "must hold at least one port when set: Istio refuses an empty portLevelMtls",
        )
    elif isinstance(raw_ports, Mapping) and not selector:
        p.add(
            "spec.portLevelMtls",
            "requires spec.selector.matchLabels: port-level mTLS applies to selected "
            "workloads only (Istio refuses it on namespace- and mesh-wide policies)",
        )
    policy = PeerAuthentication(meta.namespace, meta.name, selector, mode, port_modes)
    return PeerAuthenticationObject(meta, policy)


def _port_modes(p: v.Problems, raw: object) -> tuple[tuple[int, MtlsMode], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        p.add(
            "spec.portLevelMtls", f"must be a mapping of port number to mtls, got {v.describe(raw)}"
        )
        return ()
    out: dict[int, MtlsMode] = {}
    for key, value in raw.items():
        field = f"spec.portLevelMtls.{key}"
        port = _port_key(key)
        if port is None:
            p.add(field, f"key must be a port number 1-65535, got {v.describe(key)}")
            continue
        entry = v.mapping(p, value, field) or {}
        mode = v.choice(p, entry.get("mode"), f"{field}.mode", MtlsMode, MtlsMode.UNSET)
        if port in out:
            p.add(field, f"duplicates port {port}")
        out[port] = mode
    return tuple(sorted(out.items()))


def _port_key(key: object) -> int | None:
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool) and 1 <= key <= 65535:
        return key
    return None
