"""ServiceEntry analyzer: TCP ports without addresses (IST0134).

Without ``addresses``, a sidecar cannot tell one TCP ServiceEntry from
another on the same port (it has no Host header to go by), so Istio warns
once per TCP port. pyistiod knows a port's protocol only after selection
(an empty ``protocol`` falls back to the port name), so a port named
``https`` without a protocol is not reported, where Istio would.
"""

from __future__ import annotations

from collections.abc import Iterator

from translators.mesh.analysis import messages as msg
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import Protocol


def analyze_service_entries(model: MeshModel) -> Iterator[msg.Message]:
    """An IST0134 message per TCP port of each ServiceEntry without addresses."""
    seen = set()
    for service in model.services:
        if service.source.kind != "ServiceEntry" or service.addresses:
            continue
        for i, port in enumerate(service.ports):
            if port.protocol is Protocol.TCP and (service.source, i) not in seen:
                seen.add((service.source, i))
                yield msg.SERVICE_ENTRY_ADDRESSES_REQUIRED(service.source, field=f"spec.ports[{i}]")
