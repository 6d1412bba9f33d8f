"""AuthorizationPolicy's JWT attributes as RBAC principals on ``jwt_authn``'s metadata.

Istio matches ``requestPrincipals`` and ``request.auth.*`` on the metadata of
its own ``istio_authn`` filter, which joins a token's ``iss`` and ``sub`` into
``request.auth.principal``. Upstream Envoy has no such filter, so these
principals read the payload ``jwt_authn`` stores (``translators.envoy.jwt``,
invariant 1). Invariants:

1. A request principal ``ISS/SUB`` holds when the payload's ``iss`` and
   ``sub`` joined by ``/`` match the value. Both may hold a ``/``, so an
   exact value is the OR over every ``/`` in it of (``iss`` = left and
   ``sub`` = right). ``*`` is any verified token (an ``iss`` is present),
   ``P*`` and ``*S`` (Istio's prefix and suffix forms) split the same way:
   ``iss`` starts with ``P`` or, per ``/`` in ``P``, ``iss`` is its left
   part and ``sub`` starts with the rest; ``sub`` ends with ``S`` or, per
   ``/`` in ``S``, ``iss`` ends with its left part and ``sub`` is the rest.
   A value that no split can match becomes a principal matching nothing.
2. ``request.auth.audiences`` is the ``aud`` claim, ``request.auth.presenter``
   ``azp``, ``request.auth.claims[A][B]`` the nested claim ``A.B``; a string
   or list claim matches when the string, or one element, matches the value
   (``*``, prefix and suffix forms as for every RBAC string).
3. A request without a (verified) token has no payload: every principal here
   is false for it, so an ALLOW policy needing one refuses it (403) and a
   ``notRequestPrincipals: ["*"]`` DENY policy refuses it too.
"""

from __future__ import annotations

from collections.abc import Callable

from envoy.config.rbac.v3 import rbac_pb2
from envoy.type.matcher.v3 import string_pb2, value_pb2

from translators.envoy.jwt import claim_matcher, claim_value
from translators.mesh.model.policies import claim_path

Principal = rbac_pb2.Principal
StringMatcher = string_pb2.StringMatcher

StringMatcherFactory = Callable[[str], string_pb2.StringMatcher]
_CLAIM_KEYS = {"request.auth.audiences": ("aud",), "request.auth.presenter": ("azp",)}


def request_auth_principal(
    key: str, value: str, string_matcher: StringMatcherFactory
) -> rbac_pb2.Principal:
    """The principal of a ``request.auth.*`` key (``requestPrincipals`` is
    ``request.auth.principal``); ``string_matcher`` is the RBAC string rule."""
    if key == "request.auth.principal":
        return request_principal(value)
    path = _CLAIM_KEYS.get(key) or claim_path(key)
    return Principal(metadata=claim_matcher(path, claim_value(string_matcher(value))))


def request_principal(value: str) -> rbac_pb2.Principal:
    """The principal of one ``requestPrincipals`` value (invariant 1)."""
    if value == "*":
        return _claim("iss", None)
    if value.startswith("*"):
        options = _suffix(value[1:])
    elif value.endswith("*"):
        options = _prefix(value[:-1])
    else:
        options = [
            _both(StringMatcher(exact=iss), StringMatcher(exact=sub)) for iss, sub in _splits(value)
        ]
    if not options:
        return Principal(not_id=Principal(any=True))
    return options[0] if len(options) == 1 else Principal(or_ids=Principal.Set(ids=options))


def _prefix(prefix: str) -> list[rbac_pb2.Principal]:
    options = [_claim("iss", StringMatcher(prefix=prefix))]
    for iss, sub in _splits(prefix):
        options.append(_both(StringMatcher(exact=iss), _or_present(StringMatcher(prefix=sub))))
    return options


def _suffix(suffix: str) -> list[rbac_pb2.Principal]:
    options = [_claim("sub", StringMatcher(suffix=suffix))]
    for iss, sub in _splits(suffix):
        options.append(_both(_or_present(StringMatcher(suffix=iss)), StringMatcher(exact=sub)))
    return options


def _splits(value: str) -> list[tuple[str, str]]:
    """Every way to cut ``value`` at one ``/``."""
    return [(value[:i], value[i + 1 :]) for i, c in enumerate(value) if c == "/"]


def _or_present(matcher: string_pb2.StringMatcher) -> string_pb2.StringMatcher | None:
    """``None`` (any value) for an empty prefix or suffix, which Envoy refuses."""
    return matcher if (matcher.prefix or matcher.suffix) else None


def _both(
    iss: string_pb2.StringMatcher | None, sub: string_pb2.StringMatcher | None
) -> rbac_pb2.Principal:
    return Principal(and_ids=Principal.Set(ids=[_claim("iss", iss), _claim("sub", sub)]))


def _claim(name: str, matcher: string_pb2.StringMatcher | None) -> rbac_pb2.Principal:
    value = (
        value_pb2.ValueMatcher(present_match=True)
        if matcher is None
        else value_pb2.ValueMatcher(string_match=matcher)
    )
    return Principal(metadata=claim_matcher((name,), value))
