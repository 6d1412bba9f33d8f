"""Parsing and validating single Kubernetes/Istio documents (translators.mesh.documents.kinds)."""

from __future__ import annotations

from typing import Any

import pytest

from translators.mesh.documents.kinds import ParseResult, Skipped, parse_object
from translators.mesh.documents.kubernetes.objects import (
    EndpointSliceObject,
    PodObject,
    ServiceObject,
)
from translators.mesh.documents.networking.service_entries import (
    ServiceEntryObject,
    WorkloadEntryObject,
)
from translators.mesh.documents.port_protocol import kubernetes_port_protocol
from translators.mesh.model.services import Location, ObjectKey, Protocol, Resolution, ServicePort
from xds_server.errors import ConfigError


def _parse(doc: object, document: int = 0) -> ParseResult:
    return parse_object(doc, path="mesh.yaml", document=document)


def _ok(doc: object) -> Any:
    result = _parse(doc)
    assert result.errors == (), [str(e) for e in result.errors]
    assert result.obj is not None
    return result.obj


def _errors(doc: object) -> dict[str, str]:
    result = _parse(doc, document=3)
    assert result.obj is None
    assert all(e.path == "mesh.yaml" and e.document == 3 for e in result.errors)
    return {e.field: e.reason for e in result.errors}


def service(ports: list[Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"ports": ports, **spec},
    }


def service_entry(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"hosts": ["api.example.com"], "ports": [{"number": 443, "name": "tls"}]}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "ext"},
        "spec": {**base, **spec},
    }


# --- each kind --------------------------------------------------------------------------


def test_service_parsed() -> None:
    svc = _ok(
        service(
            [{"name": "http", "port": 80, "targetPort": "web"}, {"name": "grpc-api", "port": 90}],
            selector={"app": "web"},
            clusterIP="10.0.0.5",
        )
    )
    assert isinstance(svc, ServiceObject)
    assert svc.meta.key == ObjectKey("Service", "shop", "web")
    assert svc.ports == (
        ServicePort("http", 80, Protocol.HTTP, "web"),
        ServicePort("grpc-api", 90, Protocol.GRPC, 90),
    )
    assert svc.selector == frozenset({("app", "web")})
    assert svc.cluster_ip == "10.0.0.5"


def test_missing_namespace_defaults_to_default() -> None:
    doc = service([{"port": 80}])
    del doc["metadata"]["namespace"]
    assert _ok(doc).meta.namespace == "default"


def test_endpoint_slice_parsed() -> None:
    obj = _ok(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [
                {"name": "http", "port": 8080},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ],
            "endpoints": [
                {"addresses": ["10.1.0.1"], "targetRef": {"kind": "Pod", "name": "web-0"}},
                {"addresses": ["10.1.0.2"], "conditions": {"ready": False}},
            ],
        }
    )
    assert isinstance(obj, EndpointSliceObject)
    assert obj.service_name == "web"
    assert [(p.name, p.port) for p in obj.ports] == [("http", 8080)]
    first, second = obj.endpoints
    assert first.ready and first.target == ObjectKey("Pod", "default", "web-0")
    assert not second.ready and second.target is None


def test_pod_parsed() -> None:
    pod = _ok(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-0", "labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "a", "ports": [{"name": "http", "containerPort": 8080}]},
                    {"name": "b", "ports": [{"containerPort": 9000}]},
                ]
            },
            "status": {"podIP": "fd00::1"},
        }
    )
    assert isinstance(pod, PodObject)
    assert pod.service_account == "default"
    assert pod.pod_ip == "fd00::1"
    assert pod.ports == (("http", 8080),)
    assert pod.meta.labels == frozenset({("app", "web"), ("security.istio.io/tlsMode", "istio")})


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_service_entry_parsed_in_every_version(version: str) -> None:
    doc = service_entry(
        ports=[{"number": 80, "name": "web", "protocol": "HTTP", "targetPort": 8080}],
        resolution="STATIC",
        endpoints=[{"address": "192.0.2.1", "ports": {"web": 9999}, "labels": {"v": "1"}}],
    )
    doc["apiVersion"] = f"networking.istio.io/{version}"
    se = _ok(doc)
    assert isinstance(se, ServiceEntryObject)
    assert se.ports == (ServicePort("web", 80, Protocol.HTTP, 8080),)
    assert se.resolution is Resolution.STATIC
    assert se.endpoints[0].ports == (("web", 9999),)


def test_service_entry_defaults_follow_istio() -> None:
    se = _ok(service_entry())
    assert se.location is Location.MESH_EXTERNAL
    assert se.resolution is Resolution.NONE
    assert se.ports[0].protocol is Protocol.TLS  # from the port name when protocol is empty


def test_workload_entry_parsed_with_merged_labels() -> None:
    we = _ok(
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "WorkloadEntry",
            "metadata": {"name": "vm-1", "namespace": "shop", "labels": {"zone": "a"}},
            "spec": {
                "address": "10.2.0.1",
                "labels": {"app": "web", "zone": "b"},
                "ports": {"http": 8080},
            },
        }
    )
    assert isinstance(we, WorkloadEntryObject)
    assert we.labels == frozenset({("app", "web"), ("zone", "a")})
    assert we.service_account == "default"
    assert we.ports == (("http", 8080),)


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("apps/v1", "Deployment"), ("v1", "ConfigMap"), ("networking.istio.io/v2", "ServiceEntry")],
)
def test_unknown_kinds_are_skipped(api_version: str, kind: str) -> None:
    result = _parse({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
    assert result.errors == ()
    assert isinstance(result.obj, Skipped)
    assert (result.obj.api_version, result.obj.kind, result.obj.name) == (api_version, kind, "x")


def test_udp_service_port_dropped_with_warning() -> None:
    result = _parse(service([{"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert isinstance(result.obj, ServiceObject) and result.obj.ports == ()
    assert result.warnings == (
        "mesh.yaml (document 0): Service shop/web: port dns (53/UDP) skipped: "
        "only TCP ports are proxied",
    )


# --- protocol selection -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "app_protocol", "expected"),
    [
        ("http", None, Protocol.HTTP),
        ("http-web", None, Protocol.HTTP),
        ("HTTP2", None, Protocol.HTTP2),
        ("grpc", None, Protocol.GRPC),
        ("grpc-web", None, Protocol.HTTP2),
        ("grpc-web-api", None, Protocol.HTTP2),
        ("tcp-db", None, Protocol.TCP),
        ("tls", None, Protocol.TLS),
        ("https", None, Protocol.HTTPS),
        ("mongo", None, Protocol.TCP),
        ("redis-cache", None, Protocol.TCP),
        ("mysql", None, Protocol.TCP),
        ("", None, Protocol.TCP),
        ("web", None, Protocol.TCP),  # unknown: Istio would sniff, we use TCP
        ("tcp", "http", Protocol.HTTP),  # appProtocol wins over the name
        ("http", "grpc", Protocol.GRPC),
        ("x", "kubernetes.io/h2c", Protocol.HTTP2),
        ("http", "something-odd", Protocol.TCP),
    ],
)
def test_protocol_selection(name: str, app_protocol: str | None, expected: Protocol) -> None:
    assert kubernetes_port_protocol(name, app_protocol) is expected


def test_app_protocol_read_from_service() -> None:
    svc = _ok(service([{"name": "web", "port": 80, "appProtocol": "http2"}]))
    assert svc.ports[0].protocol is Protocol.HTTP2


# --- validation errors ------------------------------------------------------------------


def test_bad_port_says_what_is_needed() -> None:
    errors = _errors(service([{"name": "http", "port": "abc"}]))
    assert errors == {"spec.ports[0].port": "must be an integer 1-65535, got 'abc'"}


def test_error_carries_object_and_formats_fully() -> None:
    result = _parse(service([{"name": "http", "port": 70000}]), document=2)
    assert result.errors == (
        ConfigError(
            "mesh.yaml",
            2,
            "spec.ports[0].port",
            "must be an integer 1-65535, got 70000 (int)",
            "Service shop/web",
        ),
    )
    assert str(result.errors[0]) == (
        "mesh.yaml (document 2) Service shop/web: field spec.ports[0].port "
        "must be an integer 1-65535, got 70000 (int)"
    )


def test_every_error_of_a_document_is_collected() -> None:
    errors = _errors(
        service(
            [
                {"name": "Bad_Name", "port": 80, "targetPort": "no spaces allowed"},
                {"port": 81, "protocol": "ICMP"},
            ],
            clusterIP="not-an-ip",
            selector={"version": 2},
        )
    )
    assert set(errors) == {
        "spec.ports[0].name",
        "spec.ports[0].targetPort",
        "spec.ports[1].name",
        "spec.ports[1].protocol",
        "spec.clusterIP",
        "spec.selector.version",
    }
    assert errors["spec.ports[1].name"] == "is required and must be a non-empty string"
    assert errors["spec.selector.version"].endswith('(quote it: "2")')


@pytest.mark.parametrize(
    ("doc", "field", "reason_part"),
    [
        ([1, 2], "", "must be a mapping (a Kubernetes object), got [1, 2] (list)"),
        ({"kind": "Service"}, "apiVersion", "is required"),
        ({"apiVersion": "v1"}, "kind", "is required"),
        ({"apiVersion": "v1", "kind": "Service", "spec": {}}, "metadata.name", "is required"),
        (
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "9web"}},
            "metadata.name",
            "must be a DNS-1035 label",
        ),
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "A_B"}},
            "metadata.namespace",
            "must be a DNS-1123 label",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "status": {"podIP": "10.0.0.300"},
            },
            "status.podIP",
            "must be an IPv4 or IPv6 address, got '10.0.0.300'",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 0}]}]},
            },
            "spec.containers[0].ports[0].containerPort",
            "must be an integer 1-65535, got 0 (int)",
        ),
        (
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "s"},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["host.example"]}],
            },
            "endpoints[0].addresses[0]",
            "must be an IPv4 or IPv6 address",
        ),
        (
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "s"},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}],
            },
            "endpoints[0].conditions.ready",
            "must be true or false, got 'yes'",
        ),
        (
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "WorkloadEntry",
                "metadata": {"name": "w"},
                "spec": {"address": "vm.example.com"},
            },
            "spec.address",
            "must be an IPv4 or IPv6 address",
        ),
        (
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "WorkloadEntry",
                "metadata": {"name": "w"},
                "spec": {"address": "10.0.0.1", "ports": {"http": -1}},
            },
            "spec.ports.http",
            "must be an integer 1-65535",
        ),
    ],
)
def test_field_errors(doc: object, field: str, reason_part: str) -> None:
    errors = _errors(doc)
    assert field in errors, errors
    assert reason_part in errors[field]


@pytest.mark.parametrize(
    ("spec", "field", "reason_part"),
    [
        ({"hosts": []}, "spec.hosts", "must list at least one host"),
        ({"hosts": ["bad host"]}, "spec.hosts[0]", "must be a DNS name"),
        ({"resolution": "MAGIC"}, "spec.resolution", "must be one of NONE, STATIC, DNS"),
        ({"location": "INSIDE"}, "spec.location", "must be one of MESH_INTERNAL, MESH_EXTERNAL"),
        (
            {"ports": [{"number": 80, "name": "web", "protocol": "QUIC"}]},
            "spec.ports[0].protocol",
            "must be one of HTTP, HTTP2, GRPC",
        ),
        ({"ports": [{"number": 80}]}, "spec.ports[0].name", "is required"),
        (
            {"ports": [{"number": 80, "name": "a"}, {"number": 80, "name": "b"}]},
            "spec.ports[1].number",
            "duplicates another port number: 80",
        ),
        (
            {"resolution": "STATIC", "endpoints": [{"address": "db.example.com"}]},
            "spec.endpoints[0].address",
            "must be an IP address for resolution STATIC",
        ),
        (
            {"endpoints": [{"address": "10.0.0.1"}], "workloadSelector": {"labels": {"a": "b"}}},
            "spec.workloadSelector",
            "cannot be set together with spec.endpoints",
        ),
        (
            {"hosts": ["*.example.com"], "resolution": "DNS"},
            "spec.hosts[0]",
            "cannot be resolved",
        ),
        (
            {"resolution": "STATIC", "endpoints": [{"address": "10.0.0.1", "ports": {"nope": 80}}]},
            "spec.endpoints[0].ports.nope",
            "names no port of this ServiceEntry (ports: tls)",
        ),
        ({"addresses": ["10.0.0.0/33"]}, "spec.addresses[0]", "must be an IP address or CIDR"),
    ],
)
def test_service_entry_errors(spec: dict[str, Any], field: str, reason_part: str) -> None:
    errors = _errors(service_entry(**spec))
    assert field in errors, errors
    assert reason_part in errors[field]


def test_service_port_uniqueness() -> None:
    errors = _errors(service([{"name": "a", "port": 80}, {"name": "a", "port": 80}]))
    assert errors == {
        "spec.ports[1].name": "duplicates the name of another port: 'a'",
        "spec.ports[1].port": "duplicates another TCP port: 80",
    }


def test_list_prefix_reaches_field_paths() -> None:
    result = parse_object(service([{"port": "x"}]), path="f.yaml", document=1, prefix="items[4]")
    assert [e.field for e in result.errors] == ["items[4].spec.ports[0].port"]
