"""Read PeerAuthentication (``security.istio.io``) and DestinationRule (``networking.istio.io``).

Invariants, following Istio's ``ValidatePeerAuthentication`` and
``ValidateDestinationRule`` (client TLS: ``agent.ValidateTLS``):

1. A reader records every problem in ``Problems`` and returns an object
   anyway; ``parse_object`` drops it if any error was recorded.
2. ``selector.matchLabels`` is the only workload selection; an empty one is
   no selector (with a warning, as Istio warns). Its labels follow
   ``fields.labels``, so a ``*`` in a key or value is refused.
   ``portLevelMtls``, when present, holds at least one port, needs a
   selector and is keyed by port number (a YAML integer or a numeric string).
3. A ``trafficPolicy`` (of the rule or a subset) and each
   ``portLevelSettings`` entry set at least one field (besides ``port``); a
   null field or an empty list does not count (``traffic_policy.is_empty``).
4. Client TLS SIMPLE or MUTUAL: ``credentialName`` names a Secret holding
   every file, so it comes with none of ``clientCertificate``,
   ``privateKey``, ``caCertificates``, ``caCrl``; without it, MUTUAL needs
   ``clientCertificate`` and ``privateKey``. ``insecureSkipVerify: true``
   excludes ``caCertificates`` and ``subjectAltNames`` (SIMPLE: and
   ``credentialName``), since nothing is verified.
5. A field pyistiod validates but does not apply is accepted with a warning,
   never silently: ``exportTo``, ``workloadSelector`` (its labels checked as
   in 2), ``tunnel``, ``proxyProtocol``, ``retryBudget``, ``caCrl``, and
   ``credentialName``, which the model carries but the cluster builder does
   not fetch yet. ``traffic_policy`` warns for the fields it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.networking import traffic_policy as tp
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
_IGNORED_POLICY_FIELDS = ("tunnel", "proxyProtocol", "retryBudget")
_ORIGINATING = (ClientTlsMode.SIMPLE, ClientTlsMode.MUTUAL)


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


def workload_selector(
    p: v.Problems, spec: Mapping[str, object], warnings: list[str] | None = None
) -> Labels:
    """``spec.selector.matchLabels`` (empty when absent: no selector; invariant 2).

    Given ``warnings``, a selector without labels is reported there, as Istio
    warns: it selects every workload of the namespace.
    """
    raw = spec.get("selector")
    selector = v.mapping(p, raw, "spec.selector") or {}
    labels = v.labels(p, selector.get("matchLabels"), "spec.selector.matchLabels")
    if warnings is not None and raw is not None and not selector.get("matchLabels"):
        warnings.append(
            "spec.selector has no matchLabels: the policy applies to every workload of "
            "the namespace, as without a selector"
        )
    return labels


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


def parse_destination_rule(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> DestinationRuleObject:
    """Read and validate a DestinationRule's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    host = v.string(p, spec.get("host"), "spec.host", required=True) or ""
    if host and host != "*" and not v.is_hostname(host, wildcard=True):
        p.add("spec.host", f"must be a DNS name, optionally starting with '*.', got {host!r}")
    selector = v.mapping(p, spec.get("workloadSelector"), "spec.workloadSelector") or {}
    v.labels(p, selector.get("matchLabels"), "spec.workloadSelector.matchLabels")
    warnings.extend(tp.ignored(spec, _IGNORED_DR_FIELDS, "spec"))
    policy = _traffic_policy(p, spec.get("trafficPolicy"), "spec.trafficPolicy", warnings)
    subsets = tp.subsets(p, spec.get("subsets"), warnings, _traffic_policy)
    rule = DestinationRule(meta.namespace, meta.name, host, policy, subsets)
    return DestinationRuleObject(meta, rule)


def _traffic_policy(p: v.Problems, raw: object, field: str, warnings: list[str]) -> TrafficPolicy:
    m = v.mapping(p, raw, field)
    if m is None:
        return TrafficPolicy()
    if tp.is_empty(m):
        p.add(
            field,
            "must set at least one of tls, loadBalancer, connectionPool, outlierDetection, "
            "portLevelSettings, tunnel, proxyProtocol: Istio refuses an empty trafficPolicy",
        )
    warnings.extend(tp.ignored(m, _IGNORED_POLICY_FIELDS, field))
    levels: list[PortTrafficPolicy] = []
    settings = f"{field}.portLevelSettings"
    for i, item in enumerate(v.sequence(p, m.get("portLevelSettings"), settings)):
        level = _port_traffic_policy(p, item, f"{settings}[{i}]", warnings)
        if level is None:
            continue
        if any(lv.port == level.port for lv in levels):
            p.add(f"{settings}[{i}].port.number", f"duplicates port {level.port} of an earlier one")
        levels.append(level)
    return TrafficPolicy(
        _client_tls(p, m.get("tls"), f"{field}.tls", warnings),
        tuple(levels),
        tp.load_balancer(p, m.get("loadBalancer"), f"{field}.loadBalancer", warnings),
        tp.connection_pool(p, m.get("connectionPool"), f"{field}.connectionPool", warnings),
        tp.outlier_detection(p, m.get("outlierDetection"), f"{field}.outlierDetection", warnings),
    )


def _port_traffic_policy(
    p: v.Problems, raw: object, field: str, warnings: list[str]
) -> PortTrafficPolicy | None:
    """One ``portLevelSettings`` entry (invariant 3); ``None`` without a valid port."""
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    if tp.is_empty(m, besides=("port",)):
        p.add(
            field,
            "must set at least one of tls, loadBalancer, connectionPool, outlierDetection "
            "besides port: Istio refuses a port traffic policy with nothing to apply",
        )
    port_sel = v.mapping(p, m.get("port"), f"{field}.port") or {}
    number = v.port(p, port_sel.get("number"), f"{field}.port.number")
    tls = _client_tls(p, m.get("tls"), f"{field}.tls", warnings)
    balancer = tp.load_balancer(p, m.get("loadBalancer"), f"{field}.loadBalancer", warnings)
    pool = tp.connection_pool(p, m.get("connectionPool"), f"{field}.connectionPool", warnings)
    outlier = tp.outlier_detection(
        p, m.get("outlierDetection"), f"{field}.outlierDetection", warnings
    )
    if number is None:
        return None
    return PortTrafficPolicy(number, tls, balancer, pool, outlier)


def _client_tls(p: v.Problems, raw: object, field: str, warnings: list[str]) -> ClientTls | None:
    m = v.mapping(p, raw, field)
    if m is None:
        return None
    mode = v.choice(p, m.get("mode"), f"{field}.mode", ClientTlsMode, ClientTlsMode.DISABLE)
    ca, cert, key, crl, credential, sni = (
        v.string(p, m.get(name), f"{field}.{name}") or ""
        for name in (
            "caCertificates", "clientCertificate", "privateKey", "caCrl", "credentialName", "sni"
        )
    )  # fmt: skip
    names = v.sequence(p, m.get("subjectAltNames"), f"{field}.subjectAltNames")
    sans = tuple(
        s
        for i, item in enumerate(names)
        if (s := v.string(p, item, f"{field}.subjectAltNames[{i}]", required=True))
    )
    skip = v.boolean(p, m.get("insecureSkipVerify"), f"{field}.insecureSkipVerify", False)
    tls = ClientTls(mode, sans, sni, ca, cert, key, credential, skip)
    _check_client_tls(p, tls, crl, field)
    warnings.extend(tp.ignored(m, ("caCrl",), field))
    if credential:
        warnings.append(
            f"{field}.credentialName is not supported yet: pyistiod does not send Secret "
            f"{credential!r} to Envoy, so this {mode.value} TLS gets no certificate or CA from it"
        )
    return tls


def _check_client_tls(p: v.Problems, tls: ClientTls, crl: str, field: str) -> None:
    """Invariant 4: what ``credentialName`` and ``insecureSkipVerify`` exclude or require."""
    if tls.insecure_skip_verify and tls.mode in _ORIGINATING:
        verifying = [
            ("caCertificates", tls.ca_certificates),
            ("subjectAltNames", tls.subject_alt_names),
        ]
        if tls.mode is ClientTlsMode.SIMPLE:
            verifying.append(("credentialName", tls.credential_name))
        if given := [name for name, value in verifying if value]:
            p.add(
                f"{field}.insecureSkipVerify",
                f"cannot be true with {', '.join(given)}: they verify the server, which "
                "insecureSkipVerify turns off",
            )
    files = {
        "clientCertificate": tls.client_certificate,
        "privateKey": tls.private_key,
        "caCertificates": tls.ca_certificates,
        "caCrl": crl,
    }
    if tls.mode in _ORIGINATING and tls.credential_name:
        if given := [name for name, value in files.items() if value]:
            p.add(
                f"{field}.credentialName",
                f"cannot be set with {', '.join(given)}: the Secret it names holds the "
                "certificate, key and CA",
            )
    elif tls.mode is ClientTlsMode.MUTUAL:
        for name in ("clientCertificate", "privateKey"):
            if not files[name]:
                p.add(f"{field}.{name}", "is required for mode MUTUAL without credentialName")
