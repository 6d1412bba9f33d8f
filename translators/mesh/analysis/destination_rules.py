"""DestinationRule analyzers: hosts that name nothing, subsets that select nothing, TLS unverified.

As ``istioctl analyze``:

1. IST0174: a host no Service or ServiceEntry visible from the rule's
   namespace is (``hosts.HostIndex``).
2. IST0173: a subset of a found host whose labels (with the ServiceEntry's
   ``workloadSelector``, if any) select no workload anywhere. Checked only
   when the config holds workloads at all (Pods or WorkloadEntries): a
   directory of routing rules alone would fire it for every subset.
   pyistiod counts WorkloadEntries as well as Pods, since both serve.
3. IST0128 / IST0129: TLS mode SIMPLE or MUTUAL without ``caCertificates``
   at the rule's level or a port's: the server's certificate is not verified.
"""

from __future__ import annotations

from collections.abc import Iterator

from translators.mesh.analysis import messages as msg
from translators.mesh.analysis.hosts import HostIndex
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import ClientTls, ClientTlsMode, DestinationRule
from translators.mesh.model.services import ObjectKey

_UNVERIFIED = (ClientTlsMode.SIMPLE, ClientTlsMode.MUTUAL)


def analyze_destination_rules(model: MeshModel, index: HostIndex) -> Iterator[msg.Message]:
    """Every message of invariants 1-3 about the model's DestinationRules."""
    workloads = list(model.workloads.values())
    for rule in model.policies.destination_rules:
        key = ObjectKey("DestinationRule", rule.namespace, rule.name)
        service = index.find(rule.namespace, (), rule.host)
        if service is None:
            yield msg.UNKNOWN_DESTINATION_RULE_HOST(key, rule.host, field="spec.host")
        elif workloads:
            for i, subset in enumerate(rule.subsets):
                extra = frozenset() if service.is_kubernetes else service.selector
                selector = subset.labels | extra
                if not any(selector <= w.labels for w in workloads):
                    yield msg.DESTINATION_RULE_SUBSET_NOT_SELECT_PODS(
                        key, subset.name, field=f"spec.subsets[{i}]"
                    )
        yield from _tls(rule, key)


def _tls(rule: DestinationRule, key: ObjectKey) -> Iterator[msg.Message]:
    name = f"{rule.namespace}/{rule.name}"
    policy = rule.traffic_policy
    if _unverified(policy.tls):
        assert policy.tls is not None
        yield msg.NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL(
            key, name, rule.namespace, policy.tls.mode.value, rule.host,
            field="spec.trafficPolicy.tls",
        )  # fmt: skip
    for i, port in enumerate(policy.port_level):
        if _unverified(port.tls):
            assert port.tls is not None
            yield msg.NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL(
                key, name, rule.namespace, port.tls.mode.value, rule.host, f"number:{port.port}",
                field=f"spec.trafficPolicy.portLevelSettings[{i}].tls",
            )  # fmt: skip


def _unverified(tls: ClientTls | None) -> bool:
    return tls is not None and tls.mode in _UNVERIFIED and not tls.ca_certificates
