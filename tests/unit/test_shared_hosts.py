"""Several objects declaring one hostname: accepted as Istio accepts them, one service built.

``checks`` picks the owner (a Kubernetes Service first, then the oldest), ``in_force`` keeps
every object and warns about each later one, ``builder`` gives the owner's service the
endpoints of the other ServiceEntries of its namespace, matched by port name.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from translators.mesh.builder import build_model, update_endpoints
from translators.mesh.checks import check_objects, host_owners, shared_hosts
from translators.mesh.documents.kinds import ParseResult, Skipped, SourceObject, parse_object
from translators.mesh.documents.kubernetes.objects import EndpointSliceObject
from translators.mesh.in_force import InForce, in_force
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.services import ObjectKey, Resolution
from translators.sources.loader import Documents, load

HOST = "a.example.com"
REVIEWS = "reviews.default.svc.cluster.local"


def entry(
    name: str,
    *hosts: str,
    ns: str = "default",
    resolution: str = "STATIC",
    addresses: tuple[str, ...] = (),
    ports: tuple[tuple[str, int], ...] = (("http", 80),),
    created: str = "",
) -> dict[str, Any]:
    """A ServiceEntry with one endpoint per address."""
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if created:
        meta["creationTimestamp"] = created
    spec: dict[str, Any] = {
        "hosts": list(hosts),
        "resolution": resolution,
        "ports": [{"name": n, "number": p, "protocol": "HTTP"} for n, p in ports],
    }
    if addresses:
        spec["endpoints"] = [{"address": a} for a in addresses]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": meta,
        "spec": spec,
    }


def service(name: str = "reviews", port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": port}], "selector": {"app": name}},
    }


def endpoint_slice(address: str, service_name: str = "reviews") -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-x",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 9080}],
        "endpoints": [{"addresses": [address]}],
    }


def parse(files: dict[str, list[dict[str, Any]]]) -> list[ParseResult]:
    results = [
        parse_object(doc, path=path, document=i)
        for path, docs in sorted(files.items())
        for i, doc in enumerate(docs)
    ]
    assert all(r.errors == () for r in results), [str(e) for r in results for e in r.errors]
    return results


def settle(files: dict[str, list[dict[str, Any]]]) -> tuple[InForce, MeshModel]:
    settled = in_force(parse(files))
    return settled, build_model(settled.objects.values())


def endpoints(model: MeshModel, host: str) -> list[tuple[int, str, int]]:
    return [(e.service_port, e.address, e.port) for e in model.endpoints_of(host)]


def key(kind: str, name: str, ns: str = "default") -> ObjectKey:
    return ObjectKey(kind, ns, name)


def test_two_entries_of_one_host_are_both_in_force_and_the_first_defines_it() -> None:
    # probes/se_two_entries_same_host
    settled, model = settle(
        {
            "probe.yaml": [
                entry("first", HOST, resolution="DNS"),
                entry("second", HOST, resolution="DNS"),
            ]
        }
    )
    assert set(settled.objects) == {key("ServiceEntry", "first"), key("ServiceEntry", "second")}
    assert settled.refusals == ()
    (svc,) = model.services
    assert (svc.hostname, svc.source) == (HOST, key("ServiceEntry", "first"))
    assert endpoints(model, HOST) == [(80, HOST, 80)]  # both give the host itself: once


def test_the_warning_names_both_objects_and_files() -> None:
    settled, _ = settle({"a.yaml": [entry("first", HOST)], "b.yaml": [entry("second", HOST)]})
    assert settled.warnings == (
        "b.yaml (document 0): ServiceEntry default/second: spec.hosts[0] host 'a.example.com' "
        "is also declared by ServiceEntry default/first in a.yaml (document 0), which defines "
        "its service (ports, resolution, location); this object's endpoints join it where "
        "their port names match",
    )


def test_endpoints_of_the_later_entry_join_by_port_name() -> None:
    first = entry("first", HOST, addresses=("10.0.0.1",))
    second = entry(
        "second",
        "b.example.com",
        HOST,
        addresses=("10.0.0.2",),
        ports=(("http", 8080), ("grpc", 9090)),  # same name, other number; a name first lacks
    )
    settled, model = settle({"a.yaml": [first], "b.yaml": [second]})
    assert [s.hostname for s in model.services] == [HOST, "b.example.com"]
    assert model.services[0].ports[0].port == 80  # the owner's ports
    # second's http endpoint backs first's port 80, still delivered to 8080; grpc is dropped
    assert endpoints(model, HOST) == [(80, "10.0.0.1", 80), (80, "10.0.0.2", 8080)]
    assert endpoints(model, "b.example.com") == [(8080, "10.0.0.2", 8080), (9090, "10.0.0.2", 9090)]
    (shared,) = shared_hosts(settled.objects.values())
    assert (shared.field, shared.merged) == ("spec.hosts[1]", True)


def test_a_service_entry_repeating_a_kubernetes_hostname_joins_the_service() -> None:
    # probes/se_same_host_as_k8s_service; the Service wins even from a later file (Istio keeps
    # a Kubernetes Service over a ServiceEntry: no "domain squatting").
    shadow = entry("shadow", REVIEWS, addresses=("1.2.3.4",))
    settled, model = settle({"a.yaml": [shadow], "b.yaml": [service(), endpoint_slice("10.1.0.1")]})
    assert settled.refusals == () and len(settled.objects) == 3
    (svc,) = model.services
    assert (svc.is_kubernetes, svc.resolution) == (True, Resolution.STATIC)
    assert endpoints(model, REVIEWS) == [(80, "1.2.3.4", 80), (80, "10.1.0.1", 9080)]
    (warning,) = settled.warnings
    assert "ServiceEntry default/shadow" in warning and "by Service default/reviews" in warning


def test_an_entry_of_another_namespace_adds_no_endpoints() -> None:
    settled, model = settle(
        {
            "a.yaml": [entry("first", HOST, addresses=("10.0.0.1",))],
            "b.yaml": [entry("other", HOST, ns="team", addresses=("10.0.0.2",))],
        }
    )
    assert endpoints(model, HOST) == [(80, "10.0.0.1", 80)]
    (warning,) = settled.warnings
    assert "ServiceEntry team/other" in warning and "are not served" in warning


def test_host_names_do_not_join_a_service_not_resolved_by_dns() -> None:
    settled, model = settle(
        {
            "a.yaml": [
                entry("first", HOST, addresses=("10.0.0.1",)),
                entry("dns", HOST, resolution="DNS"),
            ]
        }
    )
    assert endpoints(model, HOST) == [(80, "10.0.0.1", 80)]  # EDS takes IPs only
    assert len(settled.warnings) == 1


def test_the_older_api_object_defines_the_host() -> None:
    newer = entry("aa-new", HOST, addresses=("10.0.0.2",), created="2026-06-01T00:00:00Z")
    older = entry("zz-old", HOST, addresses=("10.0.0.1",), created="2026-01-01T00:00:00Z")
    results = [parse_object(d, path="kubernetes", document=-1) for d in (newer, older)]
    objects = in_force(results).objects.values()
    assert host_owners(objects) == {HOST: key("ServiceEntry", "zz-old")}
    (svc,) = build_model(objects).services
    assert svc.name == "zz-old"


@pytest.mark.parametrize("seed", range(4))
def test_the_outcome_does_not_depend_on_the_order_documents_come_in(seed: int) -> None:
    files = {
        "a.yaml": [entry("b-entry", HOST, REVIEWS, addresses=("10.0.0.2",))],
        "b.yaml": [entry("a-entry", HOST, addresses=("10.0.0.1",)), service()],
        "c.yaml": [entry("dns", HOST, ns="team", resolution="DNS"), endpoint_slice("10.1.0.1")],
    }
    results = parse(files)
    expected = in_force(results)
    shuffled = results[:]
    random.Random(seed).shuffle(shuffled)
    got = in_force(shuffled)
    assert got == expected and len(got.warnings) == 3
    objects = list(got.objects.values())
    random.Random(seed).shuffle(objects)
    assert build_model(objects) == build_model(expected.objects.values())
    # a.yaml comes first among files, so its entry defines HOST
    assert host_owners(objects)[HOST] == key("ServiceEntry", "b-entry")


def test_no_object_is_refused_and_the_loader_serves_both() -> None:
    results = parse({"a.yaml": [entry("first", HOST)], "b.yaml": [entry("second", HOST)]})
    objects: list[SourceObject] = [
        r.obj for r in results if r.obj is not None and not isinstance(r.obj, Skipped)
    ]
    assert check_objects(objects) == ()
    loaded = load([Documents(tuple(results))])
    assert loaded.refusals == () and loaded.objects == 2


def test_an_endpoint_slice_edit_keeps_the_joined_endpoints() -> None:
    before = {"a.yaml": [entry("shadow", REVIEWS, addresses=("1.2.3.4",)), service()]}
    after = {**before, "b.yaml": [endpoint_slice("10.1.0.9")]}
    _, model = settle(before)
    settled, expected = settle(after)
    slices = [o for o in settled.objects.values() if isinstance(o, EndpointSliceObject)]
    updated = update_endpoints(model, settled.objects.values(), slices)
    assert updated == expected
    assert endpoints(updated, REVIEWS) == [(80, "1.2.3.4", 80), (80, "10.1.0.9", 9080)]
