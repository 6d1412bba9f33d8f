"""Sidecar scoping: precedence, egress host forms, exportTo, and shared memo parts."""

from __future__ import annotations

from dataclasses import replace

from sample_mesh import API, BACKEND, DATA_PROXY, DB, FRONTEND_PROXY, sample_model, services

from pyistiod.snapshot_builder import SnapshotBuilder
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import labels_of
from translators.mesh.model.sidecars import EgressHost, EgressListener, Sidecar
from translators.mesh.selection.sidecar_scope import scope_model, sidecar_for
from xds_server import types


def sidecar(namespace: str, *hosts: str, name: str = "default", app: str = "") -> Sidecar:
    entries = tuple(EgressHost(*h.split("/", 1)) for h in hosts)
    selector = labels_of({"app": app}) if app else frozenset()
    return Sidecar(namespace, name, selector, (EgressListener(entries),))


def with_sidecars(*sidecars: Sidecar) -> MeshModel:
    return replace(sample_model(), sidecars=tuple(sidecars))


def hostnames(model: MeshModel) -> set[str]:
    return {s.hostname for s in model.services}


def test_precedence_selector_then_namespace_then_root() -> None:
    root = sidecar("istio-system", "istio-system/*", name="root")
    ns_default = sidecar("default", "./*", name="ns")
    selected = sidecar("default", "data/*", name="frontend", app="frontend")
    assert sidecar_for(with_sidecars(root), FRONTEND_PROXY) == root
    assert sidecar_for(with_sidecars(root, ns_default), FRONTEND_PROXY) == ns_default
    model = with_sidecars(root, ns_default, selected)
    assert sidecar_for(model, FRONTEND_PROXY) == selected
    assert sidecar_for(model, DATA_PROXY) == root
    assert sidecar_for(sample_model(), FRONTEND_PROXY) is None


def test_dot_means_the_proxys_namespace_even_from_the_root_default() -> None:
    model = with_sidecars(sidecar("istio-system", "./*"))
    assert hostnames(scope_model(model, DATA_PROXY)) == {DB}
    assert DB not in hostnames(scope_model(model, FRONTEND_PROXY))
    assert BACKEND in hostnames(scope_model(model, FRONTEND_PROXY))


def test_namespace_and_host_forms() -> None:
    model = with_sidecars(sidecar("default", "data/*", "*/api.example.com"))
    assert hostnames(scope_model(model, FRONTEND_PROXY)) == {DB, API}
    model = with_sidecars(sidecar("default", f"default/{BACKEND}"))
    assert hostnames(scope_model(model, FRONTEND_PROXY)) == {BACKEND}
    model = with_sidecars(sidecar("default", "~/*"))
    assert hostnames(scope_model(model, FRONTEND_PROXY)) == set()
    model = with_sidecars(sidecar("default", "*/*.example.com"))
    assert hostnames(scope_model(model, FRONTEND_PROXY)) == {API, "passthrough.example.com"}


def test_scoped_model_keeps_only_endpoints_of_visible_services() -> None:
    scoped = scope_model(with_sidecars(sidecar("default", "data/*")), FRONTEND_PROXY)
    assert set(scoped.endpoints) == {DB}
    assert scoped.workloads == sample_model().workloads


def test_export_to_hides_a_service_from_other_namespaces() -> None:
    svcs = [
        replace(s, export_to=frozenset({"data"})) if s.hostname == DB else s for s in services()
    ]
    model = replace(sample_model(), services=tuple(svcs))
    assert DB in hostnames(scope_model(model, DATA_PROXY))
    assert DB not in hostnames(scope_model(model, FRONTEND_PROXY))


def test_proxies_under_one_sidecar_share_parts_and_unscoped_share_as_before() -> None:
    model = with_sidecars(sidecar("default", "data/*"))
    builder = SnapshotBuilder(model)
    other = replace(FRONTEND_PROXY, pod_name="frontend-2", ip="127.0.1.9")
    a, b = builder.snapshot(FRONTEND_PROXY), builder.snapshot(other)
    db_cluster = f"outbound|5432||{DB}"
    assert a.get(types.CLUSTER).get(db_cluster) is b.get(types.CLUSTER).get(db_cluster)
    assert a.get(types.CLUSTER).get(f"outbound|9080||{BACKEND}") is None
    data = builder.snapshot(DATA_PROXY)
    assert data.get(types.CLUSTER).get(f"outbound|9080||{BACKEND}") is not None
    plain = SnapshotBuilder(sample_model())
    x, y = plain.snapshot(FRONTEND_PROXY), plain.snapshot(DATA_PROXY)
    assert x.get(types.ENDPOINT).get(db_cluster) is y.get(types.ENDPOINT).get(db_cluster)
