"""Kubernetes label selectors as ``kubectl -l`` writes them, for Istio's discovery selectors.

Grammar (Kubernetes' ``labels.Parse``): requirements separated by commas, all
of which must hold: ``key=value`` (also ``==``), ``key!=value``,
``key in (a,b)``, ``key notin (a,b)``, ``key`` (exists) and ``!key`` (does not).
An empty selector matches everything. Invariants:

1. ``parse_selector`` is total: a malformed selector raises ``ValueError``
   naming the part it could not read, never anything else.
2. ``!=`` and ``notin`` hold for an object without the key, as in Kubernetes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s+\(([^()]*)\)$")
_EQ = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One condition on one label key."""

    key: str
    operator: str
    """``in``, ``notin``, ``exists`` or ``!``."""
    values: frozenset[str] = frozenset()

    def holds(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        value = labels.get(self.key)
        match self.operator:
            case "in":
                return value in self.values
            case "notin":
                return value not in self.values
            case "exists":
                return value is not None
            case _:
                return value is None


@dataclass(frozen=True, slots=True)
class Selector:
    """Requirements that must all hold (an empty one selects everything)."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with ``labels`` is selected."""
        return all(r.holds(labels) for r in self.requirements)


def parse_selector(text: str) -> Selector:
    """The selector ``text`` writes (invariant 1)."""
    return Selector(tuple(_requirement(part.strip()) for part in _split(text) if part.strip()))


def _split(text: str) -> list[str]:
    """Split at the commas that separate requirements (not those inside ``( )``)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _requirement(part: str) -> Requirement:
    if m := _SET.match(part):
        values = frozenset(v.strip() for v in m.group(4).split(",") if v.strip())
        return Requirement(m.group(1), m.group(3), values)
    if m := _EQ.match(part):
        operator = "notin" if m.group(3) == "!=" else "in"
        return Requirement(m.group(1), operator, frozenset({m.group(4)}))
    if m := _EXISTS.match(part):
        return Requirement(m.group(2), "!" if m.group(1) else "exists")
    raise ValueError(f"not a label selector requirement: {part!r}")
