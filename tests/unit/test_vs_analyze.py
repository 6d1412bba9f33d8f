"""``mesh.analysis.analyze``: warnings about routing config that is valid but suspicious."""

from __future__ import annotations

from dataclasses import replace

from test_vs_routes import bookinfo, with_vs

from translators.mesh.analysis import analyze
from translators.mesh.model.policies import DestinationRule, Policies


def dest(host: str, **extra: object) -> dict[str, object]:
    return {"destination": {"host": host, **extra}}


def test_bookinfo_samples_are_clean() -> None:
    assert analyze(bookinfo("virtual-service-all-v1.yaml")) == []
    assert analyze(bookinfo("virtual-service-reviews-jason-v2-v3.yaml")) == []


def test_unknown_host_subset_and_port() -> None:
    model = with_vs(
        bookinfo(),
        {
            "hosts": ["reviews"],
            "http": [
                {"route": [dest("nowhere")], "mirror": {"host": "reviews", "subset": "v9"}},
            ],
            "tcp": [{"route": [dest("reviews", port={"number": 1234})]}],
        },
        name="r",
    )
    found = analyze(model)
    assert any("spec.http[0].route[0].destination.host 'nowhere.default.svc" in w for w in found)
    assert any("spec.http[0].mirror.subset 'v9' is not defined" in w for w in found)
    assert any("spec.tcp[0].route[0].destination.port 1234" in w for w in found)
    assert all(w.startswith("VirtualService default/r") for w in found)


def test_subset_without_any_rule() -> None:
    model = replace(bookinfo(), policies=Policies())
    model = with_vs(
        model, {"hosts": ["reviews"], "http": [{"route": [dest("reviews", subset="v1")]}]}
    )
    (warning,) = analyze(model)
    assert "'v1' is not defined" in warning and "(no rule)" in warning


def test_destination_rule_for_no_service() -> None:
    rules = (DestinationRule("default", "ghost", "ghost.default.svc.cluster.local"),)
    model = replace(bookinfo(), policies=Policies.build(destination_rules=rules))
    assert analyze(model) == [
        "DestinationRule default/ghost: spec.host 'ghost.default.svc.cluster.local' "
        "matches no service in the mesh"
    ]


def test_conflicting_virtual_services_for_one_host() -> None:
    spec = {"hosts": ["reviews"], "http": [{"route": [dest("reviews")]}]}
    model = with_vs(with_vs(bookinfo(), spec, name="b"), spec, name="a")
    model = replace(
        model, virtual_services=tuple(sorted(model.virtual_services, key=lambda v: v.name))
    )
    (warning,) = analyze(model)
    assert "default/a (first by namespace/name) is used, default/b ignored" in warning
