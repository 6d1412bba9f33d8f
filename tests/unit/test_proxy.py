"""Node ID parsing, proxy identity and loopback addressing."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys

import pytest
from sample_mesh import sample_model

from translators.mesh.model import loopback
from translators.mesh.model.proxy import NodeId, Proxy, ProxyType, parse_node_id, proxy_from_node
from translators.mesh.model.services import labels_of

NODE = "sidecar~127.0.1.1~backend-1.default~default.svc.cluster.local"


@pytest.mark.parametrize(
    ("pod_ip", "app", "outbound"),
    [
        ("127.0.3.4", "127.1.3.4", "127.2.3.4"),
        ("127.0.0.1", "127.1.0.1", "127.2.0.1"),
        ("127.5.0.1", "127.0.0.1", "127.0.0.1"),
        ("10.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("::1", "127.0.0.1", "127.0.0.1"),
        ("not-an-ip", "127.0.0.1", "127.0.0.1"),
    ],
)
def test_loopback_addresses(pod_ip: str, app: str, outbound: str) -> None:
    assert loopback.app_address(pod_ip) == app
    assert loopback.outbound_address(pod_ip) == outbound


def test_parse_node_id() -> None:
    assert parse_node_id(NODE) == NodeId(
        ProxyType.SIDECAR, "127.0.1.1", "backend-1", "default", "default.svc.cluster.local"
    )
    router = parse_node_id("router~10.0.0.1~gw.with.dots.istio-system~svc.cluster.local")
    assert (router.type, router.pod_name, router.namespace) == (
        ProxyType.ROUTER,
        "gw.with.dots",
        "istio-system",
    )


@pytest.mark.parametrize(
    ("node_id", "complaint"),
    [
        ("sidecar~127.0.0.1~pod.ns", "has 3 '~'-separated parts, expected 4"),
        ("sidecar~127.0.0.1~pod.ns~d~extra", "has 5 '~'-separated parts"),
        ("ingress~127.0.0.1~pod.ns~d", "type 'ingress' is not one of ['router', 'sidecar']"),
        ("sidecar~127.0.0~pod.ns~d", "'127.0.0' is not an IP address"),
        ("sidecar~127.0.0.1~pod~d", "'pod' is not POD.NAMESPACE"),
        ("sidecar~127.0.0.1~pod.~d", "'pod.' is not POD.NAMESPACE"),
        ("sidecar~127.0.0.1~pod.ns~", "the domain is empty"),
    ],
)
def test_parse_node_id_errors_name_the_part_and_the_form(node_id: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="expected") as raised:
        parse_node_id(node_id)
    assert complaint in str(raised.value)
    assert "TYPE~IP~POD.NAMESPACE~DOMAIN" in str(raised.value)


def test_proxy_derived_properties() -> None:
    proxy = proxy_from_node(NODE, {}, sample_model())
    assert proxy.id == NODE
    assert (proxy.app_address, proxy.outbound_address) == ("127.1.1.1", "127.2.1.1")


def test_proxy_from_node_defaults_from_the_workload() -> None:
    proxy = proxy_from_node(NODE, {}, sample_model())
    assert proxy == Proxy(
        type=ProxyType.SIDECAR,
        ip="127.0.1.1",
        pod_name="backend-1",
        namespace="default",
        domain="default.svc.cluster.local",
        labels=labels_of({"app": "backend"}),
        service_account="backend",
    )


def test_proxy_from_node_prefers_metadata() -> None:
    metadata = {
        "LABELS": {"app": "frontend", "version": "v2"},
        "SERVICE_ACCOUNT": "sa",
        "NAMESPACE": "default",
    }
    proxy = proxy_from_node(NODE, metadata, sample_model())
    assert proxy.labels == labels_of({"app": "frontend", "version": "v2"})
    assert proxy.service_account == "sa"


def test_proxy_from_node_namespace_from_metadata_picks_the_workload() -> None:
    node = "sidecar~127.0.1.2~frontend-1.elsewhere~elsewhere.svc.cluster.local"
    proxy = proxy_from_node(node, {"NAMESPACE": "default"}, sample_model())
    assert proxy.namespace == "default"
    assert proxy.labels == labels_of({"app": "frontend"})


def test_proxy_from_node_without_workload_or_metadata() -> None:
    node = "sidecar~127.0.7.7~ghost.default~default.svc.cluster.local"
    proxy = proxy_from_node(node, {"LABELS": {}}, sample_model())
    assert (proxy.labels, proxy.service_account) == (frozenset(), "default")


@pytest.mark.parametrize(
    ("metadata", "complaint"),
    [
        ({"LABELS": ["app=x"]}, "LABELS must be a map"),
        ({"NAMESPACE": 3}, "NAMESPACE must be a string"),
    ],
)
def test_proxy_from_node_rejects_malformed_metadata(
    metadata: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        proxy_from_node(NODE, metadata, sample_model())


def test_a_proxy_hashes_once_and_a_pickled_one_hashes_afresh_in_another_process() -> None:
    """The hash is cached (a memo key, looked up many times per change); a cached ``str``
    hash is only right in the process that made it, so a pickle must not carry it."""
    proxy = proxy_from_node(NODE, {"LABELS": {"app": "backend"}}, sample_model())
    assert hash(proxy) == hash(dataclasses.replace(proxy))
    assert hash(dataclasses.replace(proxy, ip="127.0.1.2")) != hash(proxy)
    check = (
        "import pickle, sys\n"
        "from translators.mesh.model.proxy import Proxy\n"
        "p = pickle.loads(sys.stdin.buffer.read())\n"
        "fresh = Proxy(p.type, p.ip, p.pod_name, p.namespace, p.domain, p.labels,"
        " p.service_account)\n"
        "assert {fresh: 1}[p] == 1 and hash(p) == hash(fresh)\n"
    )
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", check],
            input=pickle.dumps(proxy),
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
