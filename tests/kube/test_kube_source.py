"""The Kubernetes source against a real API server: list, watch, relist, reconnect.

Each test starts its own ``KubernetesSource`` and works in a fresh namespace.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from eventually import eventually
from gateway_example import self_signed, tls_secret
from kube_objects import endpoint_slice, service, virtual_service
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiClient

from pyistiod.local_cluster import KubeCluster, wait_established
from translators.sources.changes import Changes
from translators.sources.debounce import Debouncer
from translators.sources.kubernetes import watch
from translators.sources.kubernetes.reflector import Reflector
from translators.sources.kubernetes.resources import Resource
from translators.sources.kubernetes.selectors import parse_selector
from translators.sources.kubernetes.source import KubernetesSource
from translators.sources.kubernetes.watch import follow
from translators.sources.loader import Loader

pytestmark = pytest.mark.kube


@pytest.fixture
async def source(api: ApiClient) -> AsyncIterator[KubernetesSource]:
    src = KubernetesSource(api, Changes(Debouncer(quiet=0.05, max_wait=1.0)))
    await src.start(timeout=30)
    try:
        yield src
    finally:
        await src.stop()


def names(src: KubernetesSource, kind: str, namespace: str) -> dict[str, Any]:
    """The objects of ``kind`` in ``namespace`` the source holds, by name."""
    out = {}
    for r in src.read().results:
        if r.key is not None and r.key.kind == kind and r.key.namespace == namespace:
            out[r.key.name] = r
    return out


async def create_vs(api: ApiClient, namespace: str, body: dict[str, Any]) -> None:
    await client.CustomObjectsApi(api).create_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", body
    )


async def test_objects_added_updated_and_deleted_reach_the_source(
    api: ApiClient, namespace: str, source: KubernetesSource
) -> None:
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    await core.create_namespaced_service(namespace, service("web", 80))
    await discovery.create_namespaced_endpoint_slice(
        namespace, endpoint_slice("web-1", "web", "10.1.0.1")
    )
    await create_vs(api, namespace, virtual_service("web", "web"))
    await eventually(lambda: set(names(source, "Service", namespace)) == {"web"})
    await eventually(lambda: set(names(source, "EndpointSlice", namespace)) == {"web-1"})
    await eventually(lambda: set(names(source, "VirtualService", namespace)) == {"web"})

    current = await core.read_namespaced_service("web", namespace)
    current.spec.ports[0].port = 81
    await core.replace_namespaced_service("web", namespace, current)

    def port() -> int:
        obj = names(source, "Service", namespace)["web"].obj
        return int(obj.ports[0].port)

    await eventually(lambda: port() == 81)
    await discovery.delete_namespaced_endpoint_slice("web-1", namespace)
    await eventually(lambda: "web-1" not in names(source, "EndpointSlice", namespace))


async def test_changes_come_as_debounced_bursts(api: ApiClient, namespace: str) -> None:
    source = KubernetesSource(api, Changes(Debouncer(quiet=0.5, max_wait=5.0)))
    await source.start(timeout=30)
    bursts = source.changes.bursts()
    try:
        pending = asyncio.ensure_future(anext(bursts))
        core = client.CoreV1Api(api)
        for i in range(3):
            await core.create_namespaced_service(namespace, service(f"s{i}"))
        burst = await asyncio.wait_for(pending, 10)
        assert burst.changes == 3  # three watch events, one burst
    finally:
        await bursts.aclose()
        await source.stop()


async def test_an_invalid_custom_object_is_refused_alone(
    api: ApiClient, namespace: str, source: KubernetesSource
) -> None:
    await client.CoreV1Api(api).create_namespaced_service(namespace, service("web"))
    await create_vs(api, namespace, virtual_service("good", "web"))
    await create_vs(api, namespace, virtual_service("bad", "web", regex="/x(?=y)"))
    await eventually(lambda: set(names(source, "VirtualService", namespace)) == {"good", "bad"})
    result = Loader([source]).read()
    refused = [r for r in result.refusals if r.key is not None and r.key.namespace == namespace]
    assert [(r.key.name if r.key else None) for r in refused] == ["bad"]
    assert str(refused[0].errors[0]).startswith(f"kubernetes VirtualService {namespace}/bad:")
    in_force = {v.name for v in result.model.virtual_services if v.namespace == namespace}
    assert in_force == {"good"}
    assert any(s.namespace == namespace for s in result.model.services)


async def test_a_too_old_resource_version_relists_without_losing_or_duplicating(
    api: ApiClient, namespace: str, cluster: KubeCluster
) -> None:
    # ConfigMaps are watched from etcd itself (the cluster's watch cache skips them), so
    # compacting etcd makes an older resource version too old, as in a long-lived cluster.
    config_maps = Resource("v1", "ConfigMap", "configmaps")
    core = client.CoreV1Api(api)

    def config_map(name: str) -> Any:
        return {"metadata": {"name": name}}

    await core.create_namespaced_config_map(namespace, config_map("a"))
    reflector = Reflector(config_maps)
    changes: list[set[tuple[str, str]]] = []
    errors: list[str] = []
    task = asyncio.create_task(follow(api, reflector, changes.append, errors.append, errors.append))
    try:
        await eventually(lambda: (namespace, "a") in reflector.objects)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await core.create_namespaced_config_map(namespace, config_map("b"))
        await core.delete_namespaced_config_map("a", namespace)
        stale = reflector.resource_version
        await asyncio.to_thread(cluster.compact_etcd)  # history before now is gone: 410
        reflector.resource_version = stale
        changes.clear()
        task = asyncio.create_task(
            follow(api, reflector, changes.append, errors.append, errors.append)
        )
        await eventually(lambda: (namespace, "b") in reflector.objects)
        await eventually(lambda: reflector.resource_version not in (None, stale))
        mine = {k for k in reflector.objects if k[0] == namespace}
        assert mine == {(namespace, "b")}
        # one relist diff holds both (a watch replaying events would report them apart)
        assert any({(namespace, "a"), (namespace, "b")} <= changed for changed in changes), changes
        assert errors == []  # a 410 is not an error: it relists
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_missing_crd_is_reported_once_and_retried(
    api: ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = 0
    get = watch._get

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal asked
        asked += 1
        return await get(*args, **kwargs)

    monkeypatch.setattr(watch, "_get", counted)
    widgets = Resource("example.pyistiod.io/v1", "Widget", "widgets", needs_crd=True)
    reflector = Reflector(widgets)
    missing: list[str] = []
    errors: list[str] = []
    task = asyncio.create_task(
        follow(api, reflector, lambda _k: None, missing.append, errors.append, missing_retry=0.2)
    )
    try:
        await eventually(lambda: reflector.synced)
        await eventually(lambda: asked >= 3)  # asked again twice since the first 404
        assert len(missing) == 1 and "example.pyistiod.io/v1 Widget is not served" in missing[0]
        await _install_widget_crd(api)
        widget = {
            "apiVersion": "example.pyistiod.io/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
        }
        await client.CustomObjectsApi(api).create_namespaced_custom_object(
            "example.pyistiod.io", "v1", namespace, "widgets", widget
        )
        await eventually(lambda: (namespace, "w") in reflector.objects)
        assert errors == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _install_widget_crd(api: ApiClient) -> None:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    ext = client.ApiextensionsV1Api(api)
    await ext.create_custom_resource_definition(
        {
            "metadata": {"name": "widgets.example.pyistiod.io"},
            "spec": {
                "group": "example.pyistiod.io",
                "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
            },
        }
    )
    await wait_established(api, "widgets.example.pyistiod.io")


async def test_an_api_server_restart_mid_watch_is_survived(
    cluster: KubeCluster, namespace: str, source: KubernetesSource
) -> None:
    await asyncio.to_thread(cluster.restart_apiserver)
    async with await _fresh_client(cluster) as fresh:
        await client.CoreV1Api(fresh).create_namespaced_service(namespace, service("after"))
    await eventually(lambda: "after" in names(source, "Service", namespace), timeout=60)


async def _fresh_client(cluster: KubeCluster) -> ApiClient:
    from kubernetes_asyncio import config

    return await config.new_client_from_config(str(cluster.kubeconfig))


async def test_discovery_selectors_scope_the_namespaces_as_istios(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    inside, outside = f"in-{secrets.token_hex(3)}", f"out-{secrets.token_hex(3)}"
    await core.create_namespace({"metadata": {"name": inside, "labels": {"mesh": "on"}}})
    await core.create_namespace({"metadata": {"name": outside}})
    for ns in (inside, outside, "istio-system"):
        await core.create_namespaced_service(ns, service(f"svc-{ns}"))
    src = KubernetesSource(
        api, Changes(Debouncer(0.05, 1.0)), discovery=[parse_selector("mesh=on")]
    )
    await src.start(timeout=30)
    try:

        def seen() -> set[str]:
            return {ns for ns in (inside, outside, "istio-system") if names(src, "Service", ns)}

        await eventually(lambda: seen() == {inside, "istio-system"})  # the system one always
        await core.patch_namespace(outside, {"metadata": {"labels": {"mesh": "on"}}})
        await eventually(lambda: seen() == {inside, outside, "istio-system"})
        await core.patch_namespace(inside, {"metadata": {"labels": {"mesh": "off"}}})
        await eventually(lambda: seen() == {outside, "istio-system"})
    finally:
        await src.stop()


ISTIO = {
    ("networking.istio.io", "serviceentries"): {
        "kind": "ServiceEntry",
        "spec": {"hosts": ["ext.example.com"], "ports": [{"name": "http", "number": 80}]},
    },
    ("networking.istio.io", "workloadentries"): {
        "kind": "WorkloadEntry",
        "spec": {"address": "10.7.0.1", "labels": {"app": "web"}},
    },
    ("networking.istio.io", "virtualservices"): {
        "kind": "VirtualService",
        "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
    },
    ("networking.istio.io", "destinationrules"): {
        "kind": "DestinationRule",
        "spec": {"host": "web", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
    },
    ("networking.istio.io", "gateways"): {
        "kind": "Gateway",
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 8443, "name": "https", "protocol": "HTTPS"},
                    "hosts": ["shop.example.com"],
                    "tls": {"mode": "SIMPLE", "credentialName": "shop-cert"},
                },
            ],
        },
    },
    ("networking.istio.io", "sidecars"): {
        "kind": "Sidecar",
        "spec": {"egress": [{"hosts": ["./*"]}]},
    },
    ("security.istio.io", "peerauthentications"): {
        "kind": "PeerAuthentication",
        "spec": {"mtls": {"mode": "STRICT"}},
    },
    ("security.istio.io", "authorizationpolicies"): {
        "kind": "AuthorizationPolicy",
        "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["x"]}}]}]},
    },
}


async def test_every_watched_kind_is_added_and_deleted_in_the_source(
    api: ApiClient, namespace: str, source: KubernetesSource
) -> None:
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    custom = client.CustomObjectsApi(api)
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": "web"}})
    await core.create_namespaced_service(namespace, service("web"))
    await discovery.create_namespaced_endpoint_slice(
        namespace, endpoint_slice("web-1", "web", "10.1.0.9")
    )
    pod: Any = {
        "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"serviceAccountName": "web", "containers": [{"name": "c", "image": "x"}]},
    }
    await core.create_namespaced_pod(namespace, pod)
    cert_pem, key_pem = self_signed("shop.example.com")
    secret: Any = tls_secret("shop-cert", namespace, cert_pem, key_pem)
    await core.create_namespaced_secret(namespace, secret)
    for (group, plural), body in ISTIO.items():
        doc = {"apiVersion": f"{group}/v1", "metadata": {"name": f"x-{plural}"}, **body}
        await custom.create_namespaced_custom_object(group, "v1", namespace, plural, doc)
    kinds = {"Service", "EndpointSlice", "Pod", "Secret", *(b["kind"] for b in ISTIO.values())}

    def valid_kinds() -> set[str]:
        read = Loader([source]).read()
        return {k.kind for k in read.in_force if k.namespace == namespace}

    await eventually(lambda: valid_kinds() == kinds, timeout=15)
    for (group, plural), _body in ISTIO.items():
        await custom.delete_namespaced_custom_object(group, "v1", namespace, plural, f"x-{plural}")
    await core.delete_namespaced_secret("shop-cert", namespace)
    await eventually(lambda: valid_kinds() == {"Service", "EndpointSlice", "Pod"}, timeout=15)


async def test_generic_and_cacert_secrets_are_read_and_tokens_are_not(
    api: ApiClient, namespace: str, source: KubernetesSource
) -> None:
    """istiod reads Secrets of every type but Helm releases and service-account tokens:
    Istio's generic form and ``NAME-cacert`` Secrets are usually ``Opaque``."""
    core = client.CoreV1Api(api)
    cert_pem, key_pem = self_signed("shop.example.com")

    def opaque(name: str, **data: bytes) -> Any:
        encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
        return {"metadata": {"name": name}, "type": "Opaque", "data": encoded}

    await core.create_namespaced_secret(namespace, opaque("shop", cert=cert_pem, key=key_pem))
    await core.create_namespaced_secret(namespace, opaque("shop-cacert", cacert=cert_pem))
    await core.create_namespaced_service_account(namespace, {"metadata": {"name": "robot"}})
    token: Any = {
        "metadata": {
            "name": "robot-token",
            "annotations": {"kubernetes.io/service-account.name": "robot"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    await core.create_namespaced_secret(namespace, token)

    def credentials() -> dict[str, tuple[bool, bool]]:
        model = Loader([source]).read().model
        found = {}
        for name in ("shop", "shop-cacert", "robot-token"):
            c = model.credential(namespace, name)
            if c is not None:
                found[name] = (bool(c.cert_pem and c.key_pem), bool(c.ca_pem))
        return found

    expected = {"shop": (True, False), "shop-cacert": (False, True)}
    await eventually(lambda: credentials() == expected, timeout=15)
    read = Loader([source]).read()
    names = {k.name for k in read.in_force if k.namespace == namespace and k.kind == "Secret"}
    assert names == {"shop", "shop-cacert"}  # the token is not even watched
