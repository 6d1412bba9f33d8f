"""Istio's rules for a VirtualService, in one table.

What Istio accepts, pyistiod accepts; what Istio refuses, pyistiod refuses, at the field that
is wrong and for the reason Istio gives. Each case is a ``spec`` in YAML (of VirtualService
``default/r``), parsed as a whole document by ``kinds.parse_object``, so that unknown fields
are refused too, with its expected outcome: ``OK`` (optionally with a warning fragment) or
``No(field, reason fragment)``.

Comments name the Istio functions deciding (``pkg/config/validation``); ``vs_*`` cases are the
probes of the validation research, each checked against a real Istio. ``No(...,
istio_accepts=True)`` marks the deliberate differences the readers' docstrings list: pyistiod
refuses what Envoy or its model cannot carry, where Istio accepts it (and drops or mistranslates
it later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from translators.mesh.documents.kinds import ParseResult, parse_object
from translators.mesh.documents.networking.virtual_services import VirtualServiceObject
from translators.mesh.model.routing import MatchKind, StringMatch, VirtualService
from translators.mesh.selection.virtual_services import candidates


@dataclass(frozen=True)
class OK:
    """Accepted; ``warns``, when set, is a fragment of one of the warnings."""

    warns: str = ""


@dataclass(frozen=True)
class No:
    """Refused: an error at ``field`` whose reason holds ``reason``.

    ``istio_accepts``: a deliberate difference (see the module docstring).
    """

    field: str
    reason: str
    istio_accepts: bool = False


ROUTE = "route: [{destination: {host: reviews}}]"


def http(*items: str, hosts: str = "[reviews]") -> str:
    """A spec with ``hosts`` and one HTTP route made of ``items`` (YAML flow-mapping items)."""
    return f"hosts: {hosts}\nhttp: [{{{', '.join(items)}}}]"


def match(condition: str) -> str:
    """A spec whose one HTTP route matches on ``condition`` and routes to reviews."""
    return http(f"match: [{{{condition}}}]", ROUTE)


def on_gateways(gateways: str, spec: str) -> str:
    """``spec`` with ``gateways``."""
    return f"gateways: {gateways}\n{spec}"


def l4(kind: str, route: str, hosts: str = "[a.example.com]") -> str:
    """A spec with ``hosts`` and one ``tcp`` or ``tls`` route (YAML flow-mapping items)."""
    return f"hosts: {hosts}\n{kind}: [{{{route}}}]"


def split(*weights: int) -> str:
    """``route`` items: reviews subsets v0, v1, ... with these weights."""
    items = ", ".join(
        f"{{destination: {{host: reviews, subset: v{i}}}, weight: {w}}}"
        for i, w in enumerate(weights)
    )
    return f"route: [{items}]"


def case(name: str, spec: str, expected: OK | No, annotations: dict[str, str] | None = None) -> Any:
    """One row of the table, with ``name`` as its pytest id."""
    return pytest.param(spec, expected, annotations or {}, id=name)


A_HOST = "[a.example.com]"
DELEGATE = f"http: [{{{ROUTE}}}]"

CASES = [
    # -- ValidateVirtualService: hosts, delegates, routes ------------------------------------
    case("vs_delegate_no_hosts", DELEGATE, OK("delegate VirtualServices are not applied")),
    case("delegate_empty_hosts", f"hosts: []\nhttp: [{{{ROUTE}}}]", OK("routes nothing")),
    case("delegate_with_gateways", on_gateways("[gw]", DELEGATE),
         No("spec.gateways", "delegate virtual service must have no gateways")),
    case("delegate_with_tcp", f"tcp: [{{{ROUTE}}}]",
         No("spec.tcp", "delegate virtual service must have no tcp route")),
    case("delegate_with_tls", f"tls: [{{match: [{{sniHosts: [a.example.com]}}], {ROUTE}}}]",
         No("spec.tls", "delegate virtual service must have no tls route")),
    case("delegate_route_delegating", "http: [{delegate: {name: other}}]",
         No("spec.http[0].delegate", "delegate HTTP route cannot contain delegate")),
    case("root_route_delegating", http("delegate: {name: other, namespace: default}"),
         No("spec.http[0].delegate", "not supported yet", istio_accepts=True)),
    case("vs_no_routes", "hosts: [reviews]", No("spec", "http, tcp or tls must be provided")),
    case("vs_dup_hosts_literal", http(ROUTE, hosts="[a.example.com, a.example.com]"),
         No("spec.hosts[0]", "duplicate hosts in virtual service: a.example.com & a.example.com")),
    case("vs_dup_hosts_wildcard", http(ROUTE, hosts="['*.example.com', a.example.com]"),
         No("spec.hosts[0]", "duplicate hosts in virtual service: *.example.com & a.example.com")),
    case("dup_hosts_two_wildcards", http(ROUTE, hosts="['*.a.example.com', '*.example.com']"),
         No("spec.hosts[0]", "duplicate hosts")),
    case("dup_hosts_differ_in_case", http(ROUTE, hosts="[A.example.com, a.example.com]"), OK()),
    case("dup_hosts_star_on_gateway",
         on_gateways("[gw]", http(ROUTE, hosts="[a.example.com, '*']")),
         No("spec.hosts[0]", "duplicate hosts")),
    case("vs_star_host_mesh_implicit",
         http(ROUTE, hosts="['*']"),
         No("spec.hosts[0]", "wildcard host * is not allowed for virtual services bound to")),
    case("vs_star_host_mesh_explicit", on_gateways("[mesh, my-gw]", http(ROUTE, hosts="['*']")),
         No("spec.hosts[0]", "bound to the mesh gateway")),
    case("vs_star_host_gateway_only", on_gateways("[my-gw]", http(ROUTE, hosts="['*']")), OK()),
    case("host_uppercase", http(ROUTE, hosts="[Reviews.Example.COM]"), OK()),
    case("host_ip", http(ROUTE, hosts="['10.0.0.1', '::1']"), OK()),
    case("host_trailing_dot", http(ROUTE, hosts="[reviews.default.svc.cluster.local.]"), OK()),
    case("host_numeric_tld", http(ROUTE, hosts="[foo.123]"),
         No("spec.hosts[0]", "top level domain '123' is all-numeric")),
    case("host_bad_label", http(ROUTE, hosts="['a_b.example.com']"),
         No("spec.hosts[0]", "label 'a_b' invalid")),
    case("host_wildcard_not_first", http(ROUTE, hosts="['a.*.example.com']"),
         No("spec.hosts[0]", "label '*' invalid")),
    case("host_partial_wildcard", http(ROUTE, hosts="['*foo.example.com']"),
         No("spec.hosts[0]", "partial wildcard host", istio_accepts=True)),
    case("unknown_field", http(ROUTE, "retires: {attempts: 2}"),
         No("spec.http[0].retires", 'did you mean "retries"')),
    case("vs_dry_run_annotation", http(ROUTE),
         No("metadata.annotations.istio.io/dry-run", "unsupported annotation istio.io/dry-run"),
         annotations={"istio.io/dry-run": "true"}),
    # -- validateGatewayNames ----------------------------------------------------------------
    case("vs_gateway_bad_at", on_gateways("['b@d']", http(ROUTE, hosts=A_HOST)),
         No("spec.gateways[0]", "domain name 'b@d' invalid (label 'b@d' invalid)")),
    case("vs_gateway_ns_star", on_gateways("['ns/*']", http(ROUTE, hosts=A_HOST)),
         No("spec.gateways[0]", "invalid value for gateway name '*'")),
    case("vs_gateway_star_ns", on_gateways("['*/gw']", http(ROUTE, hosts=A_HOST)),
         No("spec.gateways[0]", "invalid value for namespace '*'")),
    case("gateway_dot_ns", on_gateways("['./gw']", http(ROUTE, hosts=A_HOST)),
         No("spec.gateways[0]", "invalid value for namespace '.'")),
    case("gateway_empty_name", on_gateways("['ns/']", http(ROUTE, hosts=A_HOST)),
         No("spec.gateways[0]", "invalid value for gateway name ''")),
    case("gateway_after_mesh_checked", on_gateways("[mesh, 'ns/*']", http(ROUTE, hosts=A_HOST)),
         No("spec.gateways[1]", "invalid value for gateway name '*'", istio_accepts=True)),
    case("gateways_all_forms",
         on_gateways("[mesh, gw, other/gw, Up/GW]", http(ROUTE, hosts=A_HOST)),
         OK()),
    case("vs_legacy_gateway_fqdn", on_gateways("[my-gw.istio-system]", http(ROUTE, hosts=A_HOST)),
         OK("prefer the <namespace>/<name> format: 'istio-system/my-gw'")),
    case("match_gateway_bad", match("gateways: ['b@d']"),
         No("spec.http[0].match[0].gateways[0]", "domain name 'b@d' invalid")),
    case("tcp_match_gateway_bad", l4("tcp", f"match: [{{gateways: ['*/gw']}}], {ROUTE}", "[db]"),
         No("spec.tcp[0].match[0].gateways[0]", "invalid value for namespace '*'")),
    # -- validateExportTo --------------------------------------------------------------------
    case("vs_export_to_star_and_ns", f"exportTo: ['*', foo]\n{http(ROUTE)}",
         No("spec.exportTo", "cannot have both public (*) and non-public exportTo values")),
    case("vs_export_to_tilde", f"exportTo: ['~']\n{http(ROUTE)}",
         No("spec.exportTo[0]", "exportTo ~ (none) is not allowed for Istio configuration")),
    case("export_to_dot_and_own_namespace", f"exportTo: [default, '.']\n{http(ROUTE)}",
         No("spec.exportTo[1]", "duplicate entries in exportTo: . and current namespace default")),
    case("export_to_duplicate", f"exportTo: [a, a]\n{http(ROUTE)}",
         No("spec.exportTo[1]", "duplicate entries in exportTo: entry a")),
    case("export_to_bad_namespace", f"exportTo: ['Bad!']\n{http(ROUTE)}",
         No("spec.exportTo[0]", "must be '.', '*' or a namespace")),
    case("export_to_namespaces", f"exportTo: ['.', billing]\n{http(ROUTE)}", OK()),
    case("export_to_star", f"exportTo: ['*']\n{http(ROUTE)}", OK()),
    # -- validateHTTPRouteConflict -----------------------------------------------------------
    case("route_and_redirect", http(ROUTE, "redirect: {uri: /x}"),
         No("spec.http[0]", "exactly one of route, redirect, directResponse")),
    case("no_action", http("timeout: 1s"), No("spec.http[0]", "got none")),
    case("rewrite_with_redirect", http("redirect: {uri: /x}", "rewrite: {uri: /y}"),
         No("spec.http[0].rewrite", "cannot be set together with redirect")),
    case("fault_with_redirect", http("redirect: {uri: /x}", "fault: {abort: {httpStatus: 500}}"),
         No("spec.http[0].fault", "cannot be set together with redirect")),
    case("fault_with_direct_response",
         http("directResponse: {status: 503}", "fault: {abort: {httpStatus: 500}}"),
         No("spec.http[0].fault", "cannot be set together with directResponse")),
    case("rewrite_with_direct_response",
         http("directResponse: {status: 503}", "rewrite: {uri: /y}"),
         No("spec.http[0].rewrite", "cannot be set together with directResponse")),
    case("vs_mirror_and_mirrors",
         http(ROUTE, "mirror: {host: a.example.com}", "mirrors: [{destination: {host: b.ex.com}}]"),
         No("spec.http[0].mirrors", "cannot contain both mirror and mirrors")),
    case("mirrors_warn",
         http(ROUTE, "mirrors: [{destination: {host: b.example.com}, percentage: {value: 5}}]"),
         OK("mirrors is not supported yet")),
    case("mirrors_without_destination", http(ROUTE, "mirrors: [{percentage: {value: 5}}]"),
         No("spec.http[0].mirrors[0].destination", "destination is required for mirrors")),
    case("mirror_percent_legacy", http(ROUTE, "mirror: {host: a.example.com}", "mirrorPercent: 50"),
         OK("deprecated, use mirrorPercentage")),
    case("mirror_percent_over_100",
         http(ROUTE, "mirror: {host: a.example.com}", "mirrorPercent: 150"),
         No("spec.http[0].mirrorPercent", "0-100")),
    # -- validateAuthorityRewrite, header operations -----------------------------------------
    case("vs_authority_rewrite_and_set",
         http(ROUTE, "rewrite: {authority: a}", "headers: {request: {set: {':authority': b}}}"),
         No("spec.http[0].headers.request", "set multiple times: have 'a', attempting to set 'b'")),
    case("vs_authority_rewrite_and_add_host",
         http(ROUTE, "rewrite: {authority: a}", "headers: {request: {add: {host: b}}}"),
         No("spec.http[0].headers.request", "authority header cannot be set multiple times")),
    case("vs_authority_set_and_add_host",
         http(ROUTE, "headers: {request: {set: {':authority': b}, add: {Host: c}}}"),
         No("spec.http[0].headers.request", "authority header cannot be set multiple times")),
    case("authority_set_twice",
         http(ROUTE, "headers: {request: {set: {':authority': b, host: c}}}"),
         No("spec.http[0].headers.request", "cannot be set multiple times")),
    case("vs_authority_set_only", http(ROUTE, "headers: {request: {set: {':authority': b}}}"),
         OK()),
    case("authority_rewrite_only", http(ROUTE, "rewrite: {authority: a}"), OK()),
    case("vs_header_request_set_path", http(ROUTE, "headers: {request: {set: {':path': /x}}}"),
         No("spec.http[0].headers.request.set.:path", "header cannot have ':' prefix")),
    case("vs_header_response_set_host", http(ROUTE, "headers: {response: {set: {host: x}}}"),
         No("spec.http[0].headers.response.set.host", "cannot set Host header")),
    case("header_request_remove_host", http(ROUTE, "headers: {request: {remove: [Host]}}"),
         No("spec.http[0].headers.request.remove[0]", "cannot set Host header")),
    case("header_response_add_pseudo",
         http(ROUTE, "headers: {response: {add: {':status': '200'}}}"),
         No("spec.http[0].headers.response.add.:status", "cannot have ':' prefix")),
    # ValidateHTTPHeaderValue: Envoy refuses the whole route configuration over a lone %.
    case("header_value_single_percent", http(ROUTE, "headers: {request: {add: {x-a: '100%'}}}"),
         No("spec.http[0].headers.request.add.x-a", "single %")),
    case("header_value_odd_percents",
         http(ROUTE, "headers: {response: {set: {x-a: '%START_TIME%%'}}}"),
         No("spec.http[0].headers.response.set.x-a", "single %")),
    case("header_value_envoy_variables",
         http(ROUTE, "headers: {request: {set: {x-a: '100%%', x-b: 'a %REQ(x-c)% b'}}}"), OK()),
    case("header_value_control_character",
         http(ROUTE, 'headers: {request: {set: {x-a: "a\\x01b"}}}'),
         No("spec.http[0].headers.request.set.x-a", "control character")),
    case("destination_header_value_checked",
         http("route: [{destination: {host: reviews}, headers: {request: {set: {x-a: '%'}}}}]"),
         No("spec.http[0].route[0].headers.request.set.x-a", "single %")),
    case("destination_headers_checked",
         http("route: [{destination: {host: reviews}, headers: {response: {set: {host: x}}}}]"),
         No("spec.http[0].route[0].headers.response.set.host", "cannot set Host header")),
    # -- validateHTTPRouteMatchRequest, validateStringMatch ----------------------------------
    case("vs_header_match_uppercase", match("headers: {X-User: {exact: a}}"), OK()),
    case("vs_header_match_empty_prefix", match("headers: {x-user: {prefix: ''}}"),
         No("spec.http[0].match[0].headers.x-user.prefix", "prefix string match should not be")),
    case("header_match_pseudo", match("headers: {':authority': {exact: a}}"), OK()),
    case("header_match_bad_name", match("headers: {'x user': {exact: a}}"),
         No("spec.http[0].match[0].headers.x user", "is not valid")),
    case("header_match_null", match("headers: {x-user: null}"),
         No("spec.http[0].match[0].headers.x-user", "cannot be null")),
    case("header_match_regex_star", match("headers: {x-user: {regex: '*'}}"),
         No("spec.http[0].match[0].headers.x-user.regex", "RE2")),
    case("header_match_jwt_claim", match("headers: {'@request.auth.claims.sub': {exact: a}}"),
         No("spec.http[0].match[0].headers.@request.auth.claims.sub", "JWT claim based routing")),
    # ValidateVirtualService: "JWT claim based routing (key: ...) is only supported for gateway"
    case("header_match_jwt_claim_mesh_and_gateway",
         on_gateways("[mesh, istio-system/gw]",
                     match("headers: {'@request.auth.claims.sub': {exact: a}}")),
         No("spec.http[0].match[0].headers.@request.auth.claims.sub", "only supported for")),
    case("header_match_jwt_claim_gateway",
         on_gateways("[istio-system/gw]",
                     match("headers: {'@request.auth.claims.sub': {exact: a}}")),
         OK()),
    case("header_match_jwt_nested_claim_gateway",
         on_gateways("[istio-system/gw]",
                     match("headers: {'@request.auth.claims[org][team]': {prefix: a}}")),
         OK()),
    case("without_headers_jwt_claim_gateway",
         on_gateways("[istio-system/gw]",
                     match("withoutHeaders: {'@request.auth.claims.groups': {exact: a}}")),
         OK()),
    case("header_match_jwt_claim_no_name",
         on_gateways("[istio-system/gw]", match("headers: {'@request.auth.claims.': {exact: a}}")),
         No("spec.http[0].match[0].headers.@request.auth.claims.", "names no claim")),
    case("without_headers_regex_star", match("withoutHeaders: {x-user: {regex: '*'}}"), OK()),
    case("without_headers_empty_prefix", match("withoutHeaders: {x-user: {prefix: ''}}"),
         No("spec.http[0].match[0].withoutHeaders.x-user.prefix", "should not be empty")),
    case("vs_uri_empty_prefix", match("uri: {prefix: ''}"), OK()),
    case("uri_empty_regex", match("uri: {regex: ''}"),
         No("spec.http[0].match[0].uri.regex", "regex string match should not be empty")),
    case("uri_regex_star", match("uri: {regex: '*'}"),
         No("spec.http[0].match[0].uri.regex", "RE2")),
    case("uri_regex_too_long", match(f"uri: {{regex: '{'a' * 1025}'}}"),
         No("spec.http[0].match[0].uri.regex", "at most 1024 characters")),
    case("uri_regex_lookahead", match("uri: {regex: 'a(?=b)'}"),
         No("spec.http[0].match[0].uri.regex", "RE2")),
    case("scheme_empty_prefix", match("scheme: {prefix: ''}"),
         No("spec.http[0].match[0].scheme.prefix", "should not be empty")),
    case("query_empty_prefix", match("queryParams: {q: {prefix: ''}}"),
         No("spec.http[0].match[0].queryParams.q.prefix", "should not be empty")),
    case("exact_empty_string", match("method: {exact: ''}"), OK()),
    case("vs_source_namespace_bad", match("sourceNamespace: Bad_NS"),
         No("spec.http[0].match[0].sourceNamespace", "sourceNamespace match Bad_NS is invalid")),
    case("source_namespace_ok", match("sourceNamespace: bookinfo"), OK()),
    case("match_port_zero_is_unset", match("port: 0"), OK()),
    case("match_port_too_big", match("port: 70000"), No("spec.http[0].match[0].port", "1-65535")),
    case("source_labels_bad_value", match("sourceLabels: {app: 'a b'}"),
         No("spec.http[0].match[0].sourceLabels.app", "label value")),
    # -- validateHTTPRetry -------------------------------------------------------------------
    case("vs_retry_attempts0_alone", http(ROUTE, "retries: {attempts: 0}"), OK()),
    case("retries_empty", http(ROUTE, "retries: {}"), OK()),
    case("vs_retry_attempts0_pertry",
         http(ROUTE, "retries: {attempts: 0, perTryTimeout: 1s}"),
         No("spec.http[0].retries.attempts", "retry policy configured when attempts are set to 0")),
    case("vs_retry_attempts0_retryon", http(ROUTE, "retries: {attempts: 0, retryOn: 5xx}"),
         No("spec.http[0].retries.attempts", "attempts are set to 0 (disabled)")),
    case("vs_retry_no_attempts", http(ROUTE, "retries: {retryOn: 5xx, perTryTimeout: 2s}"),
         No("spec.http[0].retries.attempts", "attempts are set to 0 (disabled)")),
    case("retry_remote_localities_without_attempts",
         http(ROUTE, "retries: {retryRemoteLocalities: false}"),
         No("spec.http[0].retries.attempts", "retryRemoteLocalities")),
    case("retry_negative_attempts", http(ROUTE, "retries: {attempts: -1}"),
         No("spec.http[0].retries.attempts", "got -1")),
    case("vs_retryon_invalid", http(ROUTE, "retries: {attempts: 2, retryOn: foo}"),
         No("spec.http[0].retries.retryOn", "'foo' is not a valid retryOn policy")),
    case("vs_retryon_space_after_comma",
         http(ROUTE, "retries: {attempts: 2, retryOn: '5xx, connect-failure'}"),
         No("spec.http[0].retries.retryOn", "' connect-failure' is not a valid retryOn policy")),
    case("retryon_trailing_comma", http(ROUTE, "retries: {attempts: 2, retryOn: '5xx,'}"),
         No("spec.http[0].retries.retryOn", "'' is not a valid retryOn policy")),
    case("vs_retryon_status_code",
         http(ROUTE, "retries: {attempts: 2, retryOn: '503,5xx,retriable-status-codes'}"),
         OK()),
    case("vs_retryon_unknown_code", http(ROUTE, "retries: {attempts: 2, retryOn: '599'}"),
         No("spec.http[0].retries.retryOn", "'599' is not a valid retryOn policy")),
    case("retry_per_try_timeout_zero", http(ROUTE, "retries: {attempts: 2, perTryTimeout: 0s}"),
         No("spec.http[0].retries.perTryTimeout", "at least 1ms")),
    case("retry_backoff_warns", http(ROUTE, "retries: {attempts: 2, backoff: 25ms}"),
         OK("backoff is not supported yet")),
    case("retry_backoff_zero", http(ROUTE, "retries: {attempts: 2, backoff: 0s}"),
         No("spec.http[0].retries.backoff", "at least 1ms")),
    # -- validateHTTPRedirect, validateHTTPRewrite -------------------------------------------
    case("vs_redirect_empty", http("redirect: {redirectCode: 302}"),
         No("spec.http[0].redirect", "redirect must specify uri, authority, scheme, or port")),
    case("vs_redirect_bad_scheme", http("redirect: {uri: /x, scheme: ftp}"),
         No("spec.http[0].redirect.scheme", "invalid redirect scheme, must be 'http' or 'https'")),
    case("vs_redirect_code_300", http("redirect: {uri: /x, redirectCode: 300}"),
         No("spec.http[0].redirect.redirectCode", "the codes Envoy can send", istio_accepts=True)),
    case("redirect_code_400", http("redirect: {uri: /x, redirectCode: 400}"),
         No("spec.http[0].redirect.redirectCode", "got 400")),
    case("redirect_port_only", http("redirect: {port: 8443}"), OK()),
    case("redirect_derive_port_only", http("redirect: {derivePort: FROM_REQUEST_PORT}"), OK()),
    case("redirect_https", http("redirect: {scheme: https, redirectCode: 308}"), OK()),
    case("vs_rewrite_empty", http(ROUTE, "rewrite: {}"),
         No("spec.http[0].rewrite", "at least one of uri, uriRegexRewrite, or authority")),
    case("vs_rewrite_regex_missing_rewrite",
         http(ROUTE, "rewrite: {uriRegexRewrite: {match: '^/a'}}"),
         No("spec.http[0].rewrite.uriRegexRewrite", "requires both rewrite and match")),
    case("rewrite_uri_and_regex",
         http(ROUTE, "rewrite: {uri: /b, uriRegexRewrite: {match: '^/a', rewrite: /b}}"),
         No("spec.http[0].rewrite.uriRegexRewrite", "cannot be set together with uri")),
    case("rewrite_regex",
         http(ROUTE, "rewrite: {uriRegexRewrite: {match: '^/a/(.*)', rewrite: '/\\1'}}"),
         OK()),
    # -- validateHTTPFaultInjection ----------------------------------------------------------
    case("fault_empty", http(ROUTE, "fault: {}"),
         No("spec.http[0].fault", "must have an abort and/or a delay")),
    case("vs_fault_grpc_abort",
         http(ROUTE, "fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 10}}}"),
         OK()),
    # validateGRPCStatus: a name of grpc.SupportedGRPCStatus
    case("fault_grpc_abort_unknown_name", http(ROUTE, "fault: {abort: {grpcStatus: '14'}}"),
         No("spec.http[0].fault.abort.grpcStatus", "gRPC status '14' is not supported")),
    case("fault_grpc_abort_lower_case", http(ROUTE, "fault: {abort: {grpcStatus: unavailable}}"),
         No("spec.http[0].fault.abort.grpcStatus", "is not supported")),
    # ErrorType is a oneof: one kind per abort
    case("fault_abort_two_kinds",
         http(ROUTE, "fault: {abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}}"),
         No("spec.http[0].fault.abort", "set one of httpStatus, grpcStatus and http2Error")),
    case("fault_http2_error",
         http(ROUTE, "fault: {abort: {http2Error: REFUSED_STREAM}}"),
         No("spec.http[0].fault.abort.http2Error", "HTTP/2 abort fault injection")),
    case("fault_abort_without_type", http(ROUTE, "fault: {abort: {percentage: {value: 5}}}"),
         OK("abort configured, but error type not set")),
    case("fault_abort_status_600", http(ROUTE, "fault: {abort: {httpStatus: 600}}"),
         No("spec.http[0].fault.abort.httpStatus", "200-599", istio_accepts=True)),
    case("fault_exponential_delay", http(ROUTE, "fault: {delay: {exponentialDelay: 1s}}"),
         No("spec.http[0].fault.delay.exponentialDelay", "not supported yet")),
    case("fault_delay_zero", http(ROUTE, "fault: {delay: {fixedDelay: 0s}}"),
         No("spec.http[0].fault.delay.fixedDelay", "at least 1ms")),
    case("fault_tiny_percentage",
         http(ROUTE, "fault: {delay: {fixedDelay: 1s, percentage: {value: 0.00001}}}"),
         No("spec.http[0].fault.delay.percentage.value", "0 or 0.0001-100")),
    case("fault_delay_and_abort",
         http(ROUTE, "fault: {delay: {fixedDelay: 1s, percentage: {value: 0.1}},"
                     " abort: {httpStatus: 503}}"),
         OK()),
    # -- validateHTTPDirectResponse, timeouts ------------------------------------------------
    case("direct_response_bytes", http("directResponse: {status: 200, body: {bytes: aGVsbG8=}}"),
         OK()),
    case("direct_response_no_status", http("directResponse: {body: {string: x}}"),
         No("spec.http[0].directResponse.status", "is required")),
    case("direct_response_too_large",
         http(f"directResponse: {{status: 200, body: {{string: '{'x' * (1024 * 1024 + 1)}'}}}}"),
         No("spec.http[0].directResponse.body", "less than 1MB")),
    case("direct_response_large_warns",
         http(f"directResponse: {{status: 200, body: {{string: '{'x' * (100 * 1024 + 1)}'}}}}"),
         OK("large direct_responses")),
    case("vs_timeout_zero", http(ROUTE, "timeout: 0s"), No("spec.http[0].timeout", "at least 1ms")),
    case("timeout_sub_millisecond", http(ROUTE, "timeout: 1500us"),
         No("spec.http[0].timeout", "whole number of milliseconds")),
    # -- validateCORSPolicy ------------------------------------------------------------------
    case("vs_cors_bad_method",
         http(ROUTE, "corsPolicy: {allowOrigins: [{exact: 'https://a.com'}], allowMethods: [FOO]}"),
         No("spec.http[0].corsPolicy.allowMethods[0]", "'FOO' is not a supported HTTP method")),
    case("vs_cors_empty_origin",
         http(ROUTE, "corsPolicy: {allowOrigins: [{exact: ''}]}"),
         No("spec.http[0].corsPolicy.allowOrigins[0]", "'' is not a valid match type for CORS")),
    case("cors_origin_any", http(ROUTE, "corsPolicy: {allowOrigins: [{}]}"),
         No("spec.http[0].corsPolicy.allowOrigins[0]", "not a valid match type")),
    case("cors_bad_header", http(ROUTE, "corsPolicy: {allowHeaders: ['x y']}"),
         No("spec.http[0].corsPolicy.allowHeaders[0]", "is not valid")),
    case("cors_max_age_fraction", http(ROUTE, "corsPolicy: {maxAge: 1500ms}"),
         No("spec.http[0].corsPolicy.maxAge", "accurate only to seconds")),
    case("cors_all",
         http(ROUTE, "corsPolicy: {allowOrigins: [{regex: 'https://.*'}], allowMethods: ['*', GET],"
                     " allowHeaders: ['*', X-Foo], maxAge: 24h}"),
         OK()),
    # -- validateHTTPRouteDestinations, validateDestination ----------------------------------
    case("vs_weights_not_100",
         http(split(50, 30)),
         OK()),
    case("vs_weights_all_zero",
         http(split(0, 0)),
         No("spec.http[0].route", "total destination weight = 0")),
    case("weights_over_100", http(split(1, 1000)), OK()),
    case("weight_negative", http(split(-1, 1)), No("spec.http[0].route[0].weight", "got -1")),
    case("single_destination_weight_zero", http("route: [{destination: {host: a}, weight: 0}]"),
         OK()),
    case("vs_destination_host_star", http("route: [{destination: {host: '*'}}]"),
         No("spec.http[0].route[0].destination.host", "invalid destination host *")),
    case("destination_host_ip", http("route: [{destination: {host: '10.0.0.1'}}]"),
         No("spec.http[0].route[0].destination.host", "all-numeric")),
    case("vs_subset_bad", http("route: [{destination: {host: reviews, subset: v_1}}]"),
         No("spec.http[0].route[0].destination.subset", "subset name is invalid")),
    case("vs_subset_uppercase", http("route: [{destination: {host: reviews, subset: V1}}]"), OK()),
    case("destination_port_zero",
         http("route: [{destination: {host: reviews, port: {number: 0}}}]"),
         No("spec.http[0].route[0].destination.port.number", "1-65535")),
    case("mirror_host_star", http(ROUTE, "mirror: {host: '*'}"),
         No("spec.http[0].mirror.host", "invalid destination host *")),
    # -- validateTLSRoute, validateTCPRoute, validateSniHost ---------------------------------
    case("vs_tls_sni_not_subset",
         l4("tls", f"match: [{{sniHosts: [b.example.com]}}], {ROUTE}"),
         No("spec.tls[0].match[0].sniHosts[0]",
            "'b.example.com' is not a compatible subset of any of the virtual service hosts")),
    case("tls_sni_wider_than_host", l4("tls", f"match: [{{sniHosts: ['*.example.com']}}], {ROUTE}"),
         No("spec.tls[0].match[0].sniHosts[0]", "not a compatible subset")),
    case("tls_sni_inside_wildcard",
         l4("tls", f"match: [{{sniHosts: [a.example.com, '*.b.example.com']}}], {ROUTE}",
            "['*.example.com']"),
         OK()),
    case("tls_sni_ip", l4("tls", f"match: [{{sniHosts: ['10.0.0.1']}}], {ROUTE}"),
         OK("goes against SNI spec")),
    case("tls_without_match", l4("tls", ROUTE), No("spec.tls[0].match", "at least one match")),
    case("tls_bad_subnet",
         l4("tls", f"match: [{{sniHosts: [a.example.com], destinationSubnets: [10.0.0.0/33]}}],"
                   f" {ROUTE}"),
         No("spec.tls[0].match[0].destinationSubnets[0]", "not a valid IP address or CIDR block")),
    case("tcp_without_route", l4("tcp", "match: [{port: 5432}]", "[db]"),
         No("spec.tcp[0].route", "at least one destination")),
    case("tcp_weights_all_zero",
         l4("tcp", split(0, 0), "[db]"),
         No("spec.tcp[0].route", "total destination weight = 0")),
    case("tcp_subnets_warn",
         l4("tcp", f"match: [{{destinationSubnets: [10.0.0.0/8], sourceSubnet: x}}], {ROUTE}"),
         OK("destinationSubnets is not supported yet")),
    case("tcp_source_namespace_unchecked",
         l4("tcp", f"match: [{{sourceNamespace: Bad_NS}}], {ROUTE}", "[db]"),
         OK()),
]  # fmt: skip


def parse(spec: str, annotations: dict[str, str] | None = None) -> ParseResult:
    metadata: dict[str, Any] = {"name": "r", "namespace": "default"}
    if annotations:
        metadata["annotations"] = annotations
    doc = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata,
        "spec": yaml.safe_load(spec),
    }
    return parse_object(doc, path="vs.yaml", document=0)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize(("spec", "expected", "annotations"), CASES)
def test_istio_rule(spec: str, expected: OK | No, annotations: dict[str, str]) -> None:
    result = parse(spec, annotations)
    errors = [(e.field, e.reason) for e in result.errors]
    if isinstance(expected, OK):
        assert errors == [], errors
        if expected.warns:
            assert any(expected.warns in w for w in result.warnings), result.warnings
    else:
        assert any(
            field == expected.field and expected.reason in reason for field, reason in errors
        ), errors


def read(spec: str) -> tuple[VirtualService, tuple[str, ...]]:
    result = parse(spec)
    assert result.errors == (), result.errors
    assert isinstance(result.obj, VirtualServiceObject)
    return result.obj.virtual_service, result.warnings


def test_header_match_names_are_kept_lower_cased() -> None:
    vs, _ = read(match("headers: {X-User: {exact: a}, ':authority': {}}"))
    assert vs.http[0].matches[0].headers == (
        (":authority", StringMatch(MatchKind.PRESENT)),
        ("x-user", StringMatch(MatchKind.EXACT, "a")),
    )


def test_gateway_references_resolve_as_istio_resolves_them() -> None:
    spec = on_gateways(
        "[mesh, gw, other/gw, gw.istio-system, gw.ns2.svc.cluster.local]", http(ROUTE)
    )
    vs, warnings = read(spec)
    assert vs.gateways == ("mesh", "default/gw", "other/gw", "istio-system/gw", "ns2/gw")
    assert sum("legacy gatewayName format" in w for w in warnings) == 2


def test_weights_need_not_sum_to_100() -> None:
    vs, _ = read(
        http("route: [{destination: {host: a}, weight: 50}, {destination: {host: b}, weight: 30}]")
    )
    assert [d.weight for d in vs.http[0].route] == [50, 30]


def test_a_delegate_routes_nothing() -> None:
    vs, warnings = read(DELEGATE)
    assert vs.hosts == () and vs.gateways == ("mesh",)
    assert candidates([vs], "reviews.default.svc.cluster.local") == []
    assert any("delegate VirtualServices are not applied yet" in w for w in warnings)


def test_retry_on_numbers_are_written_canonically() -> None:
    vs, _ = read(http(ROUTE, "retries: {attempts: 2, retryOn: '+503,5xx'}"))
    assert vs.http[0].retries is not None and vs.http[0].retries.retry_on == "503,5xx"


def test_fault_abort_without_a_type_injects_nothing() -> None:
    vs, _ = read(http(ROUTE, "fault: {abort: {percentage: {value: 5}}}"))
    assert vs.http[0].fault is None
