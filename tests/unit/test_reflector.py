"""The list-then-watch state of one resource, event by event (sources.kubernetes.reflector).

The same rules are proved against a real API server in ``tests/kube``.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from translators.sources.kubernetes.reflector import Expired, Reflector, WatchFailed
from translators.sources.kubernetes.resources import RESOURCES, Resource
from translators.sources.kubernetes.selectors import parse_selector

SERVICES = next(r for r in RESOURCES if r.kind == "Service")


def item(name: str, rv: str, ns: str = "default", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, **extra}


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def listed(*items: dict[str, Any], rv: str = "10") -> Reflector:
    r = Reflector(SERVICES)
    r.listed(items, rv)
    return r


def test_a_list_fills_the_store_and_sets_where_to_watch_from() -> None:
    r = Reflector(SERVICES)
    assert not r.synced and r.resource_version is None
    changed = r.listed([item("a", "5"), item("b", "6")], "10")
    assert changed == {("default", "a"), ("default", "b")}
    assert r.synced and r.resource_version == "10"
    # list items may omit apiVersion and kind; stored documents carry them
    assert r.objects[("default", "a")]["kind"] == "Service"
    assert r.objects[("default", "a")]["apiVersion"] == "v1"


def test_watch_events_add_modify_and_delete() -> None:
    r = listed(item("a", "5"))
    assert r.event(event("ADDED", item("b", "11"))) == {("default", "b")}
    assert r.event(event("MODIFIED", item("a", "12", spec={"x": 1}))) == {("default", "a")}
    assert r.objects[("default", "a")]["spec"] == {"x": 1}
    assert r.event(event("DELETED", item("b", "13"))) == {("default", "b")}
    assert set(r.objects) == {("default", "a")} and r.resource_version == "13"


def test_a_bookmark_moves_the_resource_version_and_changes_nothing() -> None:
    r = listed(item("a", "5"))
    bookmark = {"kind": "Service", "apiVersion": "v1", "metadata": {"resourceVersion": "42"}}
    assert r.event(event("BOOKMARK", bookmark)) == set()
    assert r.resource_version == "42"


def test_an_event_repeating_the_stored_version_changes_nothing() -> None:
    r = listed(item("a", "5"))
    assert r.event(event("MODIFIED", item("a", "5"))) == set()
    assert r.event(event("DELETED", item("zz", "14"))) == set()  # never seen


def test_a_relist_reports_only_what_changed_meanwhile() -> None:
    r = listed(item("a", "5"), item("b", "6"), item("c", "7"))
    # while the watch was down: b was deleted, c modified, d added; a is untouched
    changed = r.listed([item("a", "5"), item("c", "20"), item("d", "21")], "30")
    assert changed == {("default", "b"), ("default", "c"), ("default", "d")}
    assert set(r.objects) == {("default", "a"), ("default", "c"), ("default", "d")}
    assert r.resource_version == "30"


def test_410_gone_asks_for_a_relist_and_other_errors_for_a_new_watch() -> None:
    r = listed(item("a", "5"))
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    with pytest.raises(Expired):
        r.event(event("ERROR", gone))
    with pytest.raises(WatchFailed) as failed:
        r.event(event("ERROR", {"kind": "Status", "code": 500, "message": "etcd"}))
    assert failed.value.code == 500
    with pytest.raises(WatchFailed):
        r.event({"type": "ADDED"})  # no object


def test_a_resource_found_missing_is_synced_and_empty() -> None:
    crd = Resource("networking.istio.io/v1", "VirtualService", "virtualservices", needs_crd=True)
    r = Reflector(crd)
    r.listed([item("v", "3")], "3")
    assert r.missing() == {("default", "v")}
    assert r.synced and r.objects == {} and r.resource_version is None


def test_paths_of_core_and_group_resources() -> None:
    paths = {r.kind: r.path for r in RESOURCES}
    assert paths["Service"] == "/api/v1/services"
    assert paths["EndpointSlice"] == "/apis/discovery.k8s.io/v1/endpointslices"
    assert paths["VirtualService"] == "/apis/networking.istio.io/v1/virtualservices"
    assert paths["AuthorizationPolicy"] == "/apis/security.istio.io/v1/authorizationpolicies"


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ("", {}, True),
        ("env=prod", {"env": "prod"}, True),
        ("env==prod", {"env": "qa"}, False),
        ("env!=prod", {}, True),  # as in Kubernetes: no key, not equal
        ("env in (prod, qa),!legacy", {"env": "qa"}, True),
        ("env in (prod, qa),!legacy", {"env": "qa", "legacy": "1"}, False),
        ("env notin (prod)", {"env": "dev"}, True),
        ("istio-injection", {"istio-injection": "enabled"}, True),
        ("example.com/mesh=on,tier", {"example.com/mesh": "on"}, False),
    ],
)
def test_discovery_selectors_read_as_kubectl_l(
    selector: str, labels: dict[str, str], selected: bool
) -> None:
    assert parse_selector(selector).matches(labels) is selected


@pytest.mark.parametrize("bad", ["env=(x", "in (a)", "env in a", "=x", "a b"])
def test_a_malformed_selector_is_refused_naming_the_part(bad: str) -> None:
    with pytest.raises(ValueError, match="not a label selector requirement"):
        parse_selector(bad)


async def test_a_watch_failing_again_and_again_backs_off_more_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from translators.sources.kubernetes import watch

    async def refused(*_: object, **__: object) -> None:
        raise WatchFailed(503, "unavailable")

    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 5:
            raise asyncio.CancelledError

    monkeypatch.setattr(watch, "_get", refused)
    monkeypatch.setattr(watch.asyncio, "sleep", pause)
    errors: list[str] = []
    with pytest.raises(asyncio.CancelledError):
        await watch.follow(None, listed(), print, print, errors.append)  # type: ignore[arg-type]
    assert errors == ["WatchFailed: 503: unavailable"] * 5
    assert all(later > earlier for earlier, later in itertools.pairwise(pauses)), pauses
