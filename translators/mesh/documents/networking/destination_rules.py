"""Read a DestinationRule (``networking.istio.io``), as Istio's ``ValidateDestinationRule``.

Invariants (client TLS: Istio's ``agent.ValidateTLS``):

1. A reader records every problem in ``Problems`` and returns an object
   anyway; ``parse_object`` drops it if any error was recorded.
2. A ``trafficPolicy`` (of the rule or a subset) and each
   ``portLevelSettings`` entry set at least one field (besides ``port``); a
   null field or an empty list does not count (``traffic_policy.is_empty``).
3. Client TLS SIMPLE or MUTUAL: ``credentialName`` names a Secret holding
   every file, so it comes with none of ``clientCertificate``,
   ``privateKey``, ``caCertificates``, ``caCrl``; without it, MUTUAL needs
   ``clientCertificate`` and ``privateKey``. ``insecureSkipVerify: true``
   excludes ``caCertificates`` and ``subjectAltNames`` (SIMPLE: and
   ``credentialName``), since nothing is verified.
4. A field pyistiod validates but does not apply is accepted with a warning,
   never silently: ``exportTo``, ``workloadSelector`` (its labels checked as
   any selector's), ``tunnel``, ``proxyProtocol``, ``retryBudget`` and ``caCrl``.
   ``traffic_policy`` warns for the fields it reads. (``credentialName`` is
   applied: the Secret of the proxy's namespace is served over SDS.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import Meta
from translators.mesh.documents.networking import traffic_policy as tp
from translators.mesh.model.policies import (
    ClientTls,
    ClientTlsMode,
    DestinationRule,
    PortTrafficPolicy,
    TrafficPolicy,
)

_IGNORED_DR_FIELDS = ("exportTo", "workloadSelector")
_IGNORED_POLICY_FIELDS = ("tunnel", "proxyProtocol", "retryBudget")
_ORIGINATING = (ClientTlsMode.SIMPLE, ClientTlsMode.MUTUAL)


@dataclass(frozen=True, slots=True)
class DestinationRuleObject:
    """A parsed DestinationRule; ``rule.host`` is as written (resolved by the mesh builder)."""

    meta: Meta
    rule: DestinationRule


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
