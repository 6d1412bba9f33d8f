"""What a DestinationRule may hold, as Istio's ``ValidateDestinationRule`` decides: a rule a row.

Each row is a ``spec`` in YAML (``host: reviews`` unless it sets a host), read as
a whole document by ``parse_object`` (so unknown fields are refused too), and
Istio's verdict: ``Accept`` (with a fragment of a warning pyistiod adds, if
any) or ``Refuse`` at a field path with a fragment of the reason. A comment
names Istio's function and message. Rows named ``dr_...`` are the probes of
the validation research (pyistiod against Istio), so a reader sees here every
rule found there.
"""

from __future__ import annotations

import pytest
import yaml
from verdicts import Accept, Refuse, check, document

from translators.mesh.documents.kinds import ParseResult
from translators.mesh.documents.networking.destination_rules import DestinationRuleObject
from translators.mesh.model.policies import ClientTls, ClientTlsMode
from translators.mesh.model.traffic import ConnectionPool

TP = "spec.trafficPolicy"
TLS = f"{TP}.tls"
POOL = f"{TP}.connectionPool"
LB = f"{TP}.loadBalancer"
LOCALITY = f"{LB}.localityLbSetting"
HASH = f"{LB}.consistentHash"

CASES = [
    # -- probes of the validation research -------------------------------------------------
    # validateConnectionPool: "connection pool must have at least one field"
    ("dr_empty_connection_pool", "trafficPolicy: {connectionPool: {}}",
     Refuse(POOL, "must set tcp or http")),
    # validateTrafficPolicy: "traffic policy must have at least one field"
    ("dr_empty_traffic_policy", "trafficPolicy: {}", Refuse(TP, "must set at least one of")),
    # agent.ValidateWildcardDomain: labels may use A-Z
    ("dr_host_short_uppercase", "host: Reviews\ntrafficPolicy: {tls: {mode: ISTIO_MUTUAL}}",
     Accept()),
    # validateConnectionPool -> agent.ValidateDuration: "duration must be greater than 1ms"
    ("dr_http_idle_timeout_zero", "trafficPolicy: {connectionPool: {http: {idleTimeout: 0s}}}",
     Refuse(f"{POOL}.http.idleTimeout", "at least 1ms")),
    # agent.ValidateTLS (MUTUAL): "cannot specify CaCertificates or SubjectAltNames when ..."
    ("dr_insecure_skip_mutual_with_ca",
     "trafficPolicy: {tls: {mode: MUTUAL, insecureSkipVerify: true, clientCertificate: /c.pem,"
     " privateKey: /k.pem, caCertificates: /ca.pem}}",
     Refuse(f"{TLS}.insecureSkipVerify", "caCertificates")),
    # agent.ValidateTLS (SIMPLE): "cannot specify CaCertificates or CredentialName or ..."
    ("dr_insecure_skip_with_ca",
     "trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca.pem}}",
     Refuse(f"{TLS}.insecureSkipVerify", "caCertificates")),
    ("dr_insecure_skip_with_sans",
     "trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a]}}",
     Refuse(f"{TLS}.insecureSkipVerify", "subjectAltNames")),
    # validateOutlierDetection: "... local origin failures is specified, but split ... false"
    ("dr_local_origin_without_split",
     "trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 5}}",
     Refuse(f"{TP}.outlierDetection.consecutiveLocalOriginFailures",
            "splitExternalLocalOriginErrors: true")),
    # agent.ValidateLocalityLbSetting: "total locality weight 80 != 100"
    ("dr_locality_weights_not_100",
     "trafficPolicy:\n  outlierDetection: {consecutive5xxErrors: 5}\n  loadBalancer:\n"
     "    localityLbSetting: {distribute: [{from: us-east/*, to: {'us-east/*': 80}}]}",
     Refuse(f"{LOCALITY}.distribute[0].to", "must sum to 100, got 80")),
    # validateLoadBalancer: "tableSize must be a prime number for maglev"
    ("dr_maglev_not_prime",
     "trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user,"
     " maglev: {tableSize: 1000}}}}",
     Refuse(f"{HASH}.maglev.tableSize", "must be a prime number")),
    # validateConnectionPool refuses negatives only; 0 means unset
    ("dr_max_connections_zero",
     "trafficPolicy: {connectionPool: {tcp: {maxConnections: 0},"
     " http: {http1MaxPendingRequests: 0, http2MaxRequests: 0}}}",
     Accept()),
    # agent.ValidateTLS: SIMPLE/MUTUAL with credentialName need no files
    ("dr_mutual_credential_name", "trafficPolicy: {tls: {mode: MUTUAL, credentialName: cred}}",
     Accept()),
    # validatePortTrafficPolicies: "port traffic policy must have at least one field"
    ("dr_port_level_empty", "trafficPolicy: {portLevelSettings: [{port: {number: 80}}]}",
     Refuse(f"{TP}.portLevelSettings[0]", "besides port")),
    # agent.ValidateTLS: "cannot specify client certificates or CA certificate or CA CRL If ..."
    ("dr_simple_credential_and_ca",
     "trafficPolicy: {tls: {mode: SIMPLE, credentialName: c, caCertificates: /ca.pem}}",
     Refuse(f"{TLS}.credentialName", "cannot be set with caCertificates")),
    # validateSubset -> labels.Instance.Validate: 'invalid tag value: "*"'
    ("dr_subset_label_value_star", "subsets: [{name: v1, labels: {version: '*'}}]",
     Refuse("spec.subsets[0].labels.version", "wildcard")),
    # validateSubset: labels.Instance(nil).Validate() is nil
    ("dr_subset_no_labels", "subsets: [{name: v1}]", Accept()),
    # validateSubsetName: labels.IsDNS1123Label allows A-Z
    ("dr_subset_uppercase_name", "subsets: [{name: V1, labels: {version: v1}}]", Accept()),
    # validateWorkloadSelector: 'wildcard is not supported in selector: "app=*"'
    ("dr_workload_selector_wildcard",
     "workloadSelector: {matchLabels: {app: '*'}}\ntrafficPolicy: {tls: {mode: ISTIO_MUTUAL}}",
     Refuse("spec.workloadSelector.matchLabels.app", "wildcard is not supported in selector")),
    # -- client TLS (agent.ValidateTLS) ----------------------------------------------------
    ("simple_credential_name", "trafficPolicy: {tls: {mode: SIMPLE, credentialName: cred}}",
     Accept()),
    ("mutual_files", "trafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c.pem,"
     " privateKey: /k.pem, caCertificates: /ca.pem, subjectAltNames: [a.example.com]}}",
     Accept()),
    # "client certificate required for mutual tls"
    ("mutual_without_files", "trafficPolicy: {tls: {mode: MUTUAL, privateKey: /k.pem}}",
     Refuse(f"{TLS}.clientCertificate", "required for mode MUTUAL without credentialName")),
    ("mutual_credential_and_cert",
     "trafficPolicy: {tls: {mode: MUTUAL, credentialName: c, clientCertificate: /c.pem}}",
     Refuse(f"{TLS}.credentialName", "clientCertificate")),
    ("simple_credential_and_crl",
     "trafficPolicy: {tls: {mode: SIMPLE, credentialName: c, caCrl: /crl.pem}}",
     Refuse(f"{TLS}.credentialName", "caCrl")),
    # only SIMPLE and MUTUAL are checked against credentialName
    ("istio_mutual_credential_and_ca",
     "trafficPolicy: {tls: {mode: ISTIO_MUTUAL, credentialName: c, caCertificates: /ca.pem}}",
     Accept()),
    ("simple_insecure_skip_verify",
     "trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}", Accept()),
    ("simple_insecure_skip_with_credential",
     "trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, credentialName: c}}",
     Refuse(f"{TLS}.insecureSkipVerify", "credentialName")),
    # MUTUAL: the Secret may hold only the client certificate, so Istio lets it pass
    ("mutual_insecure_skip_with_credential",
     "trafficPolicy: {tls: {mode: MUTUAL, insecureSkipVerify: true, credentialName: c}}",
     Accept()),
    ("simple_verify_false_with_ca",
     "trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: false, caCertificates: /ca.pem}}",
     Accept()),
    ("simple_ca_crl", "trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /ca, caCrl: /crl}}",
     Accept("caCrl is not supported yet")),
    ("tls_mode_unknown", "trafficPolicy: {tls: {mode: TLS}}",
     Refuse(f"{TLS}.mode", "must be one of DISABLE")),
    # -- shape of trafficPolicy (validateTrafficPolicy, validatePortTrafficPolicies) --------
    ("empty_port_level_list", "trafficPolicy: {portLevelSettings: []}",
     Refuse(TP, "must set at least one of")),
    ("empty_subset_policy", "subsets: [{name: v1, labels: {v: '1'}, trafficPolicy: {}}]",
     Refuse("spec.subsets[0].trafficPolicy", "must set at least one of")),
    ("tunnel_only", "trafficPolicy: {tunnel: {protocol: CONNECT, targetHost: a.example.com,"
     " targetPort: 443}}", Accept("tunnel is not supported yet")),
    ("port_level_tls", "trafficPolicy: {portLevelSettings: [{port: {number: 80},"
     " tls: {mode: DISABLE}}]}", Accept()),
    ("port_level_duplicate",
     "trafficPolicy: {portLevelSettings: [{port: {number: 80}, tls: {mode: DISABLE}},"
     " {port: {number: 80}, tls: {mode: DISABLE}}]}",
     Refuse(f"{TP}.portLevelSettings[1].port.number", "duplicates port 80")),
    ("unknown_field_only", "trafficPolicy: {loadbalancer: {simple: RANDOM}}",
     Refuse(f"{TP}.loadbalancer", 'did you mean "loadBalancer"')),
    # -- connectionPool (validateConnectionPool) -------------------------------------------
    ("pool_tcp_empty", "trafficPolicy: {connectionPool: {tcp: {}}}", Accept()),
    ("pool_negative", "trafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}",
     Refuse(f"{POOL}.tcp.maxConnections", "0-2147483647")),
    # tcp.idleTimeout 0s disables the timeout: Istio skips ValidateDuration under 1ms
    ("tcp_idle_timeout_zero", "trafficPolicy: {connectionPool: {tcp: {idleTimeout: 0s}}}",
     Accept("idleTimeout is not supported yet")),
    ("tcp_idle_timeout_sub_ms", "trafficPolicy: {connectionPool: {tcp: {idleTimeout: 0.5ms}}}",
     Accept()),
    # "only durations to ms precision are supported"
    ("tcp_idle_timeout_not_ms", "trafficPolicy: {connectionPool: {tcp: {idleTimeout: 1.5ms}}}",
     Refuse(f"{POOL}.tcp.idleTimeout", "whole number of milliseconds")),
    ("tcp_max_connection_duration_zero",
     "trafficPolicy: {connectionPool: {tcp: {maxConnectionDuration: 0s}}}",
     Refuse(f"{POOL}.tcp.maxConnectionDuration", "at least 1ms")),
    # "use client protocol must not be true when H2UpgradePolicy is UPGRADE"
    ("upgrade_with_client_protocol",
     "trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}",
     Refuse(f"{POOL}.http.useClientProtocol", "UPGRADE")),
    # -- loadBalancer (validateLoadBalancer) -----------------------------------------------
    ("maglev_prime", "trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true,"
     " maglev: {tableSize: 65537}}}}", Accept()),
    # "tableSize must be set for maglev"
    ("maglev_no_table_size", "trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true,"
     " maglev: {}}}}", Refuse(f"{HASH}.maglev.tableSize", "required for maglev")),
    # "tableSize must be less than 5000011 for maglev"
    ("maglev_too_large", "trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true,"
     " maglev: {tableSize: 5000011}}}}", Refuse(f"{HASH}.maglev.tableSize", "below 5000011")),
    # "only one of MinimumRingSize or Maglev/Ringhash can be specified"
    ("ring_size_twice", "trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true,"
     " minimumRingSize: 1024, ringHash: {minimumRingSize: 1024}}}}",
     Refuse(f"{HASH}.minimumRingSize", "may not come with ringHash or maglev")),
    ("warmup_without_duration", "trafficPolicy: {loadBalancer: {warmup: {aggression: 2}}}",
     Refuse(f"{LB}.warmup.duration", "required")),
    ("warmup_low_aggression", "trafficPolicy: {loadBalancer: {warmup: {duration: 10s,"
     " aggression: 0.5}}}", Refuse(f"{LB}.warmup.aggression", "at least 1")),
    # -- localityLbSetting (agent.ValidateLocalityLbSetting) -------------------------------
    ("locality_distribute",
     "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: us-east/*,"
     " to: {'us-east/*': 80, 'us-west/*': 20}}]}}}",
     Accept("localityLbSetting is not supported yet")),
    # "can not simultaneously specify 'distribute' and 'failover'"
    ("locality_distribute_and_failover",
     "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {a: 100}}],"
     " failover: [{from: a, to: b}]}}}",
     Refuse(LOCALITY, "both distribute and failover")),
    # "locality weight must be in range [1, 100]"
    ("locality_weight_zero",
     "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: a,"
     " to: {a: 100, b: 0}}]}}}",
     Refuse(f"{LOCALITY}.distribute[0].to.b", "1-100")),
    # "locality ... overlap with previous specified ones"
    ("locality_overlap",
     "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: a,"
     " to: {'us/*': 50, 'us/z1': 50}}]}}}",
     Refuse(f"{LOCALITY}.distribute[0].to", "overlaps an earlier one")),
    ("locality_star_inside",
     "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: 'us/*/z',"
     " to: {us: 100}}]}}}",
     Refuse(f"{LOCALITY}.distribute", "one '*', at its end only")),
    # "locality lb failover settings must specify different regions"
    ("failover_same_region",
     "trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us, to: us}]}}}",
     Refuse(f"{LOCALITY}.failover[0]", "different regions")),
    # "locality lb failover only specify region"
    ("failover_zone", "trafficPolicy: {loadBalancer: {localityLbSetting: {failover:"
     " [{from: us/z1, to: eu}]}}}", Refuse(f"{LOCALITY}.failover[0]", "regions only")),
    ("failover_with_topology_priority",
     "trafficPolicy: {loadBalancer: {localityLbSetting: {failover: [{from: us, to: eu}],"
     " failoverPriority: [topology.kubernetes.io/zone]}}}",
     Refuse(f"{LOCALITY}.failoverPriority", "topology label")),
    # -- outlierDetection (validateOutlierDetection) ---------------------------------------
    ("local_origin_with_split",
     "trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 5,"
     " splitExternalLocalOriginErrors: true}}",
     Accept("consecutiveLocalOriginFailures is not supported yet")),
    ("outlier_interval_zero", "trafficPolicy: {outlierDetection: {interval: 0s}}",
     Refuse(f"{TP}.outlierDetection.interval", "at least 1ms")),
    # -- subsets (validateSubset, validateSubsetName) --------------------------------------
    ("subset_bad_name", "subsets: [{name: v_1, labels: {a: b}}]",
     Refuse("spec.subsets[0].name", "DNS-1123 label")),
    ("subset_duplicate", "subsets: [{name: v1}, {name: v1}]",
     Refuse("spec.subsets[1].name", "duplicates subset 'v1'")),
    ("subset_label_value_bad", "subsets: [{name: v1, labels: {version: -v1}}]",
     Refuse("spec.subsets[0].labels.version", "label value")),
    # -- workloadSelector (validateWorkloadSelector), checked though pyistiod ignores it ---
    ("workload_selector", "workloadSelector: {matchLabels: {app: ratings}}",
     Accept("workloadSelector is not supported yet")),
    ("workload_selector_wildcard_key", "workloadSelector: {matchLabels: {'app*': x}}",
     Refuse("spec.workloadSelector.matchLabels.app*", "label key")),
]  # fmt: skip


SPECS = {name: spec for name, spec, _ in CASES}


def parse(spec: str) -> ParseResult:
    """``spec`` (YAML) as a whole DestinationRule document."""
    return document(
        "networking.istio.io/v1",
        "DestinationRule",
        {"host": "reviews", **(yaml.safe_load(spec) or {})},
    )


@pytest.mark.parametrize(("spec", "verdict"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_destination_rule_verdict(spec: str, verdict: Accept | Refuse) -> None:
    check(parse(spec), verdict, DestinationRuleObject, quiet=False)


def test_accepted_settings_reach_the_model() -> None:
    """credentialName and insecureSkipVerify are carried; a 0 count is "unset" (None)."""
    rule = parse("trafficPolicy: {tls: {mode: MUTUAL, credentialName: cred, sni: a.example.com}}")
    assert isinstance(rule.obj, DestinationRuleObject)
    tls = rule.obj.rule.traffic_policy.tls
    assert tls == ClientTls(ClientTlsMode.MUTUAL, sni="a.example.com", credential_name="cred")
    rule = parse("trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}")
    assert isinstance(rule.obj, DestinationRuleObject)
    assert rule.obj.rule.traffic_policy.tls == ClientTls(
        ClientTlsMode.SIMPLE, insecure_skip_verify=True
    )
    rule = parse(SPECS["dr_max_connections_zero"])
    assert isinstance(rule.obj, DestinationRuleObject)
    assert rule.obj.rule.traffic_policy.connection_pool == ConnectionPool()
