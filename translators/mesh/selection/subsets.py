"""DestinationRule subsets: which exist for a service, and which endpoints each holds.

Invariants:

1. A service's subsets are those of the DestinationRule that applies to it
   (``destination_rules.destination_rule_for``); each gets one cluster per
   service port, ``outbound|PORT|SUBSET|HOST``, as Istio names them.
2. A subset holds the endpoints whose labels include every subset label
   (Kubernetes equality selection, ``subset.labels <= endpoint.labels``).
3. Pure: reads the model only.
"""

from __future__ import annotations

from collections.abc import Iterable

from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import Subset
from translators.mesh.model.services import Endpoint, Service
from translators.mesh.selection.destination_rules import destination_rule_for


def subsets_of(model: MeshModel, service: Service) -> tuple[Subset, ...]:
    """The subsets defined for ``service`` (invariant 1); empty without a rule."""
    rule = destination_rule_for(model.policies, service)
    return rule.subsets if rule is not None else ()


def subset_endpoints(endpoints: Iterable[Endpoint], subset: Subset | None) -> list[Endpoint]:
    """The endpoints in ``subset`` (all of them for ``None``), in the given order."""
    if subset is None:
        return list(endpoints)
    return [ep for ep in endpoints if subset.labels <= ep.labels]
