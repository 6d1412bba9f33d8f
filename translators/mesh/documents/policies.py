"""Read PeerAuthentication (``security.istio.io``) and DestinationRule (``networking.istio.io``).

Invariants, following Istio's ``ValidatePeerAuthentication`` and
``ValidateDestinationRule`` where pyistiod implements the field:

1. A readers records every problem in ``Problems`` and returns an object
   anyway; ``parse_object`` drops it if any error was recorded.
2. ``selector.matchLabels`` is the only workload selection; an empty one is
   no selector. ``portLevelMtls`` needs a selector and is keyed by port
   number (a YAML integer or a numeric string).
3. A DestinationRule keeps ``host``, subsets and the traffic policy (TLS
   here; load balancing, connection pool and outlier detection read in
   ``traffic_policy``). Fields pyistiod does not implement
   (``exportTo``, ``workloadSelector``, ``tunnel``, ``proxyProtocol``,
   ``credentialName``) are ignored with a warning, never silently. MUTUAL
   TLS needs ``clientCertificate`` and ``privateKey``, as Istio requires
   without ``credentialName``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents import traffic_policy as tp
from translators.mesh.documents.meta import Meta
from translators.mesh.model.policies import (
    AuthorizationPolicy,
    ClientTls,
    ClientTlsMode,
    DestinationRule,
    MtlsMode,
    PeerAuthentication,
    PortTrafficPolicy,
    TrafficPolicy,
)
from translators.mesh.model.services import Labels

_IGNORED_DR_FIELDS = ("exportTo", "workloadSelector")
_IGNORED_POLICY_FIELDS = ("tunnel", "proxyProtocol")
_IGNORED_TLS_FIELDS = ("credentialName",)


@dataclass(frozen=True, slots=True)
class PeerAuthenticationObject:
    """A parsed PeerAuthentication with its metadata."""

    meta: Meta
    policy: PeerAuthentication


@dataclass(frozen=True, slots=True)
class AuthorizationPolicyObject:
    """A parsed AuthorizationPolicy with its metadata."""

    meta: Meta
    policy: AuthorizationPolicy


@dataclass(frozen=True, slots=True)
class DestinationRuleObject:
    """A parsed DestinationRule; ``rule.host`` is as written (resolved by the mesh builder)."""

    meta: Meta
    rule: DestinationRule


def workload_selector(p: v.Problems, spec: Mapping[str, object]) -> Labels:
    """``spec.selector.matchLabels`` (empty when absent: no selector)."""
    selector = v.mapping(p, spec.get("selector"), "spec.selector") or {}
    return v.labels(p, selector.get("matchLabels"), "spec.selector.matchLabels")


def parse_peer_authentication(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> PeerAuthenticationObject:
    """Read and validate a PeerAuthentication's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    selector = workload_selector(p, spec)
    mtls = v.mapping(p, spec.get("mtls"), "spec.mtls") or {}
    mode = v.choice(p, mtls.get("mode"), "spec.mtls.mode", MtlsMode, MtlsMode.UNSET)
    port_modes = _port_modes(p, spec.get("portLevelMtls"))
    if port_modes and not selector:
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


def parse_destination_rule(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> DestinationRuleObject:
    """Read and validate a DestinationRule's ``host`` and TLS settings (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    host = v.string(p, spec.get("host"), "spec.host", required=True) or ""
    if host and host != "*" and not v.is_hostname(host, wildcard=True):
        p.add("spec.host", f"must be a DNS name, optionally starting with '*.', got {host!r}")
    warnings.extend(_ignored(spec, _IGNORED_DR_FIELDS, "spec"))
    policy = _traffic_policy(p, spec.get("trafficPolicy"), "spec.trafficPolicy", warnings)
    subsets = tp.subsets(p, spec.get("subsets"), warnings, _traffic_policy)
    rule = DestinationRule(meta.namespace, meta.name, host, policy, subsets)
    return DestinationRuleObject(meta, rule)


def _ignored(m: Mapping[str, object], names: tuple[str, ...], field: str) -> list[str]:
    return [f"{field}.{name} is not supported yet and is ignored" for name in names if name in m]


def _traffic_policy(p: v.Problems, raw: object, field: str, warnings: list[str]) -> TrafficPolicy:
    m = v.mapping(p, raw, field) or {}
    warnings.extend(_ignored(m, _IGNORED_POLICY_FIELDS, field))
    tls = _client_tls(p, m.get("tls"), f"{field}.tls", warnings)
    levels: list[PortTrafficPolicy] = []
    for i, item in enumerate(
        v.sequence(p, m.get("portLevelSettings"), f"{field}.portLevelSettings")
    ):
        item_field = f"{field}.portLevelSettings[{i}]"
        entry = v.mapping(p, item, item_field) or {}
        warnings.extend(_ignored(entry, _IGNORED_POLICY_FIELDS, item_field))
        port_sel = v.mapping(p, entry.get("port"), f"{item_field}.port") or {}
        number = v.port(p, port_sel.get("number"), f"{item_field}.port.number")
        if number is not None and any(lv.port == number for lv in levels):
            p.add(f"{item_field}.port.number", f"duplicates port {number} of an earlier entry")
        level_tls = _client_tls(p, entry.get("tls"), f"{item_field}.tls", warnings)
        if number is not None:
            levels.append(
                PortTrafficPolicy(
                    number,
                    level_tls,
                    tp.load_balancer(p, entry.get("loadBalancer"), f"{item_field}.loadBalancer"),
                    tp.connection_pool(
                        p, entry.get("connectionPool"), f"{item_field}.connectionPool"
                    ),
                    tp.outlier_detection(
                        p, entry.get("outlierDetection"), f"{item_field}.outlierDetection"
                    ),
                )
            )
    return TrafficPolicy(
        tls,
        tuple(levels),
        tp.load_balancer(p, m.get("loadBalancer"), f"{field}.loadBalancer"),
        tp.connection_pool(p, m.get("connectionPool"), f"{field}.connectionPool"),
        tp.outlier_detection(p, m.get("outlierDetection"), f"{field}.outlierDetection"),
    )


def _client_tls(p: v.Problems, raw: object, field: str, warnings: list[str]) -> ClientTls | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    mode = v.choice(p, m.get("mode"), f"{field}.mode", ClientTlsMode, ClientTlsMode.DISABLE)
    warnings.extend(_ignored(m, _IGNORED_TLS_FIELDS, field))
    files = [
        v.string(p, m.get(name), f"{field}.{name}") or ""
        for name in ("caCertificates", "clientCertificate", "privateKey")
    ]
    if mode is ClientTlsMode.MUTUAL:
        for name, value in zip(("clientCertificate", "privateKey"), files[1:], strict=True):
            if not value:
                p.add(f"{field}.{name}", "is required for mode MUTUAL (a file path)")
    names = v.sequence(p, m.get("subjectAltNames"), f"{field}.subjectAltNames")
    sans = tuple(
        s
        for i, item in enumerate(names)
        if (s := v.string(p, item, f"{field}.subjectAltNames[{i}]", required=True))
    )
    sni = v.string(p, m.get("sni"), f"{field}.sni") or ""
    return ClientTls(mode, sans, sni, *files)
