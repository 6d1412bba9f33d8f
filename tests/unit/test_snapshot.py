"""Resource sets: content-derived versions and sharing of parts."""

from __future__ import annotations

import pytest
from protocol_fixtures import res

from xds_server import types
from xds_server.snapshot import ResourceSet

CDS = types.CLUSTER


def test_version_follows_content_not_order() -> None:
    a = ResourceSet.of(CDS, [res(CDS, "a", "1"), res(CDS, "b", "1")])
    b = ResourceSet.of(CDS, [res(CDS, "b", "1"), res(CDS, "a", "1")])
    c = ResourceSet.of(CDS, [res(CDS, "a", "2"), res(CDS, "b", "1")])
    assert a.version == b.version != c.version


def test_duplicate_names_and_wrong_types_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        ResourceSet.of(CDS, [res(CDS, "a"), res(CDS, "a")])
    with pytest.raises(ValueError, match="not a"):
        ResourceSet.of(CDS, [res(types.ENDPOINT, "a")])


def test_combined_set_shares_parts_and_sees_every_resource() -> None:
    shared = ResourceSet.of(CDS, [res(CDS, "outbound|a"), res(CDS, "outbound|b")])
    own = ResourceSet.of(CDS, [res(CDS, "inbound|1")])
    both = ResourceSet.combine(CDS, (shared, own))
    assert both.parts[0] is shared.parts[0]
    assert len(both) == 3 and sorted(both.names()) == ["inbound|1", "outbound|a", "outbound|b"]
    assert "inbound|1" in both and both.get("outbound|b") is shared.get("outbound|b")
    other = ResourceSet.combine(CDS, (shared, ResourceSet.of(CDS, [res(CDS, "inbound|2")])))
    assert other.version != both.version
    assert ResourceSet.combine(CDS, (shared, ResourceSet.of(CDS, []))) is shared


def test_a_selection_is_sorted_names_present_and_shared_by_one_name_set() -> None:
    eds = types.ENDPOINT
    endpoints = ResourceSet.of(eds, [res(eds, n) for n in ("c", "a", "b")])
    names = frozenset({"b", "a", "gone"})
    chosen = endpoints.select(names)
    assert [r.name for r in chosen.resources] == ["a", "b"] and chosen.names == {"a", "b"}
    assert chosen.versions == {r.name: r.version for r in chosen.resources}
    assert endpoints.select(names) is chosen  # the same name set: the same selection
    assert endpoints.select(frozenset({"a", "b", "gone"})) == chosen  # an equal set alike
    every = frozenset({"a", "b", "c"})
    assert endpoints.select(every).names is every  # all present: the names are the set itself
    (part,) = endpoints.parts
    assert part.versions() == {r.name: r.version for r in endpoints}
    assert part.versions() is part.versions()  # made once
