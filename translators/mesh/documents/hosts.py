"""Istio's rules for host names, and for who may see an object (``exportTo``).

One place for what every reader of a host asks (VirtualService hosts and
destinations, Gateway and Sidecar hosts, ServiceEntry hosts and addresses).
Invariants, as Istio's ``agent.ValidateFQDN`` and ``ValidateWildcardDomain``:

1. A DNS name has 1-255 characters; its labels are DNS-1123 labels where
   upper case is allowed (``labels.IsDNS1123Label``); one trailing dot is
   allowed; the last label may not be all digits, so an IP address is no
   DNS name.
2. With ``wildcard``, the first label may also be ``*``, ``*foo`` or
   ``*-foo``; ``is_partial_wildcard`` tells the last two apart, which Istio
   accepts only with a warning (ServiceEntry) or not at all (routing).
3. Messages are Istio's words: ``domain name "x" invalid (label "y" invalid)``.
"""

from __future__ import annotations

import re

from translators.mesh.documents import fields as v

GO_INTEGER = re.compile(r"^[+-]?[0-9]+$")
"""What Go's ``strconv.Atoi`` takes: an optional sign and digits."""

_WILDCARD_LABEL = re.compile(r"^(\*|(\*|\*-)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)$")


def domain_problem(name: str, *, wildcard: bool = False) -> str | None:
    """Why ``name`` is no DNS name (invariants 1-2), or ``None`` when it is one."""
    if not name:
        return "empty domain name not allowed"
    if len(name) > 255:
        return f"domain name {name!r} too long (max 255)"
    rest = name
    if wildcard:
        first, dot, rest = name.partition(".")
        if len(first) > 63 or not _WILDCARD_LABEL.match(first):
            return f"domain name {name!r} invalid (label {first!r} invalid)"
        if not dot:
            return None
    labels = rest.split(".")
    if GO_INTEGER.match(labels[-1]):
        return f"domain name {name!r} invalid (top level domain {labels[-1]!r} is all-numeric)"
    for i, label in enumerate(labels):
        if i == len(labels) - 1 and label == "":
            return None  # one trailing dot: 'istio.io.'
        if not v.is_istio_label(label):
            return f"domain name {name!r} invalid (label {label!r} invalid)"
    return None


def is_partial_wildcard(host: str) -> bool:
    """Istio's ``ValidatePartialWildCard`` fails: a ``*`` other than ``*`` alone or ``*.``."""
    return "*" in host and host != "*" and not host.startswith("*.")


def export_to_list(p: v.Problems, raw: object, field: str, namespace: str) -> frozenset[str]:
    """Istio's ``exportTo``: ``.`` becomes ``namespace``; ``*`` and ``~`` stand alone."""
    out: set[str] = set()
    items = v.sequence(p, raw, field)
    for i, item in enumerate(items):
        text = v.string(p, item, f"{field}[{i}]", required=True)
        if text is None:
            continue
        if text in ("*", "~") and len(items) > 1:
            p.add(f"{field}[{i}]", f"{text!r} must be the only entry")
        elif text not in ("*", "~", ".") and not v.is_dns_label(text):
            p.add(f"{field}[{i}]", f"must be '.', '*', '~' or a namespace, got {text!r}")
        out.add(namespace if text == "." else text)
    return frozenset(out)
