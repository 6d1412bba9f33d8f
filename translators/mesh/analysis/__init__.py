"""What ``istioctl analyze`` reports: valid config that may not do what was meant.

``analyze(model)`` runs every analyzer over the model and returns Istio's
messages (``messages``: code, name, level, text) about the objects in
force, sorted as ``istioctl analyze`` sorts them (level, code, object).
Refused objects are not here: their errors are schema errors (IST0106),
which the caller holds. The analyzers:

- ``virtual_services``: gateways, hosts, ports and subsets not found; hosts
  claimed by several VirtualServices (IST0101, IST0109, IST0112, IST0132);
- ``rules``: unreachable rules and ineffective matches (IST0130, IST0131);
- ``destination_rules``: unknown hosts, subsets selecting nothing, TLS not
  verified (IST0173, IST0174, IST0128, IST0129);
- ``workloads``: Gateways, Sidecars and AuthorizationPolicies selecting
  nothing or conflicting (IST0101, IST0110, IST0111, IST0127, IST0145, IST0162);
- ``service_entries``: TCP ServiceEntries without addresses (IST0134).

Pure: the same model gives the same messages.
"""

from __future__ import annotations

from translators.mesh.analysis.destination_rules import analyze_destination_rules
from translators.mesh.analysis.hosts import HostIndex
from translators.mesh.analysis.messages import Level, Message, MessageType
from translators.mesh.analysis.rules import analyze_rules
from translators.mesh.analysis.service_entries import analyze_service_entries
from translators.mesh.analysis.virtual_services import analyze_virtual_services, key_of
from translators.mesh.analysis.workloads import analyze_workload_selectors
from translators.mesh.model.mesh import MeshModel

__all__ = ["Level", "Message", "MessageType", "analyze", "sort_messages"]


def analyze(model: MeshModel) -> list[Message]:
    """Every analysis message about the model, without duplicates, in Istio's order."""
    index = HostIndex(model.services)
    found = [
        *analyze_virtual_services(model, index),
        *(m for vs in model.virtual_services for m in analyze_rules(vs, key_of(vs))),
        *analyze_destination_rules(model, index),
        *analyze_workload_selectors(model),
        *analyze_service_entries(model),
    ]
    return sort_messages(found)


def sort_messages(found: list[Message]) -> list[Message]:
    """``found`` without repeats, in ``istioctl analyze``'s order: the most severe first,
    then by code and object."""
    return sorted(set(found), key=Message.sort_key)
