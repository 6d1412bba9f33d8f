"""Analyzers of objects that select workloads: Gateways, Sidecars, AuthorizationPolicies.

As ``istioctl analyze``, each checked only when the config holds workloads
(Pods or WorkloadEntries) at all, since a directory of policies alone would
fire every one of them:

1. Gateway: IST0101 ``selector`` when no workload in any namespace matches
   its selector; IST0101 ``credentialName`` when a server's ``credentialName``
   names no TLS Secret where pyistiod looks for it (the Gateway's
   namespace); IST0162 when a server's port is no port (``targetPort`` if
   numeric) of a Kubernetes Service selecting the gateway's workloads.
2. IST0145: two Gateways with the same selector and port claiming one host
   with the same ``bind``: reported on each, per server.
3. Sidecar: IST0101 ``selector`` when its ``workloadSelector`` matches no
   workload of its namespace; IST0110 when two Sidecars select one workload;
   IST0111 when a namespace has several Sidecars without a selector.
4. AuthorizationPolicy (IST0127): with a selector, no workload of its
   namespace (any namespace, for the root namespace) matches; without one,
   its namespace (not the root) has no workload at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from translators.mesh.analysis import messages as msg
from translators.mesh.model.gateways import Gateway
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import ROOT_NAMESPACE
from translators.mesh.model.services import Labels, ObjectKey, Workload


def analyze_workload_selectors(model: MeshModel) -> Iterator[msg.Message]:
    """Every message of invariants 1-4."""
    workloads = sorted(model.workloads.values(), key=lambda w: (w.namespace, w.name))
    yield from _gateway_conflicts(model.gateways)
    if not workloads:
        return
    for gateway in model.gateways:
        yield from _gateway(model, gateway, workloads)
    yield from _sidecars(model, workloads)
    yield from _authorization_policies(model, workloads)


def _gateway(
    model: MeshModel, gateway: Gateway, workloads: list[Workload]
) -> Iterator[msg.Message]:
    key = ObjectKey("Gateway", gateway.namespace, gateway.name)
    selector = msg.selector_text(gateway.selector)
    selected = [w for w in workloads if gateway.selector <= w.labels]
    if not selected:
        yield msg.REFERENCED_RESOURCE_NOT_FOUND(
            key, "selector", msg.quote(selector), field="spec.selector"
        )
        return
    for i, server in enumerate(gateway.servers):
        name = server.tls.credential_name if server.tls else ""
        if name and model.credential(gateway.namespace, name) is None:
            yield msg.REFERENCED_RESOURCE_NOT_FOUND(
                key, "credentialName", msg.quote(name),
                field=f"spec.servers[{i}].tls.credentialName",
            )  # fmt: skip
    ports = _service_ports(model, selected)
    for i, server in enumerate(gateway.servers):
        if server.port not in ports:
            yield msg.GATEWAY_PORT_NOT_DEFINED_ON_SERVICE(
                key, server.port, selector, field=f"spec.servers[{i}].port.number"
            )


def _service_ports(model: MeshModel, selected: list[Workload]) -> set[int]:
    ports: set[int] = set()
    for service in model.services:
        if not service.is_kubernetes or not any(
            w.namespace == service.namespace and service.selector <= w.labels for w in selected
        ):
            continue
        for port in service.ports:
            target = port.target_port
            ports.add(target if isinstance(target, int) and target else port.port)
    return ports


def _gateway_conflicts(gateways: Sequence[Gateway]) -> Iterator[msg.Message]:
    for gateway in gateways:
        key = ObjectKey("Gateway", gateway.namespace, gateway.name)
        for i, server in enumerate(gateway.servers):
            mine = {(h.host, server.bind) for h in server.hosts}
            rivals = sorted(
                f"{other.namespace}/{other.name}"
                for other in gateways
                if other is not gateway
                and other.selector == gateway.selector
                and any(
                    s.port == server.port and mine & {(h.host, s.bind) for h in s.hosts}
                    for s in other.servers
                )
            )
            if rivals:
                yield msg.CONFLICTING_GATEWAYS(
                    key,
                    ",".join(rivals),
                    msg.selector_text(gateway.selector),
                    server.port,
                    ",".join(_host_text(h.namespace, h.host) for h in server.hosts),
                    field=f"spec.servers[{i}]",
                )


def _host_text(namespace: str, host: str) -> str:
    return host if namespace == "*" else f"{namespace}/{host}"


def _sidecars(model: MeshModel, workloads: list[Workload]) -> Iterator[msg.Message]:
    by_workload: dict[tuple[str, str], list[str]] = {}
    unselective: dict[str, list[str]] = {}
    for sidecar in model.sidecars:
        key = ObjectKey("Sidecar", sidecar.namespace, sidecar.name)
        if not sidecar.selector:
            unselective.setdefault(sidecar.namespace, []).append(sidecar.name)
            continue
        local = (w for w in workloads if w.namespace == sidecar.namespace)
        mine = [w for w in local if sidecar.selector <= w.labels]
        if not mine:
            yield msg.REFERENCED_RESOURCE_NOT_FOUND(
                key, "selector", msg.quote(msg.selector_text(sidecar.selector)),
                field="spec.workloadSelector.labels",
            )  # fmt: skip
        for w in mine:
            by_workload.setdefault((w.namespace, w.name), []).append(sidecar.name)
    for (namespace, workload), names in sorted(by_workload.items()):
        if len(names) > 1:
            for name in names:
                yield msg.CONFLICTING_SIDECAR_WORKLOAD_SELECTORS(
                    ObjectKey("Sidecar", namespace, name),
                    msg.go_list(sorted(names)), msg.quote(namespace), msg.quote(workload),
                    field="spec.workloadSelector",
                )  # fmt: skip
    for namespace, names in sorted(unselective.items()):
        if len(names) > 1:
            for name in names:
                yield msg.MULTIPLE_SIDECARS_WITHOUT_WORKLOAD_SELECTORS(
                    ObjectKey("Sidecar", namespace, name),
                    msg.go_list(sorted(names)), msg.quote(namespace),
                )  # fmt: skip


def _authorization_policies(model: MeshModel, workloads: list[Workload]) -> Iterator[msg.Message]:
    for policy in model.policies.authorization_policies:
        key = ObjectKey("AuthorizationPolicy", policy.namespace, policy.name)
        if policy.namespace == ROOT_NAMESPACE:
            if policy.selector and not _any_selected(policy.selector, workloads):
                yield msg.NO_MATCHING_WORKLOADS_FOUND(key, msg.selector_text(policy.selector))
            continue
        local = [w for w in workloads if w.namespace == policy.namespace]
        if not _any_selected(policy.selector, local):
            yield msg.NO_MATCHING_WORKLOADS_FOUND(
                key, msg.selector_text(policy.selector), field="spec.selector"
            )


def _any_selected(selector: Labels, workloads: Sequence[Workload]) -> bool:
    return any(selector <= w.labels for w in workloads)
