"""Istio's ServiceEntry and WorkloadEntry rules, one table each (``ValidateServiceEntry``,
``ValidateWorkloadEntry``; DYNAMIC_DNS from istio/api's ``service_entry.proto``).

Each row is a short ``spec``, then either the field pyistiod refuses and a fragment of
its reason, or nothing (accepted) and, where Istio warns, a fragment of the warning.
Rows named ``se_*``/``we_*`` are the probes of the validation research, whose
verdicts came from Istio; ``istio`` says what Istio does. Whole documents go through
``parse_object``, so unknown-field checks apply too. Cross-object rules (two
ServiceEntries or a Service sharing a host) are ``translators.mesh.checks``' business:
here each object is read alone.
"""

from __future__ import annotations

import pytest
import yaml
from verdicts import Case, check, document

from translators.mesh.documents.kinds import ParseResult
from translators.mesh.documents.networking.service_entries import (
    ServiceEntryObject,
    WorkloadEntryObject,
)
from translators.mesh.model.services import Resolution

HTTP = "ports: [{number: 80, name: http, protocol: HTTP}]"
TCP = "ports: [{number: 5432, name: tcp, protocol: TCP}]"

SERVICE_ENTRY = [
    # -- probes ---------------------------------------------------------------------------
    Case(
        "se_cidr_with_dns",
        f"{{hosts: [a.example.com], addresses: [10.0.0.0/24], resolution: DNS, {HTTP}}}",
        "spec.addresses[0]",
        "NONE or STATIC",
        "CIDR addresses are allowed only for NONE/STATIC resolution types",
    ),
    Case(
        "se_dns_rr_two_endpoints",
        "{hosts: [a.example.com], resolution: DNS_ROUND_ROBIN,"
        f" endpoints: [{{address: x.example.com}}, {{address: y.example.com}}], {HTTP}}}",
        "spec.endpoints",
        "DNS_ROUND_ROBIN takes one endpoint at most, got 2",
        "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
    ),
    Case(
        "se_duplicate_host_in_one",
        f"{{hosts: [a.example.com, a.example.com], resolution: DNS, {HTTP}}}",
        istio="accepted: no duplicate-host check (pyistiod keeps the host once)",
    ),
    Case(
        "se_dynamic_dns",
        f"{{hosts: ['*.example.com'], location: MESH_EXTERNAL, resolution: DYNAMIC_DNS, {HTTP}}}",
        reason="DYNAMIC_DNS is not supported yet",
        istio="accepted (istio/api: DYNAMIC_DNS = 4); pyistiod warns it is not served",
    ),
    Case(
        "se_empty_workload_selector",
        "{hosts: [a.example.com], location: MESH_INTERNAL, resolution: STATIC,"
        f" workloadSelector: {{}}, {HTTP}}}",
        reason="workloadSelector has no labels",
        istio="warns: workload selector specified without labels",
    ),
    Case(
        "se_endpoint_label_star",
        "{hosts: [a.example.com], resolution: STATIC,"
        f" endpoints: [{{address: 1.2.3.4, labels: {{version: '*'}}}}], {HTTP}}}",
        "spec.endpoints[0].labels.version",
        "wildcard",
        'invalid tag value: "*"',
    ),
    Case(
        "se_multi_host_tcp",
        f"{{hosts: [a.example.com, b.example.com], resolution: DNS, {TCP}}}",
        "spec.hosts",
        "port 'tcp' (5432, protocol TCP) is not",
        "multiple hosts provided with non-HTTP, non-TLS ports",
    ),
    Case("se_no_ports", "{hosts: [a.example.com], resolution: DNS}", istio="ports are optional"),
    Case(
        "se_none_with_endpoints",
        f"{{hosts: [a.example.com], resolution: NONE, endpoints: [{{address: 1.2.3.4}}], {HTTP}}}",
        "spec.endpoints",
        "must be empty for resolution NONE",
        "no endpoints should be provided for resolution type none",
    ),
    Case(
        "se_partial_wildcard",
        f"{{hosts: ['*x.example.com'], resolution: NONE, {HTTP}}}",
        reason="partial wildcard '*x.example.com' not allowed",
        istio="warns: partial wildcard not allowed (ValidatePartialWildCard as a warning)",
    ),
    Case(
        "se_same_host_as_k8s_service",
        "{hosts: [reviews.default.svc.cluster.local], resolution: STATIC,"
        f" endpoints: [{{address: 1.2.3.4}}], {HTTP}}}",
        istio="accepted: no validation across a Service and a ServiceEntry",
    ),
    Case(
        "se_selector_wildcard",
        "{hosts: [a.example.com], location: MESH_INTERNAL, resolution: STATIC,"
        f" workloadSelector: {{labels: {{app: '*'}}}}, {HTTP}}}",
        "spec.workloadSelector.labels.app",
        "wildcard is not supported in selector",
        'wildcard is not supported in selector: "app=*"',
    ),
    Case(
        "se_two_entries_same_host",
        f"{{hosts: [a.example.com], resolution: DNS, {HTTP}}}",
        istio="accepted: validation is per object",
    ),
    # -- hosts ----------------------------------------------------------------------------
    Case("star_host", f"{{hosts: ['*'], {HTTP}}}", "spec.hosts[0]", "'*' matches all"),
    Case("bad_label", f"{{hosts: [b_d.example.com], {HTTP}}}", "spec.hosts[0]", "'b_d'"),
    Case("ip_as_host", f"{{hosts: [1.2.3.4], {HTTP}}}", "spec.hosts[0]", "all-numeric"),
    Case("trailing_dot", f"{{hosts: [a.example.com.], resolution: DNS, {HTTP}}}"),
    Case("upper_case_host", f"{{hosts: [A.Example.com], resolution: DNS, {HTTP}}}"),
    Case(
        "dns_wildcard_without_endpoints",
        f"{{hosts: ['*.example.com'], resolution: DNS, {HTTP}}}",
        "spec.hosts[0]",
        "cannot be resolved",
        "hosts must be FQDN if no endpoints are provided for resolution mode DNS",
    ),
    Case(
        "dns_wildcard_with_endpoints",
        "{hosts: ['*.example.com'], resolution: DNS,"
        f" endpoints: [{{address: gw.example.com}}], {HTTP}}}",
    ),
    # -- resolutions ----------------------------------------------------------------------
    Case(
        "dynamic_dns_concrete_host",
        f"{{hosts: [a.example.com], resolution: DYNAMIC_DNS, {HTTP}}}",
        "spec.hosts[0]",
        "DYNAMIC_DNS needs wildcard hosts",
        "istio/api: DYNAMIC_DNS must be used with wildcard hosts",
    ),
    Case(
        "dynamic_dns_mesh_internal",
        f"{{hosts: ['*.example.com'], location: MESH_INTERNAL, resolution: DYNAMIC_DNS, {HTTP}}}",
        "spec.location",
        "only supported for MESH_EXTERNAL",
        "istio/api: only supported for MESH_EXTERNAL ServiceEntries",
    ),
    Case(
        "dynamic_dns_endpoints_ignored",
        "{hosts: ['*.example.com'], resolution: DYNAMIC_DNS,"
        f" endpoints: [{{address: gw.example.com}}], {HTTP}}}",
        reason="spec.endpoints and workloadSelector are ignored",
        istio="istio/api: specified endpoints will be ignored",
    ),
    Case("unknown_resolution", "{hosts: [a.example.com], resolution: MAGIC}", "spec.resolution"),
    Case(
        "static_fqdn_endpoint",
        "{hosts: [a.example.com], resolution: STATIC, endpoints: [{address: db.example.com}]}",
        "spec.endpoints[0].address",
        "must be an IP address for resolution STATIC",
    ),
    Case(
        "static_unix_endpoint",
        "{hosts: [a.example.com], resolution: STATIC,"
        f" endpoints: [{{address: 'unix:///run/a.sock'}}], {HTTP}}}",
        "spec.endpoints[0].address",
        "not supported yet",
        "accepted (ValidateUnixAddress); pyistiod's EDS carries IPs only",
    ),
    Case(
        "static_endpoint_network_only",
        f"{{hosts: [a.example.com], resolution: STATIC, endpoints: [{{network: n2}}], {HTTP}}}",
        reason="this endpoint is dropped",
        istio='warns: address is unset with network "n2"',
    ),
    Case(
        "dns_bad_endpoint",
        f"{{hosts: [a.example.com], resolution: DNS, endpoints: [{{address: 'b@d'}}], {HTTP}}}",
        "spec.endpoints[0].address",
        "must be an IP address or DNS name",
    ),
    Case(
        "cidr_with_static",
        f"{{hosts: [a.example.com], addresses: [10.0.0.0/24], resolution: STATIC, {HTTP}}}",
    ),
    # -- several hosts --------------------------------------------------------------------
    Case("multi_host_http", f"{{hosts: [a.example.com, b.example.com], resolution: DNS, {HTTP}}}"),
    Case("multi_host_tcp_none", f"{{hosts: [a.example.com, b.example.com], {TCP}}}"),
    Case(
        "multi_host_unset_protocol",
        "{hosts: [a.example.com, b.example.com], resolution: DNS,"
        " ports: [{number: 80, name: http}]}",
        "spec.hosts",
        "no protocol",
        "refused: protocol.Parse('') is neither HTTP nor TLS (the port name is not read)",
    ),
    # -- ports and selector ---------------------------------------------------------------
    Case(
        "upper_case_port_name",
        "{hosts: [a.example.com], resolution: DNS, ports: [{number: 80, name: Http}]}",
        istio="accepted: ValidatePortName is labels.IsDNS1123Label (upper case allowed)",
    ),
    Case(
        "port_name_underscore",
        "{hosts: [a.example.com], ports: [{number: 80, name: http_1}]}",
        "spec.ports[0].name",
        "DNS-1123 label",
    ),
    Case(
        "selector_with_endpoints",
        "{hosts: [a.example.com], resolution: STATIC, endpoints: [{address: 1.2.3.4}],"
        " workloadSelector: {labels: {app: a}}}",
        "spec.workloadSelector",
        "cannot be set together with spec.endpoints",
    ),
    Case(
        "selector_with_none",
        "{hosts: [a.example.com], workloadSelector: {labels: {app: a}}}",
        reason="should not be set when resolution is NONE",
        istio="warns: workloadSelector should not be set when resolution mode is NONE",
    ),
]

WORKLOAD_ENTRY = [
    Case(
        "we_bad_port_name",
        "{address: 1.2.3.4, ports: {Http_1: 8080}}",
        "spec.ports.Http_1",
        "DNS-1123 label",
        "invalid port name: Http_1",
    ),
    Case(
        "we_fqdn_address",
        "{address: vm1.example.com, labels: {app: vm}}",
        "spec.address",
        "DNS names are valid in Istio but not supported by pyistiod yet",
        "accepted (allowFQDNAddresses); a documented gap in pyistiod",
    ),
    Case(
        "we_label_value_star",
        "{address: 1.2.3.4, labels: {app: '*'}}",
        "spec.labels.app",
        "wildcard",
        'invalid tag value: "*"',
    ),
    Case(
        "we_network_without_address",
        "{network: n1, labels: {app: vm}}",
        reason="gives no endpoint",
        istio='warns: address is unset with network "n1"',
    ),
    Case(
        "we_unix_address",
        "{address: 'unix:///var/run/app.sock', labels: {app: vm}}",
        "spec.address",
        "unix:// paths are valid in Istio but not supported by pyistiod yet",
        "accepted (ValidateUnixAddress); a documented gap in pyistiod",
    ),
    Case("no_address", "{labels: {app: vm}}", "spec.address", "is required", "address is required"),
    Case("bad_address", "{address: 'b@d'}", "spec.address", "Istio also takes a DNS name"),
    Case("upper_case_port_name", "{address: 10.0.0.1, ports: {HTTP: 8080}}"),
]


def _parse(kind: str, spec: str) -> ParseResult:
    return document("networking.istio.io/v1", kind, yaml.safe_load(spec), name="probe")


@pytest.mark.parametrize("case", SERVICE_ENTRY, ids=lambda c: c.name)
def test_service_entry(case: Case) -> None:
    check(
        _parse("ServiceEntry", case.spec),
        case.verdict,
        ServiceEntryObject,
        quiet=True,
    )


@pytest.mark.parametrize("case", WORKLOAD_ENTRY, ids=lambda c: c.name)
def test_workload_entry(case: Case) -> None:
    check(
        _parse("WorkloadEntry", case.spec),
        case.verdict,
        WorkloadEntryObject,
        quiet=True,
    )


def test_duplicate_hosts_are_kept_once() -> None:
    obj = _parse("ServiceEntry", "{hosts: [a.example.com, b.example.com, a.example.com]}").obj
    assert isinstance(obj, ServiceEntryObject)
    assert obj.hosts == ("a.example.com", "b.example.com")


def test_dns_round_robin_is_dns_kept_apart() -> None:
    obj = _parse("ServiceEntry", "{hosts: [a.example.com], resolution: DNS_ROUND_ROBIN}").obj
    assert isinstance(obj, ServiceEntryObject)
    assert (obj.resolution, obj.round_robin) == (Resolution.DNS, True)


def test_dynamic_dns_gives_no_endpoints() -> None:
    spec = "{hosts: ['*.example.com'], resolution: DYNAMIC_DNS, endpoints: [{address: 1.2.3.4}]}"
    obj = _parse("ServiceEntry", spec).obj
    assert isinstance(obj, ServiceEntryObject)
    assert (obj.resolution, obj.endpoints) == (Resolution.DYNAMIC_DNS, ())


def test_workload_entry_without_address_is_selected_by_nothing() -> None:
    obj = _parse("WorkloadEntry", "{network: n1, labels: {app: vm}}").obj
    assert isinstance(obj, WorkloadEntryObject)
    assert (obj.address, obj.labels, obj.network) == ("", frozenset(), "n1")
