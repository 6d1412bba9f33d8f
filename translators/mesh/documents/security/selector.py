"""A security policy's workload selector (``selector.matchLabels``), as Istio reads it.

An empty one is no selector (with a warning, as Istio warns: it selects every
workload of the namespace). Its labels follow ``fields.labels``, so a ``*`` in
a key or value is refused ("wildcard is not supported in selector").
"""

from __future__ import annotations

from collections.abc import Mapping

from translators.mesh.documents import fields as v
from translators.mesh.model.services import Labels


def workload_selector(
    p: v.Problems, spec: Mapping[str, object], warnings: list[str] | None = None
) -> Labels:
    """``spec.selector.matchLabels`` (empty when absent: no selector; invariant 2).

    Given ``warnings``, a selector without labels is reported there, as Istio
    warns: it selects every workload of the namespace.
    """
    raw = spec.get("selector")
    selector = v.mapping(p, raw, "spec.selector") or {}
    labels = v.labels(p, selector.get("matchLabels"), "spec.selector.matchLabels")
    if warnings is not None and raw is not None and not selector.get("matchLabels"):
        warnings.append(
            "spec.selector has no matchLabels: the policy applies to every workload of "
            "the namespace, as without a selector"
        )
    return labels


def refuse_target_refs(p: v.Problems, spec: Mapping[str, object]) -> None:
    """``targetRef``/``targetRefs`` (policies attached to gateways and waypoints, Gateway API
    style) are refused, saying how to select the same workloads."""
    for ref in ("targetRef", "targetRefs"):
        if ref in spec:
            p.add(
                f"spec.{ref}",
                "is not supported: it attaches policies to gateways and waypoints; "
                "select workloads (gateway pods too) with spec.selector.matchLabels instead",
            )
