"""AuthorizationPolicy fidelity to Istio: validation (one table), then what it becomes in Envoy.

The table holds every ``ap_*`` probe of the validation research (ids ``probe ap_...``, the
probe's document as written) and the rules around them: ``serviceAccounts``, DENY without
rules, ``provider``, and the ``istio.io/dry-run`` annotation. A row expects either
acceptance (``None``) or the refused field path and a fragment of the reason. Rows marked
"gap" are refused by pyistiod on purpose though Istio accepts them (documented gaps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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
from translators.mesh.documents.kinds import parse_object
from translators.mesh.documents.security.authorization import AuthorizationPolicyObject
from translators.mesh.model.policies import AuthorizationPolicy, Policies
from translators.mesh.model.proxy import Proxy

DRY_RUN = "metadata.annotations.istio.io/dry-run"
SOURCE = "spec.rules[0].from[0].source"
REVIEWS = {"matchLabels": {"app": "reviews"}}


def ap(
    spec: dict[str, Any] | None = None,
    *,
    annotations: dict[str, Any] | None = None,
    name: str = "p",
    api: str = "security.istio.io/v1",
    kind: str = "AuthorizationPolicy",
) -> dict[str, Any]:
    """A document in namespace ``default``."""
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec or {}}


def source(**fields: Any) -> dict[str, Any]:
    """A policy for ``app=reviews`` with one rule of one source."""
    return {"selector": REVIEWS, "rules": [{"from": [{"source": fields}]}]}


def when(key: str, *values: str) -> dict[str, Any]:
    return {"rules": [{"when": [{"key": key, "values": list(values)}]}]}


DENY_ALL = {"selector": REVIEWS, "action": "DENY", "rules": [{}]}
ACCEPT = None

CASES = [
    # --- the probes, as written ---
    pytest.param(ap(DENY_ALL), ACCEPT, id="probe ap_deny_empty_rule"),
    pytest.param(
        ap({"selector": REVIEWS, "action": "DENY"}),
        ("spec.rules", "DENY action without `rules` is meaningless"),
        id="probe ap_deny_no_rules",
    ),
    pytest.param(
        ap(DENY_ALL, annotations={"istio.io/dry-run": "1"}), ACCEPT, id="probe ap_dry_run_one"
    ),
    pytest.param(
        ap(DENY_ALL, annotations={"istio.io/dry-run": "true"}), ACCEPT, id="probe ap_dry_run_true"
    ),
    pytest.param(
        ap(DENY_ALL, annotations={"istio.io/dry-run": "yes"}),
        (DRY_RUN, "strconv.ParseBool"),
        id="probe ap_dry_run_yes",
    ),
    pytest.param(
        ap(source(notServiceAccounts=["bad-sa"])), ACCEPT, id="probe ap_not_service_accounts"
    ),
    pytest.param(
        ap({"selector": REVIEWS, "rules": [{"to": [{"operation": {"paths": ["/api/{*}/x"]}}]}]}),
        ("spec.rules[0].to[0].operation.paths[0]", "path templates are not supported"),
        id="probe ap_path_template (gap)",
    ),
    pytest.param(
        ap({"selector": REVIEWS, "action": "ALLOW", "provider": {"name": "ext"}, "rules": [{}]}),
        ("spec.provider", "must not be with non CUSTOM action, found ALLOW"),
        id="probe ap_provider_with_allow",
    ),
    pytest.param(
        ap(source(requestPrincipals=["*"])),
        ACCEPT,
        id="probe ap_request_principals",
    ),
    pytest.param(
        ap(source(notRequestPrincipals=["https://issuer.example.com/*"])),
        ACCEPT,
        id="notRequestPrincipals",
    ),
    pytest.param(
        ap(source(requestPrincipals=[""])),
        (f"{SOURCE}.requestPrincipals[0]", "non-empty string"),
        id="requestPrincipals empty value",
    ),
    pytest.param(
        ap({"selector": {"matchLabels": {}}, "rules": [{}]}),
        ACCEPT,
        id="probe ap_selector_empty_match_labels",
    ),
    pytest.param(
        ap({"selector": {"matchLabels": {"app*": "x"}}, "rules": [{}]}),
        ("spec.selector.matchLabels.app*", "label key must be a qualified name"),
        id="probe ap_selector_wildcard_key",
    ),
    pytest.param(
        ap({"selector": {"matchLabels": {"app": "*"}}, "rules": [{}]}),
        ("spec.selector.matchLabels.app", "wildcard is not supported in selector"),
        id="probe ap_selector_wildcard_value",
    ),
    pytest.param(
        ap(source(serviceAccounts=["default/*"])),
        (f"{SOURCE}.serviceAccounts[0]", "wildcards are not allowed"),
        id="probe ap_service_account_wildcard",
    ),
    pytest.param(
        ap(source(serviceAccounts=["default/productpage"])), ACCEPT, id="probe ap_service_accounts"
    ),
    pytest.param(
        ap(source(serviceAccounts=["default/productpage"], namespaces=["default"])),
        (SOURCE, "cannot set serviceAccounts or notServiceAccounts with principals"),
        id="probe ap_service_accounts_with_namespaces",
    ),
    pytest.param(
        ap(when("foo.bar", "x")),
        ("spec.rules[0].when[0].key", "'foo.bar' is not supported"),
        id="probe ap_when_unknown_key",
    ),
    # --- serviceAccounts (Istio's CheckServiceAccount) ---
    pytest.param(ap(source(serviceAccounts=["productpage"])), ACCEPT, id="bare service account"),
    pytest.param(
        ap(when("source.serviceAccount", "ns/sa")), ACCEPT, id="when source.serviceAccount"
    ),
    pytest.param(
        ap(source(serviceAccounts=[f"sa-{i}" for i in range(17)])),
        (f"{SOURCE}.serviceAccounts", "may not have more than 16 values"),
        id="17 service accounts",
    ),
    pytest.param(
        ap(source(serviceAccounts=["ns/" + "s" * 318])),
        (f"{SOURCE}.serviceAccounts[0]", "at most 320 characters"),
        id="321 characters",
    ),
    pytest.param(
        ap(source(serviceAccounts=["a/b/c"])),
        (f"{SOURCE}.serviceAccounts[0]", "'serviceAccount' or 'namespace/serviceAccount'"),
        id="two slashes",
    ),
    pytest.param(
        ap(source(notServiceAccounts=["/sa"])),
        (f"{SOURCE}.notServiceAccounts[0]", "'namespace/serviceAccount', got '/sa'"),
        id="empty namespace",
    ),
    pytest.param(
        ap(source(serviceAccounts=["ns/"])),
        (f"{SOURCE}.serviceAccounts[0]", "got 'ns/'"),
        id="empty service account",
    ),
    pytest.param(
        ap(source(notServiceAccounts=["a"], principals=["cluster.local/ns/a/sa/b"])),
        (SOURCE, "cannot set serviceAccounts"),
        id="notServiceAccounts with principals",
    ),
    pytest.param(
        ap(source(serviceAccounts=["a"], notNamespaces=["x"])),
        (SOURCE, "cannot set serviceAccounts"),
        id="serviceAccounts with notNamespaces",
    ),
    pytest.param(
        ap(source(serviceAccounts=["a"], ipBlocks=["10.0.0.0/8"])), ACCEPT, id="with ipBlocks"
    ),
    pytest.param(
        ap(when("source.serviceAccount", "ns/*")),
        ("spec.rules[0].when[0].values[0]", "wildcards are not allowed"),
        id="when source.serviceAccount wildcard",
    ),
    # --- action rules ---
    pytest.param(
        ap({"action": "DENY", "rules": []}),
        ("spec.rules", "add an empty rule `{}`"),
        id="DENY with an empty rules list",
    ),
    pytest.param(ap({"action": "AUDIT"}), ACCEPT, id="AUDIT without rules"),
    pytest.param(
        ap({"action": "DENY", "provider": {"name": "ext"}, "rules": [{}]}),
        ("spec.provider", "found DENY"),
        id="provider with DENY",
    ),
    pytest.param(
        ap({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]}),
        ("spec.action", "CUSTOM (external authorization"),
        id="CUSTOM (gap)",
    ),
    pytest.param(ap(when("request.auth.claims[iss]", "x")), ACCEPT, id="request.auth claims"),
    pytest.param(ap(when("request.auth.claims[nested][inner]", "x")), ACCEPT, id="nested claim"),
    pytest.param(ap(when("request.auth.audiences", "a")), ACCEPT, id="request.auth.audiences"),
    pytest.param(ap(when("request.auth.principal", "i/s")), ACCEPT, id="request.auth.principal"),
    pytest.param(ap(when("request.auth.presenter", "p")), ACCEPT, id="request.auth.presenter"),
    pytest.param(
        ap(when("request.auth.claims", "x")),
        ("spec.rules[0].when[0].key", "is not a claim"),
        id="claims without a name",
    ),
    pytest.param(
        ap(when("request.auth.issuer", "x")),
        ("spec.rules[0].when[0].key", "is not supported"),
        id="unknown request.auth key",
    ),
    # --- istio.io/dry-run (Istio's checkDryRunAnnotation) ---
    *(
        pytest.param(ap(DENY_ALL, annotations={"istio.io/dry-run": v}), ACCEPT, id=f"dry-run {v}")
        for v in ("t", "T", "TRUE", "True", "0", "f", "F", "FALSE", "False", "false")
    ),
    *(
        pytest.param(
            ap(DENY_ALL, annotations={"istio.io/dry-run": v}),
            (DRY_RUN, "Go's strconv.ParseBool"),
            id=f"dry-run {v!r}",
        )
        for v in ("yes", "on", "", "tRUE", " true", True)
    ),
    pytest.param(
        ap({"action": "AUDIT", "rules": [{}]}, annotations={"istio.io/dry-run": "true"}),
        (DRY_RUN, "only supports action ALLOW/DENY, found action AUDIT"),
        id="dry-run on AUDIT",
    ),
    pytest.param(
        ap(
            {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
            annotations={"istio.io/dry-run": "true"},
            api="networking.istio.io/v1",
            kind="VirtualService",
            name="dry",
        ),
        (DRY_RUN, "default/dry has unsupported annotation istio.io/dry-run, please remove"),
        id="probe vs_dry_run_annotation",
    ),
    pytest.param(
        ap(
            {"mtls": {"mode": "STRICT"}},
            annotations={"istio.io/dry-run": "false"},
            kind="PeerAuthentication",
        ),
        (DRY_RUN, "has unsupported annotation"),
        id="dry-run on PeerAuthentication",
    ),
    pytest.param(
        ap(
            {"ports": [{"port": 80}]},
            annotations={"istio.io/dry-run": "yes"},
            api="v1",
            kind="Service",
        ),
        ACCEPT,
        id="dry-run on a Kubernetes Service is not Istio's to check",
    ),
]


@pytest.mark.parametrize(("doc", "refused"), CASES)
def test_validation_as_istio(doc: dict[str, Any], refused: tuple[str, str] | None) -> None:
    result = parse_object(doc, path="probe.yaml", document=0)
    found = {e.field: e.reason for e in result.errors}
    if refused is None:
        assert found == {} and result.obj is not None
        return
    field, fragment = refused
    assert field in found, found
    assert fragment in found[field]


def policy_of(doc: dict[str, Any]) -> AuthorizationPolicy:
    obj = parse_object(doc, path="a.yaml", document=0).obj
    assert isinstance(obj, AuthorizationPolicyObject)
    return obj.policy


def test_service_accounts_are_read_as_namespace_and_name() -> None:
    doc = ap(source(serviceAccounts=["productpage", "other/sa"]))
    doc["metadata"]["namespace"] = "shop"
    (rule,) = policy_of(doc).rules
    assert rule.sources[0].service_accounts == ("shop/productpage", "other/sa")
    (rule,) = policy_of(ap(when("source.serviceAccount", "sa"))).rules
    assert rule.conditions[0].values == ("default/sa",)


@pytest.mark.parametrize(("value", "dry_run"), [("true", True), ("1", True), ("False", False)])
def test_dry_run_is_carried_to_the_model(value: str, dry_run: bool) -> None:
    assert policy_of(ap(DENY_ALL, annotations={"istio.io/dry-run": value})).dry_run is dry_run
    assert policy_of(ap(DENY_ALL)).dry_run is False


# --- what Envoy gets ------------------------------------------------------------------------

DB_PROXY = sidecar("db-1", "127.0.2.1", namespace="data", app="db")
ANY_POLICY = {
    "permissions": [{"and_rules": {"rules": [{"any": True}]}}],
    "principals": [{"and_ids": {"ids": [{"any": True}]}}],
}


def policies(*docs: dict[str, Any], namespace: str = "default") -> Policies:
    aps = []
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        aps.append(policy_of(doc))
    return Policies.build(authorization_policies=tuple(aps))


def rbac_filters(found: Policies, proxy: Proxy, port: int) -> list[dict[str, Any]]:
    """The RBAC filter configs of the inbound chain on ``port`` (HTTP or TCP), as dicts."""
    listeners = build_inbound_listeners(meshed_model(found), proxy)
    (listener,) = [x for x in listeners if x.address.socket_address.port_value == port]
    chain = listener.filter_chains[0]
    hcm = hcm_pb2.HttpConnectionManager()
    if chain.filters[0].typed_config.Unpack(hcm):
        typed = [(f.typed_config, http_rbac_pb2.RBAC()) for f in hcm.http_filters[:-1]]
    else:
        typed = [(f.typed_config, network_rbac_pb2.RBAC()) for f in chain.filters[:-1]]
    out = []
    for config, rbac in typed:
        assert config.Unpack(rbac)
        out.append(json_format.MessageToDict(rbac, preserving_proto_field_name=True))
    return out


def test_a_dry_run_deny_all_enforces_nothing_and_is_a_shadow_rule() -> None:
    dry = ap(DENY_ALL | {"selector": {}}, annotations={"istio.io/dry-run": "true"}, name="dry")
    (config,) = rbac_filters(policies(dry), BACKEND_PROXY, 8080)
    assert "rules" not in config  # unset: nothing enforced
    assert config["shadow_rules"] == {
        "action": "DENY",
        "policies": {"ns[default]-policy[dry]-rule[0]": ANY_POLICY},
    }
    assert config["shadow_rules_stat_prefix"] == "istio_dry_run_deny_"
    (tcp,) = rbac_filters(policies(dry, namespace="data"), DB_PROXY, 5432)
    assert "rules" not in tcp and tcp["shadow_rules"]["action"] == "DENY"
    assert tcp["stat_prefix"] == "tcp."


def test_enforced_and_dry_run_policies_of_one_action_share_a_filter() -> None:
    dry = ap({"rules": [{}]}, annotations={"istio.io/dry-run": "1"}, name="dry")
    live = ap({"rules": [{}]}, annotations={"istio.io/dry-run": "false"}, name="live")
    (config,) = rbac_filters(policies(dry, live), BACKEND_PROXY, 8080)
    assert list(config["rules"]["policies"]) == ["ns[default]-policy[live]-rule[0]"]
    assert list(config["shadow_rules"]["policies"]) == ["ns[default]-policy[dry]-rule[0]"]
    assert config["shadow_rules"].get("action", "ALLOW") == "ALLOW"
    assert config["shadow_rules_stat_prefix"] == "istio_dry_run_allow_"


def test_an_enforced_policy_has_no_shadow_rules() -> None:
    (config,) = rbac_filters(policies(ap(DENY_ALL | {"selector": {}})), BACKEND_PROXY, 8080)
    assert config["rules"]["action"] == "DENY"
    assert "shadow_rules" not in config and "shadow_rules_stat_prefix" not in config


def test_service_accounts_match_istio_spiffe_regex() -> None:
    doc = ap({"rules": [{"from": [{"source": {"notServiceAccounts": ["sleep"]}}]}]})
    (config,) = rbac_filters(policies(doc), BACKEND_PROXY, 8080)
    (found,) = config["rules"]["policies"].values()
    (principal,) = found["principals"]
    (negated,) = principal["and_ids"]["ids"]  # notServiceAccounts: not(or(...))
    (account,) = negated["not_id"]["or_ids"]["ids"]
    assert account["authenticated"]["principal_name"] == {
        "safe_regex": {"regex": "spiffe://.+/ns/default/(.+/|)sa/sleep(/.+)?"}
    }


@pytest.mark.parametrize("proxy", [BACKEND_PROXY, DB_PROXY], ids=lambda p: p.pod_name)
def test_envoy_accepts_dry_run_and_service_account_rules(proxy: Proxy, tmp_path: Path) -> None:
    docs = [
        ap(DENY_ALL | {"selector": {}}, annotations={"istio.io/dry-run": "true"}, name="dry"),
        ap(source(serviceAccounts=["sleep", "data/client"]) | {"selector": {}}, name="sa"),
        ap({"rules": [{}]}, annotations={"istio.io/dry-run": "t"}, name="dry-allow"),
    ]
    model = meshed_model(policies(*docs, namespace=proxy.namespace))
    resources = build_resources(model, proxy)
    result = envoy_validate(inlined_config(proxy, resources), tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
