"""Loopback addressing: how pods share one machine without iptables.

In Kubernetes every pod has its own network namespace, and iptables sends the
app's traffic through the sidecar. Here every "pod" lives on 127.0.0.0/8 of one
host, so each pod gets three loopback addresses instead, derived from its pod
IP ``127.0.X.Y``:

============  ==============  ==============================================
role          address         who binds it
============  ==============  ==============================================
pod IP        ``127.0.X.Y``   the sidecar's INBOUND listeners (what the mesh
                              dials: EndpointSlice addresses)
app           ``127.1.X.Y``   the app itself; inbound clusters send here
                              (Istio's Sidecar ingress ``defaultEndpoint``,
                              the pod's own 127.0.0.1 in Kubernetes)
outbound      ``127.2.X.Y``   the sidecar's OUTBOUND listeners (Istio's
                              Sidecar egress ``bind``); the app calls
                              ``http://127.2.X.Y:9080/`` with ``Host: backend``
============  ==============  ==============================================

A pod IP outside 127.0.0.0/16 (a simulated proxy, a VM) has no such
neighbours, so both the app and the outbound address fall back to
``127.0.0.1``, Istio's default for VMs.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Final

FALLBACK_ADDRESS: Final = "127.0.0.1"
"""The app and outbound address of a proxy whose IP is outside 127.0.0.0/16."""

_POD_NETWORK: Final = ipaddress.IPv4Network("127.0.0.0/16")
_APP_OCTET: Final = 1
_OUTBOUND_OCTET: Final = 2


def app_address(pod_ip: str) -> str:
    """Where the app of the pod with this IP listens: ``127.1.X.Y`` for ``127.0.X.Y``."""
    return _shifted(pod_ip, _APP_OCTET)


def outbound_address(pod_ip: str) -> str:
    """Where the pod's sidecar binds outbound listeners: ``127.2.X.Y`` for ``127.0.X.Y``."""
    return _shifted(pod_ip, _OUTBOUND_OCTET)


@functools.lru_cache(maxsize=65536)
def _shifted(pod_ip: str, second_octet: int) -> str:
    """Pure, and asked for on every snapshot build: memoized (ipaddress parsing is slow)."""
    try:
        address = ipaddress.ip_address(pod_ip)
    except ValueError:
        return FALLBACK_ADDRESS
    if address not in _POD_NETWORK:
        return FALLBACK_ADDRESS
    _, _, x, y = str(address).split(".")
    return f"127.{second_octet}.{x}.{y}"
