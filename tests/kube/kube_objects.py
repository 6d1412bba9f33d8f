"""Kubernetes objects the tests create, as the API server takes them."""

from __future__ import annotations

from typing import Any


def service(name: str, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "http", "port": port}], "selector": {"app": name}},
    }


def endpoint_slice(name: str, service_name: str, *addresses: str) -> dict[str, Any]:
    """Addresses outside loopback: the API server refuses loopback in EndpointSlices."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": [a]} for a in addresses],
    }


def virtual_service(name: str, host: str, regex: str = "/.*") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": [host],
            "http": [
                {"match": [{"uri": {"regex": regex}}], "route": [{"destination": {"host": host}}]}
            ],
        },
    }
