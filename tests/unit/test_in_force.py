"""One bad object is refused alone: which version of each object is in force (mesh.in_force).

Each scenario is a read (documents by file) after a previous read that was
applied; it states what is in force and what is refused.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from translators.mesh.documents.kinds import ParseResult, parse_object
from translators.mesh.in_force import InForce, Objects, in_force
from translators.mesh.model.services import ObjectKey

Read = dict[str, list[dict[str, Any]]]
"""Documents by file name, in document order."""


def service(name: str, port: Any = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": port}]},
    }


def entry(name: str, *hosts: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"hosts": list(hosts), "ports": [{"name": "http", "number": 80}]},
    }


def virtual_service(name: str, *weights: int) -> dict[str, Any]:
    """Weights of one destination each (one destination without weight when none);
    several weights, all 0, make the VirtualService invalid."""
    route = [{"destination": {"host": f"v{i}"}, "weight": w} for i, w in enumerate(weights)]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "hosts": ["web"],
            "http": [{"route": route or [{"destination": {"host": "web"}}]}],
        },
    }


def parse(read: Read) -> list[ParseResult]:
    return [
        parse_object(doc, path=path, document=i)
        for path, docs in sorted(read.items())
        for i, doc in enumerate(docs)
    ]


def settle(
    read: Read, previous: Objects | None = None, unreadable: tuple[str, ...] = ()
) -> InForce:
    return in_force(parse(read), previous or {}, unreadable=unreadable)


def key(kind: str, name: str) -> ObjectKey:
    return ObjectKey(kind, "default", name)


def where(result: InForce) -> dict[ObjectKey, str]:
    """Each object in force and the file it comes from."""
    return {k: o.meta.origin.path for k, o in result.objects.items()}


def refused(result: InForce) -> list[tuple[ObjectKey | None, bool, str]]:
    return [(r.key, r.kept, r.errors[0].path) for r in result.refusals]


WEB, API = key("Service", "web"), key("Service", "api")
ROUTE = key("VirtualService", "route")


def test_valid_objects_are_all_in_force() -> None:
    result = settle({"a.yaml": [service("web"), service("api")]})
    assert where(result) == {API: "a.yaml", WEB: "a.yaml"} and result.refusals == ()


def test_a_new_invalid_object_is_refused_alone() -> None:
    result = settle({"a.yaml": [service("web"), service("api", port="eighty")]})
    assert where(result) == {WEB: "a.yaml"}
    assert refused(result) == [(API, False, "a.yaml")]
    assert result.refusals[0].errors[0].field == "spec.ports[0].port"


def test_an_invalid_edit_keeps_the_last_valid_version_and_other_edits_apply() -> None:
    before = settle({"a.yaml": [service("web", 80), virtual_service("route")]}).objects
    result = settle({"a.yaml": [service("web", 81), virtual_service("route", 0, 0)]}, before)
    assert result.objects[ROUTE] is before[ROUTE]  # the last valid version stays
    assert result.objects[WEB].ports[0].port == 81  # the other change applies
    assert refused(result) == [(ROUTE, True, "a.yaml")]


def test_fixing_the_object_puts_the_new_version_in_force() -> None:
    before = settle({"a.yaml": [virtual_service("route")]}).objects
    broken = settle({"a.yaml": [virtual_service("route", 0, 0)]}, before)
    fixed = settle({"a.yaml": [virtual_service("route", 40, 60)]}, broken.objects)
    assert fixed.objects[ROUTE] is not before[ROUTE] and fixed.refusals == ()
    assert (
        fixed.objects[ROUTE]
        == settle({"a.yaml": [virtual_service("route", 40, 60)]}).objects[ROUTE]
    )


def test_an_object_no_longer_read_is_deleted() -> None:
    before = settle({"a.yaml": [service("web")], "b.yaml": [service("api")]}).objects
    assert where(settle({"a.yaml": [service("web")]}, before)) == {WEB: "a.yaml"}


def test_a_file_that_cannot_be_read_whole_keeps_its_objects() -> None:
    before = settle({"a.yaml": [service("web")], "b.yaml": [service("api")]}).objects
    result = settle({"a.yaml": [service("web", 81)]}, before, unreadable=("b.yaml",))
    assert where(result) == {API: "b.yaml", WEB: "a.yaml"}
    assert result.objects[WEB].ports[0].port == 81


def test_a_new_duplicate_loses_to_the_object_in_force_whatever_the_file_order() -> None:
    before = settle({"b.yaml": [service("web", 80)]}).objects
    result = settle({"a.yaml": [service("web", 99)], "b.yaml": [service("web", 80)]}, before)
    assert where(result) == {WEB: "b.yaml"}
    assert refused(result) == [(WEB, True, "a.yaml")]
    assert "already defined in b.yaml (document 0)" in result.refusals[0].errors[0].reason


def test_without_history_the_earlier_file_wins_a_duplicate() -> None:
    result = settle({"a.yaml": [service("web", 99)], "b.yaml": [service("web", 80)]})
    assert where(result) == {WEB: "a.yaml"}
    assert refused(result) == [(WEB, False, "b.yaml")]


def test_an_edit_claiming_a_held_hostname_is_accepted_with_a_warning() -> None:
    # Istio accepts a ServiceEntry repeating a Service's hostname; the Service defines it.
    held = "web.default.svc.cluster.local"
    before = settle({"a.yaml": [entry("ext", "ext.example.com")], "b.yaml": [service("web")]})
    result = settle({"a.yaml": [entry("ext", held)], "b.yaml": [service("web")]}, before.objects)
    assert result.objects[key("ServiceEntry", "ext")].hosts == (held,)
    assert WEB in result.objects and result.refusals == ()
    (warning,) = result.warnings
    assert warning.startswith("a.yaml (document 0): ServiceEntry default/ext: spec.hosts[0]")
    assert "also declared by Service default/web in b.yaml (document 0)" in warning


def test_entries_sharing_a_hostname_are_all_in_force() -> None:
    read = {
        "a.yaml": [entry("ext", "ext.example.com")],
        "c.yaml": [entry("new", "ext.example.com")],
    }
    result = settle(read)
    assert set(result.objects) == {key("ServiceEntry", "ext"), key("ServiceEntry", "new")}
    assert result.refusals == ()
    (warning,) = result.warnings
    assert warning.startswith("c.yaml (document 0): ServiceEntry default/new:")


def test_a_document_without_a_name_is_refused_without_a_key() -> None:
    nameless = {"apiVersion": "v1", "kind": "Service", "metadata": {}, "spec": {}}
    result = settle({"a.yaml": [nameless, service("web")]})
    assert where(result) == {WEB: "a.yaml"}
    assert refused(result) == [(None, False, "a.yaml")]


@pytest.mark.parametrize("seed", range(5))
def test_the_outcome_does_not_depend_on_the_order_of_the_reads(seed: int) -> None:
    before = settle({"a.yaml": [service("web"), virtual_service("route")]}).objects
    read = parse(
        {
            "a.yaml": [service("web", 81), virtual_service("route", 0, 0)],
            "b.yaml": [service("web", 82), service("api", port="x"), entry("e", "e.example.com")],
        }
    )
    expected = in_force(read, before)
    random.Random(seed).shuffle(read)
    assert in_force(read, before) == expected


def test_between_api_objects_the_older_creation_time_wins_as_in_istio() -> None:
    def created(name: str, when: str) -> ParseResult:
        doc = entry(name, "shared.example.com")
        doc["metadata"]["creationTimestamp"] = when
        return parse_object(doc, path="kubernetes", document=-1)

    older, newer = (
        created("zz-old", "2026-01-01T00:00:00Z"),
        created("aa-new", "2026-06-01T00:00:00Z"),
    )
    result = in_force([newer, older])
    assert set(result.objects) == {key("ServiceEntry", "zz-old"), key("ServiceEntry", "aa-new")}
    assert result.refusals == ()
    (warning,) = result.warnings
    assert warning.startswith("kubernetes: ServiceEntry default/aa-new:")
    assert "also declared by ServiceEntry default/zz-old" in warning
