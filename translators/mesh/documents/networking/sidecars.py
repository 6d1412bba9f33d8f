"""Read Istio's Sidecar (``networking.istio.io``) documents.

Invariants, following Istio's ``ValidateSidecar``:

1. A Sidecar sets at least one of ``egress``, ``ingress``,
   ``outboundTrafficPolicy`` and ``inboundConnectionPool``.
2. Every egress listener lists hosts ``namespace/dnsName``: the namespace is
   ``*``, ``.``, ``~`` or a DNS label; the dnsName ``*`` or a name holding a
   dot whose first label may be a ``*`` wildcard, never a partial one
   (``gateways.host_part_problem``). ``~`` goes with any dnsName. Repeated
   hosts, and ``*/*`` beside others, get Istio's warnings. At most one
   egress listener has no port, and it comes last (Istio's catch-all rule).
3. Ports are unique within egress and within ingress and carry no
   ``targetPort``; a ``name``, when set, is a DNS-1123 label; a ``protocol``
   is Istio's (``HTTP``, ``TCP``, ...). An unset one, which Istio sniffs,
   comes from the port name as for Kubernetes ports (else TCP): pyistiod
   does not sniff. ``bind`` is an IP address, or ``unix://...`` with
   ``captureMode: NONE``.
4. An ingress ``defaultEndpoint`` is ``127.0.0.1:PORT``, ``0.0.0.0:PORT``,
   ``[::1]:PORT``, ``[::]:PORT`` or ``unix://PATH``. Ingress ``tls`` is held
   to Istio's rules (TLS ports only; no subjectAltNames, httpsRedirect or
   credentialName; not ISTIO_MUTUAL or AUTO_PASSTHROUGH; certificate files
   for SIMPLE and MUTUAL) and, valid, refused as not supported yet.
   Connection pools (``inboundConnectionPool``, ``ingress[].connectionPool``)
   are ignored with a warning.
5. A ``workloadSelector`` without labels gets Istio's warning: like an
   absent one, it applies to the whole namespace.
6. ``outboundTrafficPolicy`` has ``mode`` REGISTRY_ONLY (the protobuf zero
   value) or ALLOW_ANY; an ``egressProxy`` (a DNS name and a port) only
   goes with ALLOW_ANY. It reaches the model; Envoy does not apply it yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import domain_problem
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.networking.gateways import host_part_problem
from translators.mesh.documents.port_protocol import (
    KNOWN_PROTOCOLS,
    parse_protocol,
    protocol_from_port_name,
)
from translators.mesh.model.services import Protocol
from translators.mesh.model.sidecars import (
    ANY_NAMESPACE,
    CURRENT_NAMESPACE,
    NO_NAMESPACE,
    CaptureMode,
    EgressHost,
    EgressListener,
    EgressProxy,
    IngressListener,
    OutboundMode,
    OutboundTrafficPolicy,
    Sidecar,
    SidecarPort,
)

_ENDPOINT = re.compile(r"^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):(\d+)$")
_NOT_IN_INGRESS_TLS = "subjectAltNames httpsRedirect credentialName credentialNames tlsCertificates"


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
    selector = _selector(p, spec.get("workloadSelector"), warnings)
    egress = tuple(
        _egress(p, raw, f"spec.egress[{i}]", meta.namespace, warnings)
        for i, raw in enumerate(v.sequence(p, spec.get("egress"), "spec.egress"))
    )
    ingress = tuple(
        listener
        for i, raw in enumerate(v.sequence(p, spec.get("ingress"), "spec.ingress"))
        if (listener := _ingress(p, raw, f"spec.ingress[{i}]", warnings)) is not None
    )
    outbound = _outbound(p, spec.get("outboundTrafficPolicy"), warnings)
    pool = spec.get("inboundConnectionPool")
    if pool is not None:
        warnings.append("spec.inboundConnectionPool is not supported yet and is ignored")
    if not (spec.get("egress") or spec.get("ingress") or outbound or pool is not None):
        p.add(
            "spec",
            "configures nothing (Istio: empty configuration): set egress, ingress, "
            "outboundTrafficPolicy or inboundConnectionPool",
        )
    _check_egress_ports(p, egress)
    _check_unique(p, [i.port.number for i in ingress], "spec.ingress")
    sidecar = Sidecar(meta.namespace, meta.name, selector, egress, ingress, outbound)
    return SidecarObject(meta, sidecar)


def _selector(p: v.Problems, raw: object, warnings: list[str]) -> frozenset[tuple[str, str]]:
    m = v.mapping(p, raw, "spec.workloadSelector")
    if m is None:
        return frozenset()
    selector = v.labels(p, m.get("labels"), "spec.workloadSelector.labels")
    if not m.get("labels"):
        warnings.append(
            "spec.workloadSelector specified without labels: the Sidecar will be applied to all "
            "workloads in the namespace, as without a selector"
        )
    return selector


def _egress(
    p: v.Problems, raw: object, field: str, namespace: str, warnings: list[str]
) -> EgressListener:
    m = v.mapping(p, raw, field) or {}
    items = v.sequence(p, m.get("hosts"), f"{field}.hosts")
    if not items:
        p.add(f"{field}.hosts", "must list at least one namespace/dnsName host")
    hosts = tuple(
        h
        for i, item in enumerate(items)
        if (h := _egress_host(p, item, f"{field}.hosts[{i}]")) is not None
    )
    _host_warnings(hosts, namespace, f"{field}.hosts", warnings)
    port = _port(p, m.get("port"), f"{field}.port", required=False)
    bind, mode = _bind(p, m, field)
    return EgressListener(hosts, port, bind, mode)


def _egress_host(p: v.Problems, raw: object, field: str) -> EgressHost | None:
    text = v.string(p, raw, field, required=True)
    if text is None:
        return None
    ns, slash, host = text.partition("/")
    special = (ANY_NAMESPACE, CURRENT_NAMESPACE, NO_NAMESPACE)
    if not slash:
        problem: str | None = "a host is namespace/dnsName (e.g. './*', 'istio-system/*')"
    elif not (ns and host):
        problem = "neither namespace nor dnsName may be empty"
    elif ns not in special and not v.is_istio_label(ns):
        problem = f"namespace must be '*', '.', '~' or a namespace, not {ns!r}"
    else:
        problem = host_part_problem(host, gateway=False)
    if problem is not None:
        p.add(field, f"must be namespace/dnsName, got {text!r}: {problem}")
        return None
    return EgressHost(ns, host.lower())


def _host_warnings(
    hosts: tuple[EgressHost, ...], namespace: str, field: str, warnings: list[str]
) -> None:
    """Istio's warnings for hosts another one already covers (invariant 2)."""
    seen: dict[str, set[str]] = {}
    for h in hosts:
        names = seen.setdefault(
            namespace if h.namespace == CURRENT_NAMESPACE else h.namespace, set()
        )
        if names and (h.host == "*" or h.host in names or "*" in names):
            warnings.append(f"{field}: duplicated egress host: {h.namespace}/{h.host}")
        names.add(h.host)
    if "*" in seen.get(ANY_NAMESPACE, ()) and len(seen) > 1:
        warnings.append(f"{field}: `*/*` host select all resources, no other hosts can be added")


def _port(p: v.Problems, raw: object, field: str, *, required: bool) -> SidecarPort | None:
    m = v.mapping(p, raw, field)
    if m is None:
        if required:
            p.add(field, "is required: a number, and optionally a protocol and name")
        return None
    number = v.port(p, m.get("number"), f"{field}.number")
    name = v.string(p, m.get("name"), f"{field}.name") or ""
    if name and not v.is_istio_label(name):
        p.add(f"{field}.name", f"must be a DNS-1123 label (letters, digits, '-'), got {name!r}")
    text = v.string(p, m.get("protocol"), f"{field}.protocol")
    protocol = parse_protocol(text) if text else protocol_from_port_name(name)
    if protocol is None:
        p.add(f"{field}.protocol", f"must be one of {', '.join(KNOWN_PROTOCOLS)}, got {text!r}")
    if m.get("targetPort") not in (None, 0):
        p.add(f"{field}.targetPort", "targetPort has no impact on Sidecars: remove it")
    if number is None or protocol is None:
        return None
    return SidecarPort(number, protocol, name)


def _outbound(p: v.Problems, raw: object, warnings: list[str]) -> OutboundTrafficPolicy | None:
    field = "spec.outboundTrafficPolicy"
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    default = OutboundMode.REGISTRY_ONLY
    mode = v.choice(p, m.get("mode"), f"{field}.mode", OutboundMode, default)
    proxy = _egress_proxy(p, m.get("egressProxy"), f"{field}.egressProxy")
    if m.get("egressProxy") is not None and mode is not OutboundMode.ALLOW_ANY:
        p.add(
            f"{field}.egressProxy",
            f"must be set only with mode ALLOW_ANY, got mode {mode.value}"
            + ("" if "mode" in m else " (the default)"),
        )
    warnings.append(
        f"{field} is not applied yet: pyistiod builds no catch-all outbound listener, "
        "so the mode has no effect on traffic to hosts outside the registry"
    )
    return OutboundTrafficPolicy(mode, proxy)


def _egress_proxy(p: v.Problems, raw: object, field: str) -> EgressProxy | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    host = v.string(p, m.get("host"), f"{field}.host", required=True) or ""
    if host and (problem := domain_problem(host)) is not None:
        p.add(f"{field}.host", f"must be a DNS name, got {host!r}: {problem}")
    port = v.mapping(p, m.get("port"), f"{field}.port")
    if port is None:
        p.add(f"{field}.port", "is required: the egress proxy's port number")
    number = v.port(p, port.get("number"), f"{field}.port.number") if port is not None else None
    subset = v.string(p, m.get("subset"), f"{field}.subset") or ""
    if subset and not v.is_istio_label(subset):
        p.add(f"{field}.subset", f"must be a DNS-1123 label, got {subset!r}")
    return EgressProxy(host, number, subset) if host and number is not None else None


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


def _ingress(p: v.Problems, raw: object, field: str, warnings: list[str]) -> IngressListener | None:
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
    port_m = m.get("port")
    written = port_m.get("protocol") if isinstance(port_m, Mapping) else None
    _ingress_tls(p, m.get("tls"), f"{field}.tls", written)
    if m.get("connectionPool") is not None:
        warnings.append(f"{field}.connectionPool is not supported yet and is ignored")
    return IngressListener(port, endpoint, bind, mode) if port is not None else None


def _ingress_tls(p: v.Problems, raw: object, field: str, written_protocol: object) -> None:
    """Istio's rules for ingress ``tls``; a valid one is not supported yet (invariant 4)."""
    m = v.mapping(p, raw, field)
    if m is None:
        return
    before = len(p.errors)
    protocol = parse_protocol(written_protocol) if isinstance(written_protocol, str) else None
    if protocol not in (Protocol.HTTPS, Protocol.TLS):
        p.add(field, "server cannot have TLS settings for non HTTPS/TLS ports")
    for key in _NOT_IN_INGRESS_TLS.split():
        if m.get(key):
            p.add(f"{field}.{key}", "is not supported in Sidecar ingress tls")
    mode = m.get("mode")
    if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
        p.add(f"{field}.mode", f"cannot be {mode} in Sidecar ingress tls")
    elif mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        if not (m.get("serverCertificate") and m.get("privateKey")):
            p.add(field, f"{mode} needs serverCertificate and privateKey")
        if mode != "SIMPLE" and not m.get("caCertificates"):
            p.add(f"{field}.caCertificates", f"is required for {mode}")
    elif mode not in (None, "PASSTHROUGH"):
        p.add(
            f"{field}.mode", f"must be PASSTHROUGH, SIMPLE, MUTUAL or OPTIONAL_MUTUAL, got {mode!r}"
        )
    if len(p.errors) == before:
        p.add(field, "Sidecar ingress TLS is valid in Istio but not supported by pyistiod yet")


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
