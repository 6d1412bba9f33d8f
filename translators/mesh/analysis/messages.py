"""Istio's analysis messages: codes, names, levels and texts, as ``istioctl analyze`` prints.

Each ``MessageType`` is one entry of Istio's message catalogue (its code,
name, level and template), so a user who knows ``IST0101`` from Istio reads
the same words here. Invariants:

1. A ``Message`` names the object it is about by ``ObjectKey`` (kind,
   namespace, name) and, where one field is at fault, its dotted path; the
   caller adds the object's file and document, which the model does not hold.
2. Messages are values: analyzers return them sorted, and equal configs give
   equal messages.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from translators.mesh.model.services import Labels, ObjectKey


class Level(enum.IntEnum):
    """A message's level; ordered so ``level >= Level.WARNING`` reads as Istio's thresholds."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.capitalize()


@dataclass(frozen=True, slots=True)
class MessageType:
    """One kind of finding: Istio's code, name, level and text template (``str.format``)."""

    code: str
    name: str
    level: Level
    template: str

    def __call__(self, key: ObjectKey | None, *args: object, field: str = "") -> Message:
        """A message of this type about ``key``, its template filled with ``args``."""
        return Message(self, key, self.template.format(*args), field)


@dataclass(frozen=True, slots=True)
class Message:
    """One finding about one object (invariant 1)."""

    type: MessageType
    key: ObjectKey | None
    """The object; ``None`` for a document that names none (a schema error)."""
    text: str
    field: str = ""

    @property
    def level(self) -> Level:
        """The message's level (its type's)."""
        return self.type.level

    @property
    def documentation_url(self) -> str:
        """Istio's page for this code, as ``istioctl analyze`` links it ("" for pyistiod's
        own ``PYI`` codes, which Istio does not document)."""
        if not self.type.code.startswith("IST"):
            return ""
        return f"https://istio.io/latest/docs/reference/config/analysis/{self.type.code.lower()}/"

    def sort_key(self) -> tuple[int, str, ObjectKey, str, str]:
        """Istio's order: the most severe first, then by code, object, field and text."""
        key = self.key or ObjectKey("", "", "")
        return (-self.level, self.type.code, key, self.field, self.text)


# Istio's catalogue (pkg/config/analysis/msg/messages.yaml), the entries pyistiod reports.
# Templates use ``str.format``; arguments Istio prints with Go's %q go through ``quote``.

UNSUPPORTED_KIND = MessageType(
    "PYI0001",
    "UnsupportedKind",
    Level.ERROR,
    "{} is not supported by pyistiod: the object is skipped, not applied",
)
"""pyistiod's own (not Istio's catalogue): a kind Istio reads and pyistiod does not
(EnvoyFilter, Telemetry, WasmPlugin, ProxyConfig, Gateway API)."""
SCHEMA_VALIDATION_ERROR = MessageType(
    "IST0106", "SchemaValidationError", Level.ERROR, "Schema validation error: {}"
)
REFERENCED_RESOURCE_NOT_FOUND = MessageType(
    "IST0101", "ReferencedResourceNotFound", Level.ERROR, "Referenced {} not found: {}"
)
CONFLICTING_MESH_GATEWAY_VIRTUAL_SERVICE_HOSTS = MessageType(
    "IST0109",
    "ConflictingMeshGatewayVirtualServiceHosts",
    Level.ERROR,
    "The VirtualServices {} associated with mesh gateway define the same host {} which can "
    "lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices "
    "into a single resource.",
)
CONFLICTING_SIDECAR_WORKLOAD_SELECTORS = MessageType(
    "IST0110",
    "ConflictingSidecarWorkloadSelectors",
    Level.ERROR,
    "The Sidecars {} in namespace {} select the same workload pod {}, which can lead to "
    "undefined behavior.",
)
MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS = MessageType(
    "IST0111",
    "MultipleSidecarsWithoutWorkloadSelectors",
    Level.ERROR,
    "The Sidecars {} in namespace {} have no workload selector, which can lead to undefined "
    "behavior.",
)
VIRTUAL_SERVICE_DESTINATION_PORT_SELECTOR_REQUIRED = MessageType(
    "IST0112",
    "VirtualServiceDestinationPortSelectorRequired",
    Level.ERROR,
    "This VirtualService routes to a service {} that exposes multiple ports {}. Specifying a "
    "port in the destination is required to disambiguate.",
)
PORT_NAME_IS_NOT_UNDER_NAMING_CONVENTION = MessageType(
    "IST0118",
    "PortNameIsNotUnderNamingConvention",
    Level.INFO,
    "Port name {} (port: {}, targetPort: {}) doesn't follow the naming convention of Istio port.",
)
NO_MATCHING_WORKLOADS_FOUND = MessageType(
    "IST0127",
    "NoMatchingWorkloadsFound",
    Level.WARNING,
    "No matching workloads for this resource with the following labels: {}",
)
NO_SERVER_CERTIFICATE_VERIFICATION_DESTINATION_LEVEL = MessageType(
    "IST0128",
    "NoServerCertificateVerificationDestinationLevel",
    Level.WARNING,
    "DestinationRule {} in namespace {} has TLS mode set to {} but no caCertificates are set "
    "to validate server identity for host: {}",
)
NO_SERVER_CERTIFICATE_VERIFICATION_PORT_LEVEL = MessageType(
    "IST0129",
    "NoServerCertificateVerificationPortLevel",
    Level.WARNING,
    "DestinationRule {} in namespace {} has TLS mode set to {} but no caCertificates are set "
    "to validate server identity for host: {} at port {}",
)
VIRTUAL_SERVICE_UNREACHABLE_RULE = MessageType(
    "IST0130",
    "VirtualServiceUnreachableRule",
    Level.WARNING,
    "VirtualService rule {} not used ({}).",
)
VIRTUAL_SERVICE_INEFFECTIVE_MATCH = MessageType(
    "IST0131",
    "VirtualServiceIneffectiveMatch",
    Level.INFO,
    "VirtualService rule {} match {} is not used (duplicate/overlapping match in rule {}).",
)
VIRTUAL_SERVICE_HOST_NOT_FOUND_IN_GATEWAY = MessageType(
    "IST0132",
    "VirtualServiceHostNotFoundInGateway",
    Level.WARNING,
    "one or more host {} defined in VirtualService {} not found in Gateway {}.",
)
SERVICE_ENTRY_ADDRESSES_REQUIRED = MessageType(
    "IST0134",
    "ServiceEntryAddressesRequired",
    Level.WARNING,
    "ServiceEntry addresses are required for this protocol.",
)
CONFLICTING_GATEWAYS = MessageType(
    "IST0145",
    "ConflictingGateways",
    Level.ERROR,
    "Conflict with gateways {} (workload selector {}, port {}, hosts {}).",
)
GATEWAY_PORT_NOT_DEFINED_ON_SERVICE = MessageType(
    "IST0162",
    "GatewayPortNotDefinedOnService",
    Level.WARNING,
    "The gateway is listening on a target port (port {}) that is not defined in the Service "
    "associated with its workload instances (Pod selector {}). If you need to access the "
    "gateway port through the gateway Service, it will not be available.",
)
DESTINATION_RULE_SUBSET_NOT_SELECT_PODS = MessageType(
    "IST0173",
    "DestinationRuleSubsetNotSelectPods",
    Level.ERROR,
    "The Subset {} defined in the DestinationRule does not select any pods. Which may lead to "
    "503 UH (NoHealthyUpstream).",
)
UNKNOWN_DESTINATION_RULE_HOST = MessageType(
    "IST0174",
    "UnknownDestinationRuleHost",
    Level.WARNING,
    "The host {} defined in the DestinationRule does not match any services in the mesh.",
)


def quote(text: str) -> str:
    """``text`` in double quotes with ``"`` and ``\\`` escaped, as Go's ``%q`` prints it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_list(items: Iterable[object]) -> str:
    """A list as Go's ``%v`` prints it: ``[a b c]``."""
    return "[" + " ".join(str(i) for i in items) + "]"


def selector_text(labels: Labels) -> str:
    """A label set as Kubernetes prints a selector: ``k1=v1,k2=v2``, keys sorted."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels))
