"""One AuthorizationPolicy rule as one Envoy RBAC ``Policy``, as Istio's ``authz/model`` builds it.

Invariants (Istio's ``model.New`` and ``Generate``):

1. A rule becomes ``Policy{permissions, principals}``: one permission per
   ``to`` entry and one principal per ``from`` entry (ORed by Envoy), each
   the AND of its fields; with no ``to`` (``from``) there is one that
   matches anything. ``when`` conditions are ANDed into every permission
   (destination.*, connection.sni) or every principal (source.*, remote.ip,
   request.headers).
2. Within a field, ``values`` are ORed and ``notValues`` become
   ``not(or(...))``; the two are ANDed. Field order follows Istio's
   (hosts, methods, paths, ports; principals, request principals, service
   accounts, namespaces, remote IPs, IPs), then the conditions in the order written.
3. HTTP-only fields (hosts, methods, paths, request.headers) cannot be
   checked on a TCP chain. In an ALLOW policy the whole rule is then dropped
   (``rule_policy`` returns None: less is allowed); in DENY and AUDIT only
   the value is dropped (more is denied or logged), Istio's ``checkError``.
4. ``requestPrincipals`` and ``request.auth.*`` read a verified JWT
   (``request_principals``); they are HTTP-only like headers.
5. Identities are the peer certificate's URI SAN: ``principals`` are
   written without ``spiffe://`` and may start or end with ``*``;
   ``namespaces`` match ``.*/ns/NS/.*`` on it; a service account
   ``NS/SA`` matches Istio's ``spiffe://.+/ns/NS/(.+/|)sa/SA(/.+)?``, so it
   holds in any trust domain, as Istio's ``serviceAccountRegex`` does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from envoy.config.core.v3 import address_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.type.matcher.v3 import path_pb2, regex_pb2, string_pb2

from translators.envoy.listeners.request_principals import request_auth_principal
from translators.mesh.model.policies import AuthzAction, AuthzRule, Operation, Source, header_name

SPIFFE_PREFIX = "spiffe://"
_PERMISSION_KEYS = frozenset({"destination.ip", "destination.port", "connection.sni"})

Permission = rbac_pb2.Permission
Principal = rbac_pb2.Principal


class _HttpOnly:
    """Marks a value that an ALLOW rule on a TCP chain cannot express."""


_HTTP_ONLY = _HttpOnly()


@dataclass(frozen=True, slots=True)
class _Field:
    """One attribute test: ``key`` in ``values`` and not in ``not_values``."""

    key: str
    values: tuple[str, ...]
    not_values: tuple[str, ...] = ()


def rule_policy(rule: AuthzRule, action: AuthzAction, for_tcp: bool) -> rbac_pb2.Policy | None:
    """The RBAC policy for ``rule``; None if it must be dropped (invariant 3)."""
    when_perm = [_Field(c.key, c.values, c.not_values) for c in rule.conditions if _is_perm(c.key)]
    when_prin = [
        _Field(c.key, c.values, c.not_values) for c in rule.conditions if not _is_perm(c.key)
    ]
    perm_lists = [[*_operation_fields(op), *when_perm] for op in rule.operations] or [when_perm]
    prin_lists = [[*_source_fields(src), *when_prin] for src in rule.sources] or [when_prin]
    lenient = action is not AuthzAction.ALLOW
    permissions = [_and(fields, _permission, for_tcp, lenient, _perm_ops) for fields in perm_lists]
    principals = [_and(fields, _principal, for_tcp, lenient, _prin_ops) for fields in prin_lists]
    if any(p is None for p in permissions) or any(p is None for p in principals):
        return None
    return rbac_pb2.Policy(
        permissions=[p for p in permissions if isinstance(p, rbac_pb2.Permission)],
        principals=[p for p in principals if isinstance(p, rbac_pb2.Principal)],
    )


def _is_perm(key: str) -> bool:
    return key in _PERMISSION_KEYS


def _operation_fields(op: Operation) -> list[_Field]:
    pairs = (
        (":authority", op.hosts, op.not_hosts),
        (":method", op.methods, op.not_methods),
        ("path", op.paths, op.not_paths),
        ("destination.port", op.ports, op.not_ports),
    )
    return [_Field(k, v, n) for k, v, n in pairs if v or n]


def _source_fields(src: Source) -> list[_Field]:
    pairs = (
        ("source.principal", src.principals, src.not_principals),
        ("request.auth.principal", src.request_principals, src.not_request_principals),
        ("source.serviceAccount", src.service_accounts, src.not_service_accounts),
        ("source.namespace", src.namespaces, src.not_namespaces),
        ("remote.ip", src.remote_ip_blocks, src.not_remote_ip_blocks),
        ("source.ip", src.ip_blocks, src.not_ip_blocks),
    )
    return [_Field(k, v, n) for k, v, n in pairs if v or n]


@dataclass(frozen=True, slots=True)
class _Ops:
    """How to combine permissions or principals: and, or, not, any."""

    and_: Callable[[list[object]], object]
    or_: Callable[[list[object]], object]
    not_: Callable[[object], object]
    any_: Callable[[], object]


_perm_ops = _Ops(
    lambda xs: Permission(and_rules=Permission.Set(rules=xs)),
    lambda xs: Permission(or_rules=Permission.Set(rules=xs)),
    lambda x: Permission(not_rule=x),
    lambda: Permission(any=True),
)
_prin_ops = _Ops(
    lambda xs: Principal(and_ids=Principal.Set(ids=xs)),
    lambda xs: Principal(or_ids=Principal.Set(ids=xs)),
    lambda x: Principal(not_id=x),
    lambda: Principal(any=True),
)


def _and(
    fields: Sequence[_Field],
    make: Callable[[str, str, bool], object],
    for_tcp: bool,
    lenient: bool,
    ops: _Ops,
) -> object | None:
    """AND of the fields (``any`` if none); None when a strict (ALLOW) rule must be dropped."""
    terms: list[object] = []
    for f in fields:
        for values, negate in ((f.values, False), (f.not_values, True)):
            made = [make(f.key, value, for_tcp) for value in values]
            if any(m is _HTTP_ONLY for m in made) and not lenient:
                return None
            kept = [m for m in made if m is not _HTTP_ONLY]
            if kept:
                terms.append(ops.not_(ops.or_(kept)) if negate else ops.or_(kept))
    return ops.and_(terms or [ops.any_()])


def _permission(key: str, value: str, for_tcp: bool) -> rbac_pb2.Permission | _HttpOnly:
    if key == "destination.port":
        return Permission(destination_port=int(value))
    if key == "destination.ip":
        return Permission(destination_ip=cidr(value))
    if key == "connection.sni":
        return Permission(requested_server_name=string_matcher(value))
    if for_tcp:
        return _HTTP_ONLY
    if key == "path":
        return Permission(url_path=path_pb2.PathMatcher(path=string_matcher(value)))
    return Permission(header=header_matcher(key, value, ignore_case=key == ":authority"))


def _principal(key: str, value: str, for_tcp: bool) -> rbac_pb2.Principal | _HttpOnly:
    if key == "source.principal":
        return _authenticated(string_matcher(value, SPIFFE_PREFIX))
    if key == "source.namespace":
        return _authenticated(regex(f".*/ns/{value.replace('*', '.*')}/.*"))
    if key == "source.serviceAccount":
        return _authenticated(regex(service_account_regex(value)))
    if key == "source.ip":
        return Principal(direct_remote_ip=cidr(value))
    if key == "remote.ip":
        return Principal(remote_ip=cidr(value))
    if for_tcp:
        return _HTTP_ONLY
    if key.startswith("request.auth."):
        return request_auth_principal(key, value, string_matcher)
    return Principal(header=header_matcher(header_name(key), value))


def _authenticated(matcher: string_pb2.StringMatcher) -> rbac_pb2.Principal:
    return Principal(authenticated=Principal.Authenticated(principal_name=matcher))


def service_account_regex(account: str) -> str:
    """The SPIFFE IDs of service account ``namespace/name`` in any trust domain (invariant 5)."""
    namespace, _, name = account.partition("/")
    return f"spiffe://.+/ns/{namespace}/(.+/|)sa/{name}(/.+)?"


def regex(pattern: str) -> string_pb2.StringMatcher:
    """A RE2 ``safe_regex`` string matcher (matches the whole value)."""
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=pattern))


def string_matcher(value: str, prefix: str = "") -> string_pb2.StringMatcher:
    """Istio's ``StringMatcherWithPrefix``: ``*`` any non-empty, ``*x`` suffix, ``x*`` prefix.

    ``prefix`` (``spiffe://``) is put before exact and prefix values only: a
    suffix match on the whole value needs none.
    """
    if value == "*":
        return regex(".+")
    if value.startswith("*"):
        return string_pb2.StringMatcher(suffix=value[1:])
    if value.endswith("*"):
        return string_pb2.StringMatcher(prefix=prefix + value[:-1])
    return string_pb2.StringMatcher(exact=prefix + value)


def header_matcher(
    name: str, value: str, *, ignore_case: bool = False
) -> route_components_pb2.HeaderMatcher:
    """Istio's header matcher: ``*`` means present, else a (case-insensitive) string match."""
    if value == "*":
        return route_components_pb2.HeaderMatcher(name=name, present_match=True)
    matcher = string_matcher(value)
    matcher.ignore_case = ignore_case
    return route_components_pb2.HeaderMatcher(name=name, string_match=matcher)


def cidr(value: str) -> address_pb2.CidrRange:
    """An IP or CIDR as an Envoy ``CidrRange`` (a bare IP is a /32 or /128)."""
    network = ipaddress.ip_network(value, strict=False)
    range_ = address_pb2.CidrRange(address_prefix=str(network.network_address))
    range_.prefix_len.value = network.prefixlen
    return range_
