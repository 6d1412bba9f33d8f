"""Parsing Sidecar documents and ``exportTo`` on ServiceEntries and Services."""

from __future__ import annotations

from typing import Any

import pytest

from translators.mesh.documents.kinds import parse_object
from translators.mesh.documents.kubernetes.objects import ServiceObject
from translators.mesh.documents.networking.sidecars import (
    SidecarObject,
    endpoint_host,
    endpoint_port,
)
from translators.mesh.model.services import Protocol, labels_of
from translators.mesh.model.sidecars import CaptureMode, EgressHost, SidecarPort


def sidecar(spec: dict[str, Any], namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": spec,
    }


def parsed(raw: dict[str, Any]) -> Any:
    result = parse_object(raw, path="f.yaml", document=0)
    assert result.errors == (), result.errors
    return result.obj


def errors(raw: dict[str, Any]) -> dict[str, str]:
    result = parse_object(raw, path="f.yaml", document=0)
    assert result.obj is None and result.errors
    return {e.field: e.reason for e in result.errors}


def test_sidecar_egress_and_ingress() -> None:
    obj = parsed(
        sidecar(
            {
                "workloadSelector": {"labels": {"app": "web"}},
                "egress": [
                    {
                        "port": {"number": 9080, "protocol": "HTTP", "name": "http"},
                        "bind": "127.2.0.5",
                        "captureMode": "NONE",
                        "hosts": ["./*"],
                    },
                    {"hosts": ["istio-system/*", "*/api.example.com", "~/*"]},
                ],
                "ingress": [
                    {
                        "port": {"number": 9080, "protocol": "HTTP", "name": "http"},
                        "defaultEndpoint": "127.0.0.1:8080",
                    }
                ],
            }
        )
    )
    assert isinstance(obj, SidecarObject)
    sc = obj.sidecar
    assert sc.selector == labels_of({"app": "web"})
    first, last = sc.egress
    assert first.port == SidecarPort(9080, Protocol.HTTP, "http")
    assert (first.bind, first.capture_mode) == ("127.2.0.5", CaptureMode.NONE)
    assert last.port is None
    assert last.hosts == (
        EgressHost("istio-system", "*"),
        EgressHost("*", "api.example.com"),
        EgressHost("~", "*"),
    )
    assert sc.ingress[0].default_endpoint == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({}, "spec", "set egress, ingress, outboundTrafficPolicy or inboundConnectionPool"),
        ({"egress": [{"hosts": []}]}, "spec.egress[0].hosts", "at least one"),
        ({"egress": [{"hosts": ["reviews"]}]}, "spec.egress[0].hosts[0]", "namespace/dnsName"),
        ({"egress": [{"hosts": ["~ns/*"]}]}, "spec.egress[0].hosts[0]", "'~ns'"),
        ({"egress": [{"hosts": ["Bad_NS/*"]}]}, "spec.egress[0].hosts[0]", "namespace"),
        ({"egress": [{"hosts": ["./*"]}, {"hosts": ["./*"]}]}, "spec.egress[1].port", "only one"),
        (
            {
                "egress": [
                    {"hosts": ["./*"]},
                    {"hosts": ["./*"], "port": {"number": 80, "protocol": "HTTP"}},
                ]
            },
            "spec.egress[0]",
            "last",
        ),
        (
            {"egress": [{"hosts": ["./*"], "port": {"number": 80, "protocol": "FOO"}}]},
            "spec.egress[0].port.protocol",
            "must be one of",
        ),
        (
            {"egress": [{"hosts": ["./*"], "bind": "unix:///tmp/s"}]},
            "spec.egress[0].bind",
            "captureMode NONE",
        ),
        (
            {"ingress": [{"port": {"number": 80, "protocol": "HTTP"}, "defaultEndpoint": "x:1"}]},
            "spec.ingress[0].defaultEndpoint",
            "127.0.0.1:PORT",
        ),
        ({"ingress": [{"defaultEndpoint": "127.0.0.1:80"}]}, "spec.ingress[0].port", "required"),
        (
            {"workloadSelector": {"labels": {"app": "*"}}, "egress": [{"hosts": ["./*"]}]},
            "spec.workloadSelector.labels.app",
            "wildcard",
        ),
    ],
)
def test_sidecar_errors(spec: dict[str, Any], field: str, reason: str) -> None:
    found = errors(sidecar(spec))
    assert field in found, found
    assert reason in found[field]


def test_default_endpoint_parts() -> None:
    assert (endpoint_host("127.0.0.1:8080"), endpoint_port("127.0.0.1:8080")) == ("127.0.0.1", 8080)
    assert (endpoint_host("[::1]:80"), endpoint_port("[::1]:80")) == ("::1", 80)
    assert (endpoint_host("unix:///s"), endpoint_port("unix:///s")) == ("", None)


def test_service_entry_export_to() -> None:
    raw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "ext", "namespace": "shop"},
        "spec": {
            "hosts": ["api.example.com"],
            "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
            "exportTo": [".", "billing"],
        },
    }
    assert parsed(raw).export_to == frozenset({"shop", "billing"})
    raw["spec"]["exportTo"] = ["*", "billing"]
    assert "spec.exportTo[0]" in errors(raw)


def test_service_export_to_annotation() -> None:
    raw = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "annotations": {"networking.istio.io/exportTo": ".,billing"},
        },
        "spec": {"ports": [{"port": 80, "name": "http"}]},
    }
    obj = parsed(raw)
    assert isinstance(obj, ServiceObject)
    assert obj.export_to == frozenset({"shop", "billing"})
