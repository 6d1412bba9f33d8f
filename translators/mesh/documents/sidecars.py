"""Read Istio's Sidecar (``networking.istio.io``) documents.

Invariants, following Istio's ``ValidateSidecar`` for the fields read:

1. A Sidecar sets ``egress`` or ``ingress`` (an empty one is refused).
2. Every egress listener lists hosts ``namespace/dnsName``: the namespace is
   ``*``, ``.``, ``~`` or a DNS label, the name ``*``, a ``*.`` wildcard or
   a DNS name; ``~`` goes only with ``*``. At most one egress listener has no
   port, and it comes last (Istio's catch-all rule).
3. Ports are unique within egress and within ingress; protocols are Istio's
   (``HTTP``, ``TCP``, ...); ``bind`` is an IP address, or ``unix://...``
   with ``captureMode: NONE``.
4. An ingress ``defaultEndpoint`` is ``127.0.0.1:PORT``, ``0.0.0.0:PORT``,
   ``[::1]:PORT``, ``[::]:PORT`` or ``unix://PATH``.
5. ``workloadSelector.labels``, when the selector is given, is non-empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.port_protocol import KNOWN_PROTOCOLS, parse_protocol
from translators.mesh.model.sidecars import (
    ANY_NAMESPACE,
    CURRENT_NAMESPACE,
    NO_NAMESPACE,
    CaptureMode,
    EgressHost,
    EgressListener,
    IngressListener,
    Sidecar,
    SidecarPort,
)

_ENDPOINT = re.compile(r"^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):(\d+)$")


@dataclass(frozen=True, slots=True)
class SidecarObject:
    """A parsed Sidecar."""

    meta: Meta
    sidecar: Sidecar


def parse_sidecar(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> SidecarObject:
    """Read and validate a Sidecar's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    selector_raw = v.mapping(p, spec.get("workloadSelector"), "spec.workloadSelector")
    selector = frozenset[tuple[str, str]]()
    if selector_raw is not None:
        selector = v.labels(p, selector_raw.get("labels"), "spec.workloadSelector.labels")
        if not selector:
            p.add("spec.workloadSelector.labels", "must hold at least one label")
    egress = tuple(
        _egress(p, raw, f"spec.egress[{i}]")
        for i, raw in enumerate(v.sequence(p, spec.get("egress"), "spec.egress"))
    )
    ingress = tuple(
        listener
        for i, raw in enumerate(v.sequence(p, spec.get("ingress"), "spec.ingress"))
        if (listener := _ingress(p, raw, f"spec.ingress[{i}]")) is not None
    )
    if not spec.get("egress") and not spec.get("ingress"):
        p.add("spec", "sets neither egress nor ingress: an empty Sidecar configures nothing")
    _check_egress_ports(p, egress)
    _check_unique(p, [i.port.number for i in ingress], "spec.ingress")
    sidecar = Sidecar(meta.namespace, meta.name, selector, egress, ingress)
    return SidecarObject(meta, sidecar)


def _egress(p: v.Problems, raw: object, field: str) -> EgressListener:
    m = v.mapping(p, raw, field) or {}
    items = v.sequence(p, m.get("hosts"), f"{field}.hosts")
    if not items:
        p.add(f"{field}.hosts", "must list at least one namespace/dnsName host")
    hosts = tuple(
        h
        for i, item in enumerate(items)
        if (h := _egress_host(p, item, f"{field}.hosts[{i}]")) is not None
    )
    port = _port(p, m.get("port"), f"{field}.port", required=False)
    bind, mode = _bind(p, m, field)
    return EgressListener(hosts, port, bind, mode)


def _egress_host(p: v.Problems, raw: object, field: str) -> EgressHost | None:
    text = v.string(p, raw, field, required=True)
    if text is None:
        return None
    ns, slash, host = text.partition("/")
    if not slash:
        p.add(field, f"must be namespace/dnsName (e.g. './*', 'istio-system/*'), got {text!r}")
        return None
    special = (ANY_NAMESPACE, CURRENT_NAMESPACE, NO_NAMESPACE)
    if ns not in special and not v.is_dns_label(ns):
        p.add(field, f"namespace must be '*', '.', '~' or a namespace, got {text!r}")
    elif host != "*" and not v.is_hostname(host, wildcard=True):
        p.add(field, f"dnsName must be '*', '*.suffix' or a DNS name, got {text!r}")
    elif ns == NO_NAMESPACE and host != "*":
        p.add(field, f"'~' (no namespace) only goes with '*', got {text!r}")
    else:
        return EgressHost(ns, host.lower())
    return None


def _port(p: v.Problems, raw: object, field: str, *, required: bool) -> SidecarPort | None:
    m = v.mapping(p, raw, field)
    if m is None:
        if required:
            p.add(field, "is required: a number, protocol and name")
        return None
    number = v.port(p, m.get("number"), f"{field}.number")
    text = v.string(p, m.get("protocol"), f"{field}.protocol", required=True)
    protocol = parse_protocol(text) if text else None
    if text is not None and protocol is None:
        p.add(f"{field}.protocol", f"must be one of {', '.join(KNOWN_PROTOCOLS)}, got {text!r}")
    name = v.string(p, m.get("name"), f"{field}.name") or ""
    if number is None or protocol is None:
        return None
    return SidecarPort(number, protocol, name)


def _bind(p: v.Problems, m: Mapping[str, object], field: str) -> tuple[str, CaptureMode]:
    mode = v.choice(
        p, m.get("captureMode"), f"{field}.captureMode", CaptureMode, CaptureMode.DEFAULT
    )
    bind = v.string(p, m.get("bind"), f"{field}.bind") or ""
    if bind.startswith("unix://"):
        if mode is not CaptureMode.NONE:
            p.add(f"{field}.bind", "a unix:// bind needs captureMode NONE")
    elif bind and not v.is_ip(bind):
        p.add(f"{field}.bind", f"must be an IP address or unix://path, got {bind!r}")
    return bind, mode


def _ingress(p: v.Problems, raw: object, field: str) -> IngressListener | None:
    m = v.mapping(p, raw, field) or {}
    port = _port(p, m.get("port"), f"{field}.port", required=True)
    endpoint = v.string(p, m.get("defaultEndpoint"), f"{field}.defaultEndpoint") or ""
    if endpoint and not (endpoint.startswith("unix://") or _ENDPOINT.match(endpoint)):
        p.add(
            f"{field}.defaultEndpoint",
            "must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix://path, "
            f"got {endpoint!r}",
        )
    elif (found := _ENDPOINT.match(endpoint)) and not 1 <= int(found.group(2)) <= 65535:
        p.add(f"{field}.defaultEndpoint", f"port must be 1-65535, got {endpoint!r}")
    bind, mode = _bind(p, m, field)
    return IngressListener(port, endpoint, bind, mode) if port is not None else None


def _check_egress_ports(p: v.Problems, egress: tuple[EgressListener, ...]) -> None:
    catch_all = [i for i, e in enumerate(egress) if e.port is None]
    if len(catch_all) > 1:
        p.add(f"spec.egress[{catch_all[1]}].port", "only one egress listener may omit the port")
    elif catch_all and catch_all[0] != len(egress) - 1:
        p.add(f"spec.egress[{catch_all[0]}]", "the egress listener without a port must come last")
    _check_unique(p, [e.port.number for e in egress if e.port is not None], "spec.egress")


def _check_unique(p: v.Problems, numbers: list[int], field: str) -> None:
    seen: set[int] = set()
    for number in numbers:
        if number in seen:
            p.add(field, f"port {number} appears in more than one listener")
        seen.add(number)


def endpoint_port(default_endpoint: str) -> int | None:
    """The port of an IP ``defaultEndpoint`` (``127.0.0.1:8080`` -> 8080); None for unix."""
    found = _ENDPOINT.match(default_endpoint)
    return int(found.group(2)) if found else None


def endpoint_host(default_endpoint: str) -> str:
    """The host of an IP ``defaultEndpoint`` without brackets; empty for unix sockets."""
    found = _ENDPOINT.match(default_endpoint)
    return found.group(1).strip("[]") if found else ""
