"""Read AuthorizationPolicy (``security.istio.io`` v1, v1beta1) into the security model.

Invariants, following Istio's ``ValidateAuthorizationPolicy``:

1. Refused with a reason naming the alternative: action CUSTOM (external
   authorization), ``targetRef``/``targetRefs`` (they attach policies to
   gateways and waypoints, not sidecars), path templates (``{*}``, ``{**}``:
   not translated), and any ``when`` key outside ``SUPPORTED_KEYS``. Istio
   accepts all of these. ``requestPrincipals`` and the ``request.auth.*``
   keys read what a RequestAuthentication verified (a JWT); a claim key is
   ``request.auth.claims[NAME]``, nested ``[NAME][INNER]...``.
2. Refused as Istio refuses them: ``provider`` with an action other than
   CUSTOM; DENY without ``rules`` (it could never match: ``rules: [{}]``
   denies everything); the ``istio.io/dry-run`` annotation (read by
   ``meta.read_meta``) with an action other than ALLOW or DENY.
3. ``from`` and ``to``, when present, list at least one entry, and each entry
   has a non-empty ``source``/``operation``; a ``when`` condition has a key
   and at least one of ``values``/``notValues``.
4. ``serviceAccounts``/``notServiceAccounts`` (and the ``when`` key
   ``source.serviceAccount``) hold at most 16 values, each ``name`` or
   ``namespace/name`` without ``*`` and at most 320 characters, as Istio's
   ``CheckServiceAccount``; a source setting them sets no principals or
   namespaces. A bare ``name`` is put in the policy's namespace, so the model
   always holds ``namespace/name``.
5. Values are checked for their attribute: IP blocks are IPs or CIDRs, ports
   are numbers 0-65535 (kept as strings, as Istio's API has them).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from translators.mesh.documents import fields as v
from translators.mesh.documents.meta import DRY_RUN_ANNOTATION, Meta
from translators.mesh.documents.security.selector import refuse_target_refs, workload_selector
from translators.mesh.model.policies import (
    AuthorizationPolicy,
    AuthzAction,
    AuthzRule,
    Condition,
    Operation,
    Source,
    claim_path,
    header_name,
)

SUPPORTED_KEYS = (
    "source.ip",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "remote.ip",
    "request.headers[NAME]",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "request.auth.claims[NAME]",
    "destination.ip",
    "destination.port",
    "connection.sni",
)
"""The ``when`` keys pyistiod translates (``request.headers[...]`` with any header name)."""

_IP_KEYS = frozenset({"source.ip", "remote.ip", "destination.ip"})

_SOURCE_FIELDS = (
    ("principals", "notPrincipals"),
    ("requestPrincipals", "notRequestPrincipals"),
    ("namespaces", "notNamespaces"),
    ("ipBlocks", "notIpBlocks"),
    ("remoteIpBlocks", "notRemoteIpBlocks"),
    ("serviceAccounts", "notServiceAccounts"),
)
_IDENTITY_FIELDS = ("principals", "notPrincipals", "namespaces", "notNamespaces")
MAX_SERVICE_ACCOUNTS = 16
"""Istio's cap on one ``serviceAccounts`` list, to bound the generated config."""
MAX_SERVICE_ACCOUNT_LENGTH = 320
_OPERATION_FIELDS = (
    ("hosts", "notHosts"),
    ("methods", "notMethods"),
    ("paths", "notPaths"),
    ("ports", "notPorts"),
)


@dataclass(frozen=True, slots=True)
class AuthorizationPolicyObject:
    """A parsed AuthorizationPolicy with its metadata."""

    meta: Meta
    policy: AuthorizationPolicy


def parse_authorization_policy(
    p: v.Problems, doc: Mapping[str, object], meta: Meta, warnings: list[str]
) -> AuthorizationPolicyObject:
    """Read and validate an AuthorizationPolicy's ``spec`` (errors go to ``p``)."""
    spec = v.mapping(p, doc.get("spec"), "spec") or {}
    refuse_target_refs(p, spec)
    action = _action(p, spec.get("action"))
    _check_action(p, spec, action, meta)
    rules = tuple(
        _rule(p, raw, f"spec.rules[{i}]", meta.namespace)
        for i, raw in enumerate(v.sequence(p, spec.get("rules"), "spec.rules"))
    )
    policy = AuthorizationPolicy(
        meta.namespace,
        meta.name,
        action,
        workload_selector(p, spec),
        rules,
        dry_run=meta.dry_run is True,
    )
    return AuthorizationPolicyObject(meta, policy)


def _action(p: v.Problems, raw: object) -> AuthzAction:
    if raw == "CUSTOM":
        p.add(
            "spec.action",
            "CUSTOM (external authorization through an extension provider) is not "
            "supported; use ALLOW, DENY or AUDIT",
        )
        return AuthzAction.ALLOW
    return v.choice(p, raw, "spec.action", AuthzAction, AuthzAction.ALLOW)


def _check_action(
    p: v.Problems, spec: Mapping[str, object], action: AuthzAction, meta: Meta
) -> None:
    """The fields that depend on the action (invariant 2); CUSTOM was refused by ``_action``."""
    if spec.get("provider") is not None and spec.get("action") != "CUSTOM":
        p.add(
            "spec.provider",
            f"must not be with non CUSTOM action, found {action.value}: a provider names "
            "the external authorizer of a CUSTOM policy",
        )
    if action is AuthzAction.DENY and not spec.get("rules"):
        p.add(
            "spec.rules",
            "DENY action without `rules` is meaningless as it will never be triggered, "
            "add an empty rule `{}` if you want it be triggered for every request",
        )
    if meta.dry_run is not None and action not in (AuthzAction.ALLOW, AuthzAction.DENY):
        p.add(
            f"metadata.annotations.{DRY_RUN_ANNOTATION}",
            f"the annotation {DRY_RUN_ANNOTATION} currently only supports action ALLOW/DENY, "
            f"found action {action.value}",
        )


def _rule(p: v.Problems, raw: object, field: str, namespace: str) -> AuthzRule:
    m = v.mapping(p, raw, field) or {}
    sources = tuple(
        _source(p, item, f"{field}.from[{i}]", namespace)
        for i, item in enumerate(_entries(p, m, field, "from"))
    )
    operations = tuple(
        _operation(p, item, f"{field}.to[{i}]")
        for i, item in enumerate(_entries(p, m, field, "to"))
    )
    conditions = tuple(
        _condition(p, item, f"{field}.when[{i}]", namespace)
        for i, item in enumerate(v.sequence(p, m.get("when"), f"{field}.when"))
    )
    return AuthzRule(sources, operations, conditions)


def _entries(p: v.Problems, rule: Mapping[str, object], field: str, name: str) -> list[object]:
    items = list(v.sequence(p, rule.get(name), f"{field}.{name}"))
    if name in rule and rule[name] is not None and not items:
        p.add(f"{field}.{name}", "must not be empty when present: list at least one entry")
    return items


def _fields(
    p: v.Problems, raw: object, field: str, pairs: tuple[tuple[str, str], ...]
) -> tuple[Mapping[str, object], dict[str, tuple[str, ...]]]:
    m = v.mapping(p, raw, field) or {}
    values = {name: _strings(p, m.get(name), f"{field}.{name}") for pair in pairs for name in pair}
    return m, values


def _source(p: v.Problems, raw: object, field: str, namespace: str) -> Source:
    entry = v.mapping(p, raw, field) or {}
    field = f"{field}.source"
    _, got = _fields(p, entry.get("source"), field, _SOURCE_FIELDS)
    if not any(got.values()):
        p.add(
            field,
            "must not be empty: set at least one of principals, namespaces, serviceAccounts, "
            "ipBlocks, ...",
        )
    accounts, not_accounts = _source_accounts(p, got, field, namespace)
    for name in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
        _check_ips(p, got[name], f"{field}.{name}")
    return Source(
        principals=got["principals"],
        not_principals=got["notPrincipals"],
        request_principals=got["requestPrincipals"],
        not_request_principals=got["notRequestPrincipals"],
        namespaces=got["namespaces"],
        not_namespaces=got["notNamespaces"],
        ip_blocks=got["ipBlocks"],
        not_ip_blocks=got["notIpBlocks"],
        remote_ip_blocks=got["remoteIpBlocks"],
        not_remote_ip_blocks=got["notRemoteIpBlocks"],
        service_accounts=accounts,
        not_service_accounts=not_accounts,
    )


def _source_accounts(
    p: v.Problems, got: Mapping[str, tuple[str, ...]], field: str, namespace: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A source's ``serviceAccounts`` and ``notServiceAccounts`` (invariant 4)."""
    if (got["serviceAccounts"] or got["notServiceAccounts"]) and any(
        got[name] for name in _IDENTITY_FIELDS
    ):
        p.add(
            field,
            "cannot set serviceAccounts or notServiceAccounts with principals, notPrincipals, "
            "namespaces or notNamespaces: a service account already names its namespace",
        )
    return (
        _service_accounts(p, got["serviceAccounts"], f"{field}.serviceAccounts", namespace),
        _service_accounts(p, got["notServiceAccounts"], f"{field}.notServiceAccounts", namespace),
    )


def _service_accounts(
    p: v.Problems, items: tuple[str, ...], field: str, namespace: str
) -> tuple[str, ...]:
    """Service accounts as ``namespace/name``, a bare name in ``namespace`` (invariant 4)."""
    if len(items) > MAX_SERVICE_ACCOUNTS:
        p.add(
            field,
            f"may not have more than {MAX_SERVICE_ACCOUNTS} values, got {len(items)}: Istio "
            "caps the list to bound the generated config; split the rule",
        )
    out: list[str] = []
    for i, value in enumerate(items):
        reason = _service_account_problem(value)
        if reason:
            p.add(f"{field}[{i}]", reason)
            continue
        account_namespace, _, name = value.rpartition("/")
        out.append(f"{account_namespace or namespace}/{name}")
    return tuple(out)


def _service_account_problem(value: str) -> str:
    """Why ``value`` is no service account Istio accepts ('' if it is one)."""
    if "*" in value:
        return f"wildcards are not allowed in service accounts, got {value!r}"
    if len(value) > MAX_SERVICE_ACCOUNT_LENGTH:
        return f"must be at most {MAX_SERVICE_ACCOUNT_LENGTH} characters, got {len(value)}"
    account_namespace, slash, name = value.rpartition("/")
    if "/" in account_namespace or not name or (slash and not account_namespace):
        return f"must be 'serviceAccount' or 'namespace/serviceAccount', got {value!r}"
    return ""


def _operation(p: v.Problems, raw: object, field: str) -> Operation:
    entry = v.mapping(p, raw, field) or {}
    field = f"{field}.operation"
    _, got = _fields(p, entry.get("operation"), field, _OPERATION_FIELDS)
    if not any(got.values()):
        p.add(field, "must not be empty: set at least one of hosts, methods, paths, ports, ...")
    for name in ("ports", "notPorts"):
        _check_ports(p, got[name], f"{field}.{name}")
    for name in ("paths", "notPaths"):
        for i, path in enumerate(got[name]):
            if "{" in path or "}" in path:
                p.add(
                    f"{field}.{name}[{i}]",
                    f"path templates are not supported, got {path!r}: pyistiod does not "
                    "translate them to Envoy's uri_template matcher; use an exact, prefix "
                    "('/api/*') or suffix ('*/x') path",
                )
    return Operation(*(got[name] for pair in _OPERATION_FIELDS for name in pair))


def _condition(p: v.Problems, raw: object, field: str, namespace: str) -> Condition:
    m = v.mapping(p, raw, field) or {}
    key = v.string(p, m.get("key"), f"{field}.key", required=True) or ""
    values = _strings(p, m.get("values"), f"{field}.values")
    not_values = _strings(p, m.get("notValues"), f"{field}.notValues")
    if key and not values and not not_values:
        p.add(field, f"must set at least one of values or notValues for key {key!r}")
    if key.startswith("request.auth.claims") and not claim_path(key):
        p.add(
            f"{field}.key",
            f"{key!r} is not a claim: write request.auth.claims[NAME], nested claims as "
            "request.auth.claims[NAME][INNER]",
        )
    elif key and key not in SUPPORTED_KEYS and not _is_named(key):
        p.add(f"{field}.key", f"{key!r} is not supported; use one of {', '.join(SUPPORTED_KEYS)}")
    for name, items in (("values", values), ("notValues", not_values)):
        if key in _IP_KEYS:
            _check_ips(p, items, f"{field}.{name}")
        elif key == "destination.port":
            _check_ports(p, items, f"{field}.{name}")
    if key == "source.serviceAccount":
        values = _service_accounts(p, values, f"{field}.values", namespace)
        not_values = _service_accounts(p, not_values, f"{field}.notValues", namespace)
    return Condition(key, values, not_values)


def _is_named(key: str) -> bool:
    """A ``request.headers[NAME]`` or ``request.auth.claims[NAME]...`` key."""
    return bool(header_name(key) or claim_path(key))


def _strings(p: v.Problems, raw: object, field: str) -> tuple[str, ...]:
    """A list of strings; YAML integers are taken as their text (``ports: [8080]``)."""
    out: list[str] = []
    for i, item in enumerate(v.sequence(p, raw, field)):
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        text = v.string(p, item, f"{field}[{i}]", required=True)
        if text is not None:
            out.append(text)
    return tuple(out)


def _check_ips(p: v.Problems, items: tuple[str, ...], field: str) -> None:
    for i, item in enumerate(items):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            p.add(f"{field}[{i}]", f"must be an IP address or CIDR, got {item!r}")


def _check_ports(p: v.Problems, items: tuple[str, ...], field: str) -> None:
    for i, item in enumerate(items):
        if not (item.isdigit() and 0 <= int(item) <= 65535):
            p.add(f"{field}[{i}]", f"must be a port number 0-65535, got {item!r}")
