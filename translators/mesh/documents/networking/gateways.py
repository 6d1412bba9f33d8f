"""Read Istio's Gateway (``networking.istio.io``) and Kubernetes ``v1`` Secret documents.

Invariants, following Istio's ``ValidateGateway`` where pyistiod implements the field:

1. A Gateway (named by a DNS-1123 label: no dots, see ``kinds``) has at
   least one server; each server has a port (number 1-65535, a name unique
   in the Gateway, a protocol of ``ServerProtocol``, no ``targetPort``) and
   at least one host ``[namespace/]dnsName``: the namespace is ``*``, ``.``
   or a DNS label; the dnsName is ``*``, an IP, or a name holding a dot whose
   first label may be ``*`` or start with ``*.`` (``host_part_problem``).
2. HTTPS and TLS servers need ``tls``; a plain HTTP server may carry only
   ``tls.httpsRedirect`` (a ``credentialName`` there is ignored with a
   warning, as Istio warns), a TCP server none. ``httpsRedirect`` on a
   non-HTTP server gets Istio's warning. SIMPLE, MUTUAL and OPTIONAL_MUTUAL
   need a ``credentialName`` or both ``serverCertificate`` and
   ``privateKey``; both mutual modes with files also need
   ``caCertificates``. A ``tls`` without ``mode`` is PASSTHROUGH (the zero value
   of Istio's enum), with a warning when it names certificates. ISTIO_MUTUAL
   takes the gateway's own workload certificate, so it refuses every
   certificate field. ``AUTO_PASSTHROUGH``
   (valid in Istio) is refused as not supported yet: it routes by SNI to
   mesh clusters with no VirtualService, which pyistiod does not build.
3. A Secret becomes a ``TlsCredential`` when it holds a key pair: type
   ``kubernetes.io/tls`` (``tls.crt``, ``tls.key``, optional ``ca.crt``) or
   Istio's generic form (``cert``, ``key``, optional ``cacert``); a Secret
   holding only ``ca.crt``/``cacert`` becomes a CA-only credential (Istio's
   ``NAME-cacert`` Secrets). Other Secrets are kept without a credential.
   Error messages name fields, never the bytes: key material is not echoed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from translators.mesh.documents import fields as v
from translators.mesh.documents.hosts import domain_problem, is_partial_wildcard
from translators.mesh.documents.meta import Meta
from translators.mesh.model.gateways import (
    Gateway,
    GatewayHost,
    GatewayServer,
    ServerProtocol,
    ServerTls,
    TlsCredential,
    TlsMode,
)

TLS_SECRET_TYPE = "kubernetes.io/tls"
_TLS_VERSIONS = ("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")
_KEY_NAMES = (("tls.crt", "tls.key", "ca.crt"), ("cert", "key", "cacert"))
"""(certificate, key, CA) data keys: Kubernetes' TLS type, then Istio's generic form."""


@dataclass(frozen=True, slots=True)
class GatewayObject:
    """A parsed Gateway."""

    meta: Meta
    gateway: Gateway


@dataclass(frozen=True, slots=True)
class SecretObject:
    """A ``v1 Secret``; ``credential`` is set when it holds TLS material (invariant 3)."""

    meta: Meta
    credential: TlsCredential | None


def parse_gateway(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> GatewayObject:
    """Read and validate a Gateway's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    selector = v.labels(p, spec.get("selector"), "spec.selector")
    raw_servers = v.sequence(p, spec.get("servers"), "spec.servers")
    if not raw_servers:
        p.add("spec.servers", "must list at least one server")
    servers = [
        _server(p, raw, f"spec.servers[{i}]", meta.namespace, warnings)
        for i, raw in enumerate(raw_servers)
    ]
    names: set[str] = set()
    for i, server in enumerate(servers):
        if server is None:
            continue
        if server.port_name in names:
            p.add(
                f"spec.servers[{i}].port.name",
                f"duplicates another port name: {server.port_name!r}",
            )
        names.add(server.port_name)
    good = tuple(s for s in servers if s is not None)
    return GatewayObject(meta, Gateway(meta.namespace, meta.name, selector, good))


def _server(
    p: v.Problems, raw: object, field: str, namespace: str, warnings: list[str]
) -> GatewayServer | None:
    m = v.mapping(p, raw, field) or {}
    port = v.mapping(p, m.get("port"), f"{field}.port")
    if port is None:
        p.add(f"{field}.port", "is required: a server needs a port number, name and protocol")
        port = {}
    number = v.port(p, port.get("number"), f"{field}.port.number")
    name = v.string(p, port.get("name"), f"{field}.port.name", required=True)
    protocol = _protocol(p, port.get("protocol"), f"{field}.port.protocol")
    if port.get("targetPort") not in (None, 0):
        p.add(
            f"{field}.port.targetPort",
            "targetPort has no impact on Gateways: the server listens on port.number; remove it",
        )
    hosts = _hosts(p, m.get("hosts"), f"{field}.hosts", namespace)
    bind = v.ip(p, m.get("bind"), f"{field}.bind") or ""
    tls = _tls(p, m.get("tls"), f"{field}.tls", protocol, warnings)
    label = v.string(p, m.get("name"), f"{field}.name") or ""
    if number is None or name is None or protocol is None:
        return None
    return GatewayServer(number, name, protocol, hosts, bind, tls, label)


def _protocol(p: v.Problems, raw: object, field: str) -> ServerProtocol | None:
    text = v.string(p, raw, field, required=True)
    members = {m.value: m for m in ServerProtocol}
    if text is not None and text.upper() in members:
        return members[text.upper()]
    if text is not None:
        p.add(field, f"must be one of {', '.join(members)}, got {v.describe(text)}")
    return None


def host_part_problem(host: str, *, gateway: bool) -> str | None:
    """Why the dnsName of a Gateway or Sidecar host is refused, or ``None``.

    Istio's ``validateSidecarOrGatewayHostnamePart``: ``*``, or a name holding
    a dot (no short names) whose first label may be a ``*`` wildcard, never a
    partial one (``*x.example.com``); a Gateway may also name an IP address.
    """
    if host == "*":
        return None
    if "." not in host:
        return "short names (non FQDN) are not allowed: write the full name"
    if is_partial_wildcard(host):
        return "a partial wildcard is not allowed: only '*.' makes a wildcard"
    if gateway and v.is_ip(host):
        return None
    return domain_problem(host, wildcard=True)


def _hosts(p: v.Problems, raw: object, field: str, namespace: str) -> tuple[GatewayHost, ...]:
    items = v.sequence(p, raw, field)
    if not items:
        p.add(field, "must list at least one host ([namespace/]dnsName, or '*')")
    out: list[GatewayHost] = []
    for i, item in enumerate(items):
        text = v.string(p, item, f"{field}[{i}]", required=True)
        if text is None:
            continue
        ns, slash, host = text.partition("/") if "/" in text else ("*", "", text)
        if slash and not (ns and host):
            problem: str | None = "neither namespace nor dnsName may be empty"
        elif slash and ns not in ("*", ".") and not v.is_istio_label(ns):
            problem = f"namespace {ns!r} is not '*', '.' or a namespace"
        else:
            problem = host_part_problem(host, gateway=True)
        if problem is not None:
            p.add(f"{field}[{i}]", f"must be [namespace/]dnsName, got {text!r}: {problem}")
        else:
            out.append(GatewayHost(namespace if ns == "." else ns, host.lower()))
    return tuple(out)


def _tls(
    p: v.Problems, raw: object, field: str, protocol: ServerProtocol | None, warnings: list[str]
) -> ServerTls | None:
    m = v.mapping(p, raw, field)
    if m is None:
        if protocol in (ServerProtocol.HTTPS, ServerProtocol.TLS):
            p.add(field, f"is required for protocol {protocol.value}")
        return None
    if protocol is ServerProtocol.TCP:
        p.add(field, "server cannot have TLS settings for non HTTPS/TLS ports (use protocol TLS)")
        return None
    if protocol is not None and protocol.is_http:
        return _plain_http_tls(p, m, field, warnings)
    if m.get("mode") == "AUTO_PASSTHROUGH":
        p.add(
            f"{field}.mode",
            "AUTO_PASSTHROUGH is not supported by pyistiod yet (it routes by SNI to mesh "
            "clusters without a VirtualService); use PASSTHROUGH and a VirtualService tls route",
        )
        return None
    tls = ServerTls(
        # PASSTHROUGH is the zero value of Istio's ServerTLSSettings.TLSmode: no mode, no
        # termination, as in istiod.
        mode=v.choice(p, m.get("mode"), f"{field}.mode", TlsMode, TlsMode.PASSTHROUGH),
        https_redirect=v.boolean(p, m.get("httpsRedirect"), f"{field}.httpsRedirect", False),
        credential_name=v.string(p, m.get("credentialName"), f"{field}.credentialName") or "",
        server_certificate=_text(p, m, "serverCertificate", field),
        private_key=_text(p, m, "privateKey", field),
        ca_certificates=_text(p, m, "caCertificates", field),
        subject_alt_names=_strings(p, m.get("subjectAltNames"), f"{field}.subjectAltNames"),
        min_protocol_version=_version(p, m, "minProtocolVersion", field),
        max_protocol_version=_version(p, m, "maxProtocolVersion", field),
    )
    if tls.https_redirect:
        warnings.append(f"{field}.httpsRedirect should only be used with http servers")
    _check_tls(p, tls, field, protocol, warnings, mode_set="mode" in m)
    return tls


def _plain_http_tls(
    p: v.Problems, m: Mapping[str, object], field: str, warnings: list[str]
) -> ServerTls:
    """A plain HTTP server's ``tls``: Istio allows a PASSTHROUGH one (the protobuf zero
    value) without certificate files, which in effect is ``httpsRedirect`` alone."""
    files = [key for key in ("serverCertificate", "privateKey", "caCertificates") if m.get(key)]
    if m.get("mode") not in (None, "PASSTHROUGH", "AUTO_PASSTHROUGH") or files:
        p.add(field, "a plain-text HTTP server may only set tls.httpsRedirect")
    elif m.get("credentialName"):
        warnings.append(f"{field}.credentialName is ignored: a plain-text HTTP server has no TLS")
    return ServerTls(
        https_redirect=v.boolean(p, m.get("httpsRedirect"), f"{field}.httpsRedirect", False)
    )


def _check_tls(
    p: v.Problems,
    tls: ServerTls,
    field: str,
    protocol: ServerProtocol | None,
    warnings: list[str],
    *,
    mode_set: bool,
) -> None:
    files = tls.server_certificate or tls.private_key
    if tls.mode is TlsMode.ISTIO_MUTUAL:
        if tls.credential_name or files or tls.ca_certificates:
            p.add(field, "ISTIO_MUTUAL uses the gateway's workload certificate: set no certificate")
        return
    if tls.mode is TlsMode.PASSTHROUGH:
        if tls.credential_name or files or tls.ca_certificates:
            warnings.append(
                f"{field}: PASSTHROUGH mode does not use certificates, they are ignored"
                if mode_set
                else f"{field}.mode is not set, so it is PASSTHROUGH (Istio's default): the "
                "certificates are ignored and TLS is not terminated; set mode: SIMPLE to "
                "terminate it"
            )
        return
    if protocol is None:
        return
    if tls.credential_name and files:
        p.add(field, "set either credentialName or serverCertificate/privateKey, not both")
    elif not tls.credential_name and not (tls.server_certificate and tls.private_key):
        p.add(field, f"{tls.mode.value} needs credentialName or serverCertificate and privateKey")
    elif tls.mode is not TlsMode.SIMPLE and files and not tls.ca_certificates:
        p.add(f"{field}.caCertificates", f"is required for {tls.mode.value} with certificate files")


def _text(p: v.Problems, m: Mapping[str, object], key: str, field: str) -> str:
    return v.string(p, m.get(key), f"{field}.{key}") or ""


def _strings(p: v.Problems, raw: object, field: str) -> tuple[str, ...]:
    items = (
        v.string(p, x, f"{field}[{i}]", required=True)
        for i, x in enumerate(v.sequence(p, raw, field))
    )
    return tuple(x for x in items if x is not None)


def _version(p: v.Problems, m: Mapping[str, object], key: str, field: str) -> str:
    text = _text(p, m, key, field)
    if text and text not in _TLS_VERSIONS:
        p.add(f"{field}.{key}", f"must be one of {', '.join(_TLS_VERSIONS)}, got {text!r}")
    return "" if text == "TLS_AUTO" else text


def parse_secret(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> SecretObject:
    """Read a Secret; only TLS material is kept (invariant 3)."""
    secret_type = v.string(p, doc.get("type"), "type") or "Opaque"
    data = _secret_data(p, doc)
    forms = _KEY_NAMES[:1] if secret_type == TLS_SECRET_TYPE else _KEY_NAMES
    for names in forms:
        if any(data.get(name) for name in names):
            return SecretObject(meta, _credential(p, meta, names, data))
    if secret_type == TLS_SECRET_TYPE:
        p.add("data", "a kubernetes.io/tls Secret needs tls.crt and tls.key")
    return SecretObject(meta, None)


def _secret_data(p: v.Problems, doc: Mapping[str, object]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for key, raw in (v.mapping(p, doc.get("data"), "data") or {}).items():
        if not isinstance(raw, str):
            p.add(f"data.{key}", "must be a base64 string")
            continue
        try:
            out[key] = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            p.add(f"data.{key}", "is not valid base64")
    for key, raw in (v.mapping(p, doc.get("stringData"), "stringData") or {}).items():
        if isinstance(raw, str):
            out[key] = raw.encode()
        else:
            p.add(f"stringData.{key}", "must be a string")
    return out


def _credential(
    p: v.Problems, meta: Meta, names: tuple[str, str, str], data: Mapping[str, bytes]
) -> TlsCredential:
    cert_key, key_key, ca_key = names
    cert, key, ca = (data.get(name, b"") for name in names)
    if bool(cert) != bool(key):
        p.add(f"data.{key_key if cert else cert_key}", "is required with its pair")
    if cert:
        _check_certs(p, cert, f"data.{cert_key}")
    if ca:
        _check_certs(p, ca, f"data.{ca_key}")
    if key:
        try:
            load_pem_private_key(key, password=None)
        except (ValueError, TypeError):
            p.add(f"data.{key_key}", "is not an unencrypted PEM private key")
    return TlsCredential(meta.namespace, meta.name, cert, key, ca)


def _check_certs(p: v.Problems, pem: bytes, field: str) -> None:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        p.add(field, "is not a PEM certificate (chain)")
