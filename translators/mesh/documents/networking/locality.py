"""Read a load balancer's ``localityLbSetting``, as Istio's ``agent.ValidateLocalityLbSetting``.

pyistiod does not translate locality load balancing yet; it checks the
setting so a mistake is refused as Istio refuses it, and the caller warns that
it is not applied. Invariants:

1. ``distribute`` or ``failover``, not both; ``failoverPriority`` holds no
   topology label together with ``failover``.
2. A ``distribute`` entry weighs localities 1-100, summing to 100; no
   locality of a list overlaps an earlier one (``region[/zone[/subzone]]``,
   a ``*`` only at the end, once).
3. ``failover`` goes between two different regions, with no ``/`` or ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence

from translators.mesh.documents import fields as v
from translators.mesh.documents.networking.shared_fields import integer, strings

_TOPOLOGY_LABELS = (
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone",
)  # fmt: skip


def locality_lb_setting(p: v.Problems, raw: object, field: str) -> None:
    """``localityLbSetting`` (the invariants above): checked, then dropped (the caller warns)."""
    m = v.mapping(p, raw, field)
    if m is None:
        return
    v.boolean(p, m.get("enabled"), f"{field}.enabled", True)
    distribute = v.sequence(p, m.get("distribute"), f"{field}.distribute")
    failover = v.sequence(p, m.get("failover"), f"{field}.failover")
    priority = strings(p, m.get("failoverPriority"), f"{field}.failoverPriority")
    if distribute and failover:
        p.add(field, "may not set both distribute and failover")
        return
    topology = [label for label in priority if label in _TOPOLOGY_LABELS]
    if failover and topology:
        p.add(
            f"{field}.failoverPriority",
            f"may not hold the topology label {topology[0]!r} together with failover",
        )
        return
    sources: list[str] = []
    for i, item in enumerate(distribute):
        source = _distribute(p, item, f"{field}.distribute[{i}]")
        if source is None:
            return  # as Istio, which stops at the first bad weight
        sources.append(source)
    if reason := _locality_clash(sources):
        p.add(f"{field}.distribute", reason)
    for i, item in enumerate(failover):
        _failover(p, item, f"{field}.failover[{i}]")


def _distribute(p: v.Problems, raw: object, field: str) -> str | None:
    """One ``distribute`` entry; its ``from`` locality, or ``None`` if its weights are bad."""
    m = v.mapping(p, raw, field) or {}
    source = v.string(p, m.get("from"), f"{field}.from", required=True) or ""
    to = v.mapping(p, m.get("to"), f"{field}.to") or {}
    total = 0
    for locality, weight in to.items():
        number = integer(p, weight, f"{field}.to.{locality}", 1, 100)
        if number is None:
            return None
        total += number
    if total != 100:
        p.add(f"{field}.to", f"locality weights must sum to 100, got {total}")
        return None
    if reason := _locality_clash(list(to)):
        p.add(f"{field}.to", reason)
    return source


def _failover(p: v.Problems, raw: object, field: str) -> None:
    m = v.mapping(p, raw, field) or {}
    source = v.string(p, m.get("from"), f"{field}.from") or ""
    target = v.string(p, m.get("to"), f"{field}.to") or ""
    if source == target:
        p.add(field, f"from and to must be different regions, got {source!r} for both")
    if "/" in source + target:
        p.add(field, f"from and to name regions only (no '/'), got {source!r} -> {target!r}")
    if "*" in source + target:
        p.add(field, f"from and to may not hold the '*' wildcard, got {source!r} -> {target!r}")


def _locality_clash(localities: Sequence[str]) -> str:
    """Why ``region[/zone[/subzone]]`` localities are not a valid list ('' if they are).

    A ``*`` may end a locality, once; no locality may overlap an earlier one.
    """
    seen: dict[str, dict[str, set[str]]] = {}  # region -> zone -> subzones, '*' for "all"
    for locality in localities:
        stars = locality.count("*")
        if stars > 1 or (stars and not locality.endswith("*")):
            return f"locality {locality!r} may hold one '*', at its end only"
        parts = locality.split("/", 2)
        if "*" not in seen and "" in parts:
            return f"locality {locality!r} has an empty region, zone or subzone"
        if "*" in seen or _overlaps(seen, parts):
            return f"locality {locality!r} overlaps an earlier one"
    return ""


def _overlaps(seen: dict[str, dict[str, set[str]]], parts: list[str]) -> bool:
    """Whether the locality ``parts`` overlaps one in ``seen``; if not, it is added to it."""
    region, rest = parts[0], parts[1:]
    zones = seen.get(region)
    if not rest:
        seen[region] = {"*": {"*"}}
        return zones is not None
    if zones is not None and "*" in zones:
        return True
    zones = seen.setdefault(region, {})
    subzones = zones.get(rest[0])
    if len(rest) == 1:
        zones[rest[0]] = {"*"}
        return subzones is not None
    if subzones is not None and ("*" in subzones or rest[1] in subzones):
        return True
    zones.setdefault(rest[0], set()).add(rest[1])
    return False
