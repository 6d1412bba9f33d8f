"""AuthorizationPolicy as Envoy RBAC: filter order, policy shapes, TCP rules, selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from envoy_validate import envoy_validate
from google.protobuf import json_format
from sample_mesh import BACKEND_PROXY, meshed_model, sidecar
from test_envoy_accepts_config import inlined_config

from translators.envoy.listeners.sidecar import build_inbound_listeners
from translators.envoy.resources import build_resources
from translators.mesh.model.policies import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzRule,
    Condition,
    Operation,
    Policies,
    Source,
)
from translators.mesh.model.proxy import Proxy
from translators.mesh.model.services import labels_of

ALLOW, DENY, AUDIT = AuthzAction.ALLOW, AuthzAction.DENY, AuthzAction.AUDIT
DB_PROXY = sidecar("db-1", "127.0.2.1", namespace="data", app="db")
ANY_PERMISSION = {"and_rules": {"rules": [{"any": True}]}}
ANY_PRINCIPAL = {"and_ids": {"ids": [{"any": True}]}}


def policy(
    *rules: AuthzRule,
    action: AuthzAction = ALLOW,
    name: str = "p",
    namespace: str = "default",
    selector: dict[str, str] | None = None,
) -> AuthorizationPolicy:
    return AuthorizationPolicy(namespace, name, action, labels_of(selector), tuple(rules))


def to_dict(rules: Any) -> dict[str, Any]:
    """An RBAC config as a dict, ``action`` always present (ALLOW is proto3's default)."""
    result: dict[str, Any] = json_format.MessageToDict(rules, preserving_proto_field_name=True)
    result["action"] = type(rules).Action.Name(rules.action)
    return result


def listener(aps: list[AuthorizationPolicy], proxy: Proxy, port: int) -> listener_pb2.Listener:
    model = meshed_model(Policies.build(authorization_policies=tuple(aps)))
    found = {x.address.socket_address.port_value: x for x in build_inbound_listeners(model, proxy)}
    return found[port]


def http_rbac(*aps: AuthorizationPolicy, proxy: Proxy = BACKEND_PROXY) -> list[dict[str, Any]]:
    """The RBAC configs of the HTTP inbound chain on 8080 (the same in every chain)."""
    chains = listener(list(aps), proxy, 8080).filter_chains
    per_chain = []
    for chain in chains:
        hcm = hcm_pb2.HttpConnectionManager()
        assert chain.filters[0].typed_config.Unpack(hcm)
        names = [f.name for f in hcm.http_filters]
        assert names[-1] == "envoy.filters.http.router"
        configs = []
        for f in hcm.http_filters[:-1]:
            assert f.name == "envoy.filters.http.rbac"
            rbac = http_rbac_pb2.RBAC()
            assert f.typed_config.Unpack(rbac)
            configs.append(to_dict(rbac.rules))
        per_chain.append(configs)
    assert all(c == per_chain[0] for c in per_chain)
    return per_chain[0]


def tcp_rbac(*aps: AuthorizationPolicy) -> list[dict[str, Any]]:
    chain = listener(list(aps), DB_PROXY, 5432).filter_chains[0]
    assert chain.filters[-1].name == "envoy.filters.network.tcp_proxy"
    configs = []
    for f in chain.filters[:-1]:
        assert f.name == "envoy.filters.network.rbac"
        rbac = network_rbac_pb2.RBAC()
        assert f.typed_config.Unpack(rbac)
        assert rbac.stat_prefix == "tcp."
        configs.append(to_dict(rbac.rules))
    return configs


def only_policy(configs: list[dict[str, Any]]) -> dict[str, Any]:
    (config,) = configs
    (found,) = config["policies"].values()
    result: dict[str, Any] = found
    return result


def test_no_policy_no_filter() -> None:
    assert http_rbac() == []
    assert tcp_rbac() == []


def test_allow_without_rules_denies_everything() -> None:
    assert http_rbac(policy()) == [{"action": "ALLOW"}]  # no policies: nothing is allowed


def test_empty_rule_allows_everything() -> None:
    (config,) = http_rbac(policy(AuthzRule()))
    assert config == {
        "action": "ALLOW",
        "policies": {
            "ns[default]-policy[p]-rule[0]": {
                "permissions": [ANY_PERMISSION],
                "principals": [ANY_PRINCIPAL],
            }
        },
    }


def test_principals_with_wildcards() -> None:
    src = Source(
        principals=(
            "cluster.local/ns/a/sa/b",
            "cluster.local/ns/a/*",
            "*/sa/c",
            "*",
        )
    )
    found = only_policy(http_rbac(policy(AuthzRule(sources=(src,)))))
    (principal,) = found["principals"]
    (or_ids,) = principal["and_ids"]["ids"]
    names = [p["authenticated"]["principal_name"] for p in or_ids["or_ids"]["ids"]]
    assert names == [
        {"exact": "spiffe://cluster.local/ns/a/sa/b"},
        {"prefix": "spiffe://cluster.local/ns/a/"},
        {"suffix": "/sa/c"},
        {"safe_regex": {"regex": ".+"}},
    ]


def test_namespaces_match_the_spiffe_path() -> None:
    src = Source(namespaces=("foo",), not_namespaces=("bar",))
    found = only_policy(http_rbac(policy(AuthzRule(sources=(src,)))))
    yes, no = found["principals"][0]["and_ids"]["ids"]
    assert yes["or_ids"]["ids"][0]["authenticated"]["principal_name"] == {
        "safe_regex": {"regex": ".*/ns/foo/.*"}
    }
    assert no["not_id"]["or_ids"]["ids"][0]["authenticated"]["principal_name"] == {
        "safe_regex": {"regex": ".*/ns/bar/.*"}
    }


def test_operation_fields_in_istio_order() -> None:
    op = Operation(
        hosts=("Example.com",),
        methods=("GET",),
        paths=("/exact", "/api/*", "*.html", "*"),
        ports=("8080",),
        not_paths=("/admin*",),
    )
    found = only_policy(http_rbac(policy(AuthzRule(operations=(op,)))))
    host, method, paths, not_paths, port = found["permissions"][0]["and_rules"]["rules"]
    assert host["or_rules"]["rules"] == [
        {
            "header": {
                "name": ":authority",
                "string_match": {"exact": "Example.com", "ignore_case": True},
            }
        }
    ]
    assert method["or_rules"]["rules"] == [
        {"header": {"name": ":method", "string_match": {"exact": "GET"}}}
    ]
    assert [r["url_path"]["path"] for r in paths["or_rules"]["rules"]] == [
        {"exact": "/exact"},
        {"prefix": "/api/"},
        {"suffix": ".html"},
        {"safe_regex": {"regex": ".+"}},
    ]
    assert not_paths == {
        "not_rule": {"or_rules": {"rules": [{"url_path": {"path": {"prefix": "/admin"}}}]}}
    }
    assert port == {"or_rules": {"rules": [{"destination_port": 8080}]}}


def test_conditions_join_permissions_or_principals() -> None:
    rule = AuthzRule(
        sources=(Source(ip_blocks=("10.0.0.0/8",)),),
        conditions=(
            Condition("request.headers[x-token]", ("secret",)),
            Condition("destination.port", not_values=("9090",)),
            Condition("remote.ip", ("192.0.2.1",)),
        ),
    )
    found = only_policy(http_rbac(policy(rule)))
    assert found["permissions"] == [
        {
            "and_rules": {
                "rules": [{"not_rule": {"or_rules": {"rules": [{"destination_port": 9090}]}}}]
            }
        }
    ]
    ip, header, remote = found["principals"][0]["and_ids"]["ids"]
    assert ip["or_ids"]["ids"] == [
        {"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}
    ]
    assert header["or_ids"]["ids"] == [
        {"header": {"name": "x-token", "string_match": {"exact": "secret"}}}
    ]
    assert remote["or_ids"]["ids"] == [
        {"remote_ip": {"address_prefix": "192.0.2.1", "prefix_len": 32}}
    ]


def test_audit_then_deny_then_allow_and_names() -> None:
    configs = http_rbac(
        policy(AuthzRule(), name="allow-a"),
        policy(AuthzRule(), AuthzRule(), action=DENY, name="deny-b"),
        policy(AuthzRule(), action=AUDIT, name="audit-c"),
    )
    assert [c["action"] for c in configs] == ["LOG", "DENY", "ALLOW"]
    assert sorted(configs[1]["policies"]) == [
        "ns[default]-policy[deny-b]-rule[0]",
        "ns[default]-policy[deny-b]-rule[1]",
    ]


def test_selection_by_namespace_selector_and_root() -> None:
    configs = http_rbac(
        policy(AuthzRule(), name="mine", selector={"app": "backend"}),
        policy(AuthzRule(), name="theirs", selector={"app": "frontend"}),
        policy(AuthzRule(), name="elsewhere", namespace="data"),
        policy(AuthzRule(), name="mesh", namespace="istio-system"),
        policy(AuthzRule(), name="mesh-sel", namespace="istio-system", selector={"app": "backend"}),
    )
    (config,) = configs
    assert sorted(config["policies"]) == [
        "ns[default]-policy[mine]-rule[0]",
        "ns[istio-system]-policy[mesh-sel]-rule[0]",
        "ns[istio-system]-policy[mesh]-rule[0]",
    ]


def test_tcp_allow_rule_with_http_fields_is_dropped() -> None:
    http_only = AuthzRule(operations=(Operation(methods=("GET",), ports=("5432",)),))
    tcp_ok = AuthzRule(operations=(Operation(ports=("5432",)),))
    (config,) = tcp_rbac(policy(http_only, tcp_ok, namespace="data"))
    assert list(config["policies"]) == ["ns[data]-policy[p]-rule[1]"]


def test_tcp_deny_rule_drops_only_http_fields() -> None:
    rule = AuthzRule(
        operations=(Operation(methods=("GET",), ports=("5432",)),),
        conditions=(Condition("request.headers[x]", ("1",)),),
    )
    found = only_policy(tcp_rbac(policy(rule, action=DENY, namespace="data")))
    assert found["permissions"] == [
        {"and_rules": {"rules": [{"or_rules": {"rules": [{"destination_port": 5432}]}}]}}
    ]
    assert found["principals"] == [ANY_PRINCIPAL]


def test_tcp_keeps_identity_rules() -> None:
    src = Source(principals=("cluster.local/ns/default/sa/backend",))
    found = only_policy(tcp_rbac(policy(AuthzRule(sources=(src,)), namespace="data")))
    assert found["permissions"] == [ANY_PERMISSION]
    assert found["principals"][0]["and_ids"]["ids"][0]["or_ids"]["ids"] == [
        {
            "authenticated": {
                "principal_name": {"exact": "spiffe://cluster.local/ns/default/sa/backend"}
            }
        }
    ]


# --- Envoy accepts it ---------------------------------------------------------------------

EVERYTHING = [
    policy(action=DENY, name="deny-none"),
    policy(
        AuthzRule(
            sources=(
                Source(
                    principals=("cluster.local/ns/default/sa/*",),
                    not_namespaces=("x",),
                    remote_ip_blocks=("10.0.0.0/8",),
                    not_ip_blocks=("::1",),
                ),
            ),
            operations=(
                Operation(
                    hosts=("*.example.com",),
                    not_methods=("DELETE",),
                    paths=("/api/*",),
                    not_ports=("1",),
                ),
            ),
            conditions=(
                Condition("request.headers[x-a]", ("*",)),
                Condition("connection.sni", ("*.local",)),
                Condition("destination.ip", ("127.0.0.0/8",)),
                Condition("source.principal", ("*",)),
            ),
        ),
        namespace="istio-system",
        name="mesh",
    ),
    policy(AuthzRule(), action=AUDIT, namespace="istio-system", name="audit"),
]


@pytest.mark.parametrize("proxy", [BACKEND_PROXY, DB_PROXY], ids=lambda p: p.pod_name)
def test_envoy_validates_rbac(proxy: Proxy, tmp_path: Path) -> None:
    model = meshed_model(Policies.build(authorization_policies=tuple(EVERYTHING)))
    resources = build_resources(model, proxy)
    result = envoy_validate(inlined_config(proxy, resources), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
