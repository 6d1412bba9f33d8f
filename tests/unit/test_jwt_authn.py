"""RequestAuthentication as Envoy's jwt_authn filter, JWKS clusters and RBAC on JWT metadata.

Shapes follow Istio's ``convertToEnvoyJwtConfig`` (providers ``origins-N`` by issuer, a
bad token refused, a missing one let through); ``envoy --mode validate`` proves Envoy
1.40 accepts the whole config of a sidecar and of a gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy_validate import envoy_validate
from google.protobuf import json_format
from sample_mesh import BACKEND, BACKEND_PROXY, DATA_PROXY, FRONTEND_PROXY, meshed_model
from test_envoy_accepts_config import inlined_config

from pyistiod.snapshot_builder import SnapshotBuilder
from translators.envoy.jwt import build_jwks_clusters
from translators.envoy.listeners.request_principals import request_principal
from translators.envoy.listeners.sidecar import build_inbound_listeners
from translators.envoy.resources import build_resources
from translators.mesh.model.policies import (
    AuthorizationPolicy,
    AuthzRule,
    Condition,
    JwksUri,
    JwtRule,
    Policies,
    RequestAuthentication,
    Source,
)
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.services import labels_of
from translators.mesh.selection.request_authentication import jwt_rules_for
from translators.sources.files import load_dir
from xds_server import types

JWKS = (
    '{"keys": [{"kty": "EC", "crv": "P-256", "x": "nLtxDW0ZtLFjdL'
    'ZfWuhAE9I9pUgp6EbTvsm9IIoztpE", "y": "hNt4d8AZ3sMIF8PE-jnHKGgOd0amlVsL35FeXYX11_E"}]}'
)
LOCAL = JwtRule("https://local.example.com", audiences=("aud",), jwks=JWKS)
REMOTE = JwtRule(
    "remote-issuer",
    jwks_uri=JwksUri("http://127.0.0.1:8000/jwks", "http", "127.0.0.1", 8000),
    timeout_ms=1500,
    forward_original_token=True,
    output_payload_to_header="x-jwt-payload",
)
IN_MESH = JwtRule(
    "mesh-issuer", jwks_uri=JwksUri(f"http://{BACKEND}:9080/k", "http", BACKEND, 9080)
)
HTTPS = JwtRule(
    "tls-issuer", jwks_uri=JwksUri("https://idp.example.com/k", "https", "idp.example.com", 443)
)
ANY_ISSUER = JwtRule(
    "",
    jwks_uri=JwksUri("http://127.0.0.1:8001/k", "http", "127.0.0.1", 8001),
    space_delimited_claims=("roles", "scope"),
)
"""A rule without an issuer (Envoy checks no ``iss``; Istio accepts it with a jwksUri) and
with a claim of its own split on spaces."""


def ra(
    *rules: JwtRule, namespace: str = "default", selector: dict[str, str] | None = None
) -> RequestAuthentication:
    return RequestAuthentication(namespace, f"ra-{len(rules)}", labels_of(selector), rules)


def model_with(*ras: RequestAuthentication, aps: tuple[AuthorizationPolicy, ...] = ()) -> Any:
    return meshed_model(Policies.build(authorization_policies=aps, request_authentications=ras))


def http_filters(listener: listener_pb2.Listener) -> list[hcm_pb2.HttpFilter]:
    hcm = hcm_pb2.HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    return list(hcm.http_filters)


def inbound(model: Any, proxy: Proxy = BACKEND_PROXY) -> dict[int, listener_pb2.Listener]:
    return {x.address.socket_address.port_value: x for x in build_inbound_listeners(model, proxy)}


def jwt_config(listener: listener_pb2.Listener) -> jwt_pb2.JwtAuthentication:
    first = http_filters(listener)[0]
    assert first.name == "envoy.filters.http.jwt_authn"
    config = jwt_pb2.JwtAuthentication()
    assert first.typed_config.Unpack(config)
    return config


def as_dict(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return out


def test_one_rule_is_one_provider_that_refuses_bad_tokens_and_lets_missing_ones_pass() -> None:
    ap = AuthorizationPolicy("default", "p", rules=(AuthzRule(),))
    listener = inbound(model_with(ra(REMOTE), aps=(ap,)))[8080]
    names = [f.name for f in http_filters(listener)]
    assert names == [
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.rbac",
        "envoy.filters.http.router",
    ]
    config = as_dict(jwt_config(listener))
    assert config["rules"] == [
        {
            "match": {"prefix": "/"},
            "requires": {
                "requires_any": {
                    "requirements": [{"provider_name": "origins-0"}, {"allow_missing": {}}]
                }
            },
        }
    ]
    assert config["bypass_cors_preflight"] is True
    provider = config["providers"]["origins-0"]
    assert provider["issuer"] == "remote-issuer"
    assert provider["payload_in_metadata"] == "payload"
    assert provider["forward"] is True and provider["forward_payload_header"] == "x-jwt-payload"
    assert provider["normalize_payload_in_metadata"] == {
        "space_delimited_claims": ["permission", "scope"]
    }
    assert provider["remote_jwks"] == {
        "http_uri": {
            "uri": "http://127.0.0.1:8000/jwks",
            "cluster": "outbound|8000||127.0.0.1",
            "timeout": "1.500s",
        },
        "cache_duration": "300s",
        "async_fetch": {},
    }


def test_several_rules_are_sorted_by_issuer_and_any_valid_token_passes() -> None:
    config = jwt_config(inbound(model_with(ra(REMOTE), ra(LOCAL)))[8080])
    assert [config.providers[f"origins-{i}"].issuer for i in range(2)] == [
        "https://local.example.com",
        "remote-issuer",
    ]
    anyone = jwt_config(inbound(model_with(ra(REMOTE, ANY_ISSUER)))[8080]).providers["origins-0"]
    assert anyone.issuer == "" and anyone.remote_jwks.http_uri.uri.endswith(":8001/k")
    # spaceDelimitedClaims join Istio's two, sorted, once each
    claims = anyone.normalize_payload_in_metadata.space_delimited_claims
    assert list(claims) == ["permission", "roles", "scope"]
    assert config.providers["origins-0"].local_jwks.inline_string == JWKS
    assert list(config.providers["origins-0"].audiences) == ["aud"]
    outer = config.rules[0].requires.requires_any.requirements
    assert [r.provider_name for r in outer[:2]] == ["origins-0", "origins-1"]
    inner = outer[2].requires_all.requirements
    assert [[r.provider_name for r in i.requires_any.requirements] for i in inner] == [
        ["origins-0", ""],
        ["origins-1", ""],
    ]
    assert all(i.requires_any.requirements[1].HasField("allow_missing") for i in inner)


def test_without_request_authentication_there_is_no_jwt_filter_and_tcp_chains_get_none() -> None:
    assert all(
        f.name != "envoy.filters.http.jwt_authn" for f in http_filters(inbound(model_with())[8080])
    )
    for listener in inbound(model_with(ra(REMOTE)), FRONTEND_PROXY).values():
        for chain in listener.filter_chains:
            assert all(f.name != "envoy.filters.http.jwt_authn" for f in chain.filters)


def test_selection_by_namespace_root_namespace_and_selector() -> None:
    policies = Policies.build(
        request_authentications=(
            ra(LOCAL, selector={"app": "backend"}),
            ra(REMOTE, HTTPS, namespace="istio-system"),
            ra(IN_MESH, namespace="data"),
        )
    )
    backend = labels_of({"app": "backend"})
    assert jwt_rules_for(policies, "default", backend) == (LOCAL, REMOTE, HTTPS)
    assert jwt_rules_for(policies, "default", labels_of({"app": "frontend"})) == (REMOTE, HTTPS)
    assert jwt_rules_for(policies, "data", frozenset()) == (IN_MESH, REMOTE, HTTPS)


def test_jwks_clusters_are_built_for_hosts_outside_the_mesh_only() -> None:
    model = model_with(ra(REMOTE, IN_MESH, HTTPS, LOCAL))
    clusters = {c.name: c for c in build_jwks_clusters(model, BACKEND_PROXY)}
    assert sorted(clusters) == ["outbound|443||idp.example.com", "outbound|8000||127.0.0.1"]
    ip = clusters["outbound|8000||127.0.0.1"]
    assert ip.type == cluster_pb2.Cluster.STATIC and not ip.HasField("transport_socket")
    tls = clusters["outbound|443||idp.example.com"]
    assert tls.type == cluster_pb2.Cluster.STRICT_DNS
    assert tls.transport_socket.name == "envoy.transport_sockets.tls"
    config = jwt_config(inbound(model)[8080])
    by_issuer = {p.issuer: p for p in config.providers.values()}
    assert by_issuer["mesh-issuer"].remote_jwks.http_uri.cluster == f"outbound|9080||{BACKEND}"
    assert build_jwks_clusters(model, DATA_PROXY) == []  # another namespace: not selected


def principal(value: str) -> dict[str, Any]:
    return as_dict(request_principal(value))


def meta(claim: str, **value: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "filter": "envoy.filters.http.jwt_authn",
            "path": [{"key": "payload"}, {"key": claim}],
            "value": value,
        }
    }


def test_a_request_principal_is_iss_and_sub_split_at_each_slash() -> None:
    assert principal("*") == meta("iss", present_match=True)
    both = principal("https://idp/alice")
    splits = [(ids["and_ids"]["ids"][0], ids["and_ids"]["ids"][1]) for ids in both["or_ids"]["ids"]]

    def exact(claim: str, value: str) -> dict[str, Any]:
        return meta(claim, string_match={"exact": value})

    assert splits == [
        (exact("iss", "https:"), exact("sub", "/idp/alice")),
        (exact("iss", "https:/"), exact("sub", "idp/alice")),
        (exact("iss", "https://idp"), exact("sub", "alice")),
    ]
    assert principal("iss/sub") == {
        "and_ids": {
            "ids": [
                meta("iss", string_match={"exact": "iss"}),
                meta("sub", string_match={"exact": "sub"}),
            ]
        }
    }
    assert principal("nosplit") == {"not_id": {"any": True}}
    prefix = principal("iss/*")["or_ids"]["ids"]
    assert prefix[0] == meta("iss", string_match={"prefix": "iss/"})
    assert prefix[1]["and_ids"]["ids"][1] == meta("sub", present_match=True)
    suffix = principal("*/bob")["or_ids"]["ids"]
    assert suffix[0] == meta("sub", string_match={"suffix": "/bob"})
    assert suffix[1]["and_ids"]["ids"] == [
        meta("iss", present_match=True),
        meta("sub", string_match={"exact": "bob"}),
    ]


def rbac_principals(model: Any) -> list[Any]:
    (rbac_filter,) = [f for f in http_filters(inbound(model)[8080]) if f.name.endswith(".rbac")]
    rbac = http_rbac_pb2.RBAC()
    assert rbac_filter.typed_config.Unpack(rbac)
    return [as_dict(p) for policy in rbac.rules.policies.values() for p in policy.principals]


def test_request_principals_and_claims_become_metadata_principals() -> None:
    rule = AuthzRule(
        sources=(Source(request_principals=("*",), not_request_principals=("a/b",)),),
        conditions=(
            Condition("request.auth.claims[groups]", ("admin",)),
            Condition("request.auth.claims[org][team]", ("core*",)),
            Condition("request.auth.audiences", ("aud",)),
        ),
    )
    ap = AuthorizationPolicy("default", "jwt", rules=(rule,))
    (found,) = rbac_principals(model_with(ra(LOCAL), aps=(ap,)))
    ids = found["and_ids"]["ids"]
    assert ids[0] == {"or_ids": {"ids": [meta("iss", present_match=True)]}}
    assert ids[1] == {"not_id": {"or_ids": {"ids": [principal("a/b")]}}}

    def claim(path: list[str], matcher: dict[str, str]) -> dict[str, Any]:
        one = {"string_match": matcher}
        either = {"or_match": {"value_matchers": [one, {"list_match": {"one_of": one}}]}}
        return {
            "or_ids": {
                "ids": [
                    {
                        "metadata": {
                            "filter": "envoy.filters.http.jwt_authn",
                            "path": [{"key": k} for k in ("payload", *path)],
                            "value": either,
                        }
                    }
                ]
            }
        }  # fmt: skip

    assert ids[2] == claim(["groups"], {"exact": "admin"})
    assert ids[3] == claim(["org", "team"], {"prefix": "core"})
    assert ids[4] == claim(["aud"], {"exact": "aud"})


def test_an_allow_rule_on_request_principals_is_dropped_on_tcp_chains() -> None:
    ap = AuthorizationPolicy(
        "default", "p", rules=(AuthzRule((Source(request_principals=("*",)),)),)
    )
    listeners = inbound(model_with(ra(LOCAL), aps=(ap,)))
    for listener in listeners.values():
        first = listener.filter_chains[0].filters[0]
        if first.name == "envoy.filters.network.rbac":
            assert "ns[default]-policy[p]-rule[0]" not in str(first.typed_config.value)


EVERYTHING = (
    ra(LOCAL, REMOTE, IN_MESH, HTTPS, ANY_ISSUER),
    AuthorizationPolicy(
        "default",
        "jwt",
        rules=(
            AuthzRule(
                sources=(Source(request_principals=("remote-issuer/*", "*@x", "a/b/c")),),
                conditions=(Condition("request.auth.claims[groups]", ("g",), ("h",)),),
            ),
        ),
    ),
)


@pytest.mark.parametrize("proxy", [BACKEND_PROXY, FRONTEND_PROXY], ids=lambda p: p.pod_name)
def test_envoy_validates_jwt_authn_jwks_clusters_and_rbac(proxy: Proxy, tmp_path: Path) -> None:
    ras, ap = EVERYTHING
    assert isinstance(ras, RequestAuthentication) and isinstance(ap, AuthorizationPolicy)
    model = model_with(ras, aps=(ap,))
    resources = build_resources(model, proxy)
    assert any(c.name == "outbound|8000||127.0.0.1" for c in resources[types.CLUSTER])
    result = envoy_validate(inlined_config(proxy, resources), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout


def test_a_request_authentication_edit_rebuilds_only_what_reads_it() -> None:
    before = SnapshotBuilder(model_with())
    old = before.snapshot(BACKEND_PROXY)
    after = SnapshotBuilder(model_with(ra(REMOTE)), previous=before)
    new = after.snapshot(BACKEND_PROXY)
    for type_url in (types.ENDPOINT, types.ROUTE):
        assert new.get(type_url) is old.get(type_url)
    old_clusters = {r.name: r for r in old.get(types.CLUSTER)}
    new_clusters = {r.name: r for r in new.get(types.CLUSTER)}
    assert set(new_clusters) - set(old_clusters) == {"outbound|8000||127.0.0.1"}
    assert all(new_clusters[n] is r for n, r in old_clusters.items() if n.startswith("outbound"))
    old_listeners = {r.name: r for r in old.get(types.LISTENER)}
    new_listeners = {r.name: r for r in new.get(types.LISTENER)}
    changed = {n for n, r in new_listeners.items() if old_listeners[n] is not r}
    assert changed == {f"{BACKEND_PROXY.ip}_{port}" for port in inbound(model_with())}


GATEWAY_MESH = """
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec: {selector: {app: backend}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: frontend, namespace: default}
spec: {selector: {app: frontend}, ports: [{name: http, port: 8080}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [api.example.com]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [istio-system/gw]
  http:
    - match:
        - headers: {"@request.auth.claims.groups": {exact: admin}}
          withoutHeaders: {"@request.auth.claims[org][team]": {prefix: web}}
      route: [{destination: {host: backend, port: {number: 9080}}}]
    - route: [{destination: {host: frontend, port: {number: 8080}}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: gw-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules: [{issuer: idp, jwksUri: "http://127.0.0.1:8000/jwks"}]
"""

GATEWAY = Proxy(
    ProxyType.ROUTER,
    "127.0.9.5",
    "gw-0",
    "istio-system",
    "istio-system.svc.cluster.local",
    labels=labels_of({"istio": "ingressgateway"}),
)


def test_a_gateway_verifies_tokens_and_routes_on_claims(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mesh.yaml").write_text(GATEWAY_MESH)
    model = load_dir(tmp_path / "config").model
    resources = build_resources(model, GATEWAY)
    (listener,) = resources[types.LISTENER]
    config = jwt_config(listener)
    assert config.providers["origins-0"].clear_route_cache
    names = [f.name for f in http_filters(listener)]
    assert names[0] == "envoy.filters.http.jwt_authn" and names[-1].endswith("router")
    (route_config,) = resources[types.ROUTE]
    first = route_config.virtual_hosts[0].routes[0].match
    assert not first.headers
    claims = [as_dict(m) for m in first.dynamic_metadata]
    assert [[s["key"] for s in m["path"]] for m in claims] == [
        ["payload", "groups"],
        ["payload", "org", "team"],
    ]
    assert claims[1]["invert"] is True
    default = route_config.virtual_hosts[0].routes[1]  # a claim match is no catch-all
    assert default.route.cluster == "outbound|8080||frontend.default.svc.cluster.local"
    assert any(c.name == "outbound|8000||127.0.0.1" for c in resources[types.CLUSTER])
    result = envoy_validate(inlined_config(GATEWAY, resources), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
