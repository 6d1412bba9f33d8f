"""Building the MeshModel from source objects (translators.mesh.builder, checks)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from translators.mesh.builder import build_model
from translators.mesh.checks import check_objects
from translators.mesh.documents.kinds import Skipped, SourceObject, parse_object
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import Endpoint, Location, Protocol, Resolution, labels_of
from xds_server.errors import ConfigInvalid


def obj(doc: dict[str, Any], path: str = "mesh.yaml", document: int = 0) -> SourceObject:
    result = parse_object(doc, path=path, document=document)
    assert result.errors == (), [str(e) for e in result.errors]
    assert result.obj is not None and not isinstance(result.obj, Skipped)
    return result.obj


def service(name: str, ports: list[Any], ns: str = "default", **spec: Any) -> SourceObject:
    meta = {"name": name, "namespace": ns}
    return obj(
        {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"ports": ports, **spec}}
    )


def pod(
    name: str,
    ip: str,
    labels: dict[str, str],
    sa: str = "",
    ns: str = "default",
    ports: dict[str, int] | None = None,
) -> SourceObject:
    container = {
        "name": "c",
        "ports": [{"name": k, "containerPort": v} for k, v in (ports or {}).items()],
    }
    spec: dict[str, Any] = {"containers": [container]}
    if sa:
        spec["serviceAccountName"] = sa
    return obj(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": spec,
            "status": {"podIP": ip},
        }
    )


def endpoint_slice(
    name: str, svc: str, ports: list[Any], endpoints: list[Any], ns: str = "default"
) -> SourceObject:
    return obj(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"kubernetes.io/service-name": svc},
            },
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": endpoints,
        }
    )


def to_pod(ip: str, pod_name: str, ready: bool = True) -> dict[str, Any]:
    return {
        "addresses": [ip],
        "conditions": {"ready": ready},
        "targetRef": {"kind": "Pod", "name": pod_name},
    }


def workload_entry(
    name: str,
    ip: str,
    labels: dict[str, str],
    ns: str = "default",
    ports: dict[str, int] | None = None,
    sa: str = "",
) -> SourceObject:
    spec: dict[str, Any] = {"address": ip, "labels": labels, "ports": ports or {}}
    if sa:
        spec["serviceAccount"] = sa
    return obj(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "WorkloadEntry",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }
    )


def service_entry(name: str, ns: str = "default", **spec: Any) -> SourceObject:
    return obj(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }
    )


def eps(model: MeshModel, host: str) -> list[tuple[int, str, int]]:
    return [(e.service_port, e.address, e.port) for e in model.endpoints_of(host)]


WEB = "web.default.svc.cluster.local"


# --- Kubernetes Services and EndpointSlices -----------------------------------------------


def test_service_hostname_ports_and_addresses() -> None:
    model = build_model(
        [
            service(
                "web",
                [{"name": "http", "port": 80}],
                clusterIP="10.96.0.9",
                selector={"app": "web"},
            )
        ],
        domain_suffix="mesh.internal",
    )
    (svc,) = model.services
    assert svc.hostname == "web.default.svc.mesh.internal"
    assert svc.addresses == ("10.96.0.9",)
    assert svc.selector == labels_of({"app": "web"})
    assert svc.ports[0].protocol is Protocol.HTTP and svc.ports[0].target_port == 80
    assert svc.resolution is Resolution.STATIC and svc.is_kubernetes
    assert model.endpoints_of(svc.hostname) == ()


def test_pod_identity_reaches_endpoints_through_target_ref() -> None:
    model = build_model(
        [
            service("web", [{"name": "http", "port": 80, "targetPort": "web-port"}]),
            pod("web-0", "10.1.0.1", {"app": "web", "version": "v2"}, sa="web-sa"),
            endpoint_slice(
                "web-a",
                "web",
                [{"name": "http", "port": 8080}],
                [to_pod("10.1.0.1", "web-0"), to_pod("10.1.0.2", "gone-0")],
            ),
        ]
    )
    known, missing = model.endpoints_of(WEB)
    assert (known.service_port, known.port) == (80, 8080)  # named targetPort, resolved by k8s
    assert known.labels == labels_of(
        {"app": "web", "version": "v2", "security.istio.io/tlsMode": "istio"}
    )
    assert (known.service_account, known.workload) == ("web-sa", "web-0")
    assert missing.labels == frozenset() and missing.workload == "gone-0"
    assert missing.service_account == ""


def test_slice_ports_match_service_ports_by_name() -> None:
    model = build_model(
        [
            service("web", [{"name": "http", "port": 80}, {"name": "admin", "port": 81}]),
            endpoint_slice(
                "web-a",
                "web",
                [{"name": "admin", "port": 9001}, {"name": "other", "port": 7}],
                [{"addresses": ["10.1.0.1", "10.1.0.2"]}],
            ),
            service("solo", [{"port": 90}]),
            endpoint_slice("solo-a", "solo", [{"port": 9090}], [{"addresses": ["10.1.0.3"]}]),
        ]
    )
    assert eps(model, WEB) == [(81, "10.1.0.1", 9001), (81, "10.1.0.2", 9001)]
    assert eps(model, "solo.default.svc.cluster.local") == [(90, "10.1.0.3", 9090)]


def test_not_ready_endpoints_kept_with_ready_false() -> None:
    model = build_model(
        [
            service("web", [{"name": "http", "port": 80}]),
            endpoint_slice(
                "web-a",
                "web",
                [{"name": "http", "port": 80}],
                [to_pod("10.1.0.1", "a", ready=False), {"addresses": ["10.1.0.2"]}],
            ),
        ]
    )
    assert [(e.address, e.ready) for e in model.endpoints_of(WEB)] == [
        ("10.1.0.1", False),
        ("10.1.0.2", True),
    ]


def test_overlapping_slices_merge_and_ready_copy_wins() -> None:
    model = build_model(
        [
            service("web", [{"name": "http", "port": 80}]),
            endpoint_slice(
                "web-a",
                "web",
                [{"name": "http", "port": 80}],
                [to_pod("10.1.0.1", "a", ready=False)],
            ),
            endpoint_slice(
                "web-b",
                "web",
                [{"name": "http", "port": 80}],
                [to_pod("10.1.0.1", "a", ready=True)],
            ),
        ]
    )
    assert [(e.address, e.ready) for e in model.endpoints_of(WEB)] == [("10.1.0.1", True)]


def test_slice_for_missing_service_or_other_namespace_is_ignored() -> None:
    model = build_model(
        [
            service("web", [{"name": "http", "port": 80}]),
            endpoint_slice(
                "x", "nothing", [{"name": "http", "port": 80}], [{"addresses": ["1.1.1.1"]}]
            ),
            endpoint_slice(
                "y", "web", [{"name": "http", "port": 80}], [{"addresses": ["2.2.2.2"]}], ns="other"
            ),
        ]
    )
    assert check_objects([]) == ()
    assert eps(model, WEB) == []


def test_headless_and_external_name_services() -> None:
    model = build_model(
        [
            service("db", [{"name": "tcp", "port": 5432}], clusterIP="None"),
            service(
                "ext",
                [{"name": "https", "port": 443}],
                type="ExternalName",
                externalName="api.example.com",
            ),
        ]
    )
    db, ext = model.services
    assert db.resolution is Resolution.NONE and db.addresses == ()
    assert ext.resolution is Resolution.DNS and ext.location is Location.MESH_EXTERNAL
    assert eps(model, ext.hostname) == [(443, "api.example.com", 443)]


# --- WorkloadEntries selected by Services -------------------------------------------------


def test_service_selector_picks_workload_entries() -> None:
    model = build_model(
        [
            service(
                "web",
                [
                    {"name": "http", "port": 80, "targetPort": 8080},
                    {"name": "admin", "port": 81, "targetPort": "adm"},
                    {"name": "metrics", "port": 82, "targetPort": "nope"},
                ],
                selector={"app": "web"},
            ),
            workload_entry(
                "vm-1",
                "10.2.0.1",
                {"app": "web", "v": "1"},
                sa="vm-sa",
                ports={"http": 7070, "adm": 7171},
            ),
            workload_entry("vm-2", "10.2.0.2", {"app": "web"}),
            workload_entry("vm-3", "10.2.0.3", {"app": "other"}),
            workload_entry("vm-4", "10.2.0.4", {"app": "web"}, ns="elsewhere"),
        ]
    )
    assert eps(model, WEB) == [
        (80, "10.2.0.1", 7070),  # ports[<service port name>]
        (80, "10.2.0.2", 8080),  # numeric targetPort
        (81, "10.2.0.1", 7171),  # ports[<named targetPort>]
        (81, "10.2.0.2", 81),  # named targetPort not on the WE: the service port
        (82, "10.2.0.1", 82),
        (82, "10.2.0.2", 82),
    ]
    first = model.endpoints_of(WEB)[0]
    assert (first.service_account, first.workload) == ("vm-sa", "vm-1")
    assert first.labels == labels_of({"app": "web", "v": "1"})


# --- ServiceEntries ---------------------------------------------------------------------


def test_service_entry_one_service_per_host() -> None:
    model = build_model(
        [
            service_entry(
                "ext",
                hosts=["a.example.com", "b.example.com"],
                location="MESH_INTERNAL",
                addresses=["240.0.0.1"],
                ports=[{"number": 80, "name": "http", "protocol": "HTTP"}],
            ),
        ]
    )
    assert [s.hostname for s in model.services] == ["a.example.com", "b.example.com"]
    a = model.services[0]
    assert (a.namespace, a.name, a.is_kubernetes) == ("default", "ext", False)
    assert a.location is Location.MESH_INTERNAL and a.resolution is Resolution.NONE
    assert a.addresses == ("240.0.0.1",)


def test_service_entry_static_endpoints_and_port_mapping() -> None:
    model = build_model(
        [
            service_entry(
                "db",
                hosts=["db.internal"],
                resolution="STATIC",
                ports=[
                    {"number": 80, "name": "http", "targetPort": 8080},
                    {"number": 81, "name": "tcp"},
                ],
                endpoints=[
                    {"address": "10.3.0.1", "ports": {"http": 9000}},
                    {"address": "10.3.0.2", "labels": {"v": "2"}, "serviceAccount": "db"},
                ],
            ),
        ]
    )
    assert eps(model, "db.internal") == [
        (80, "10.3.0.1", 9000),
        (80, "10.3.0.2", 8080),
        (81, "10.3.0.1", 81),
        (81, "10.3.0.2", 81),
    ]
    assert model.endpoints_of("db.internal")[1].service_account == "db"


def test_service_entry_dns_without_endpoints_resolves_its_host() -> None:
    model = build_model(
        [
            service_entry(
                "ext",
                hosts=["api.example.com"],
                resolution="DNS",
                ports=[
                    {"number": 443, "name": "tls", "protocol": "TLS", "targetPort": 8443},
                    {"number": 80, "name": "http"},
                ],
            ),
        ]
    )
    (svc,) = model.services
    assert svc.resolution is Resolution.DNS
    assert eps(model, "api.example.com") == [
        (80, "api.example.com", 80),
        (443, "api.example.com", 8443),
    ]


def test_service_entry_workload_selector_picks_entries_and_pods() -> None:
    model = build_model(
        [
            service_entry(
                "app",
                hosts=["app.internal"],
                resolution="STATIC",
                workloadSelector={"labels": {"app": "x"}},
                ports=[{"number": 80, "name": "http"}],
            ),
            workload_entry("vm-1", "10.2.0.1", {"app": "x"}, ports={"http": 8080}),
            pod("x-0", "10.1.0.1", {"app": "x"}, sa="x", ports={"http": 9090}),
            pod("y-0", "10.1.0.2", {"app": "y"}),
            pod("x-other", "10.1.0.3", {"app": "x"}, ns="other"),
        ]
    )
    assert eps(model, "app.internal") == [(80, "10.1.0.1", 9090), (80, "10.2.0.1", 8080)]
    assert [e.workload for e in model.endpoints_of("app.internal")] == ["x-0", "vm-1"]


# --- workloads ------------------------------------------------------------------------


def test_pods_and_workload_entries_become_workloads() -> None:
    model = build_model(
        [
            pod("web-0", "10.1.0.1", {"app": "web"}, sa="web", ports={"http": 80}),
            workload_entry("vm-1", "10.2.0.1", {"app": "vm"}, ports={"http": 8080}),
        ]
    )
    p, w = model.workload("default", "web-0"), model.workload("default", "vm-1")
    assert p is not None and w is not None
    assert (p.address, p.service_account, p.ports) == ("10.1.0.1", "web", (("http", 80),))
    assert (w.address, w.service_account, w.ports) == ("10.2.0.1", "default", (("http", 8080),))
    assert model.services == () and dict(model.endpoints) == {}


# --- cross-object errors ----------------------------------------------------------------


def test_duplicate_object_reported_on_the_second_naming_the_first() -> None:
    a = service("web", [{"port": 80}])
    b = obj(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 81}]},
        },
        path="z.yaml",
        document=4,
    )
    with pytest.raises(ConfigInvalid) as info:
        build_model([b, a])
    (err,) = info.value.errors
    assert (err.path, err.document, err.field, err.object) == (
        "z.yaml",
        4,
        "metadata.name",
        "Service default/web",
    )
    assert err.reason == "duplicates Service default/web already defined in mesh.yaml (document 0)"


def test_a_service_entry_repeating_a_service_hostname_is_no_error() -> None:
    # Istio accepts both; the Service defines the host (tests/unit/test_shared_hosts.py).
    objects = [
        service("web", [{"port": 80, "name": "http"}]),
        obj(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": "dup"},
                "spec": {
                    "hosts": ["ok.example", WEB],
                    "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                    "resolution": "STATIC",
                    "endpoints": [{"address": "10.9.0.1"}],
                },
            },
            path="se.yaml",
        ),
    ]
    assert check_objects(objects) == ()
    model = build_model(objects)
    assert [(s.hostname, s.is_kubernetes) for s in model.services] == [
        ("ok.example", False),
        (WEB, True),
    ]
    assert eps(model, WEB) == [(80, "10.9.0.1", 80)]


def test_pod_and_workload_entry_with_one_name_clash() -> None:
    (err,) = check_objects(
        [
            pod("same", "10.0.0.1", {}),
            workload_entry("same", "10.0.0.2", {}, ns="default"),
        ]
    )
    assert err.object == "WorkloadEntry default/same"
    assert "same namespace/name as Pod default/same" in err.reason


# --- determinism ------------------------------------------------------------------------


def test_model_does_not_depend_on_object_order() -> None:
    objects = [
        service("web", [{"name": "http", "port": 80}], selector={"app": "web"}),
        pod("web-0", "10.1.0.1", {"app": "web"}, sa="web"),
        endpoint_slice(
            "web-a", "web", [{"name": "http", "port": 80}], [to_pod("10.1.0.1", "web-0")]
        ),
        endpoint_slice(
            "web-b", "web", [{"name": "http", "port": 80}], [{"addresses": ["10.1.0.1"]}]
        ),
        workload_entry("vm-1", "10.2.0.1", {"app": "web"}),
        service_entry(
            "ext",
            hosts=["api.example.com"],
            resolution="DNS",
            ports=[{"number": 443, "name": "tls"}],
        ),
    ]
    expected = build_model(objects)
    rng = random.Random(7)
    for _ in range(10):
        shuffled = objects[:]
        rng.shuffle(shuffled)
        model = build_model(shuffled)
        assert model == expected
        # labels are not part of Endpoint equality: compare them too
        assert [e.labels for e in model.endpoints_of(WEB)] == [
            e.labels for e in expected.endpoints_of(WEB)
        ]
    assert expected.endpoints_of(WEB)[0] == Endpoint(
        80, "10.1.0.1", 80, service_account="web", workload="web-0"
    )
