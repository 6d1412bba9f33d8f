"""Reading VirtualServices: every field kept, every invalid one refused with its path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from translators.mesh.documents import fields as v
from translators.mesh.documents.networking.shared_fields import parse_duration_text
from translators.mesh.documents.networking.virtual_services import (
    read_virtual_service,
    resolve_hosts,
)
from translators.mesh.model.routing import (
    Cors,
    Destination,
    Fault,
    HeaderOperations,
    MatchKind,
    Redirect,
    Retries,
    Rewrite,
    RouteDestination,
    StringMatch,
    VirtualService,
)
from translators.mesh.model.services import labels_of
from translators.sources.files import load_dir


def read(spec: dict[str, Any], warnings: list[str] | None = None) -> VirtualService:
    p = v.Problems("vs.yaml", 0)
    vs = read_virtual_service(p, spec, "shop", "r", warnings if warnings is not None else [])
    assert p.errors == (), p.errors
    return vs


def errors(spec: dict[str, Any]) -> dict[str, str]:
    p = v.Problems("vs.yaml", 2)
    read_virtual_service(p, spec, "shop", "r", [])
    assert p.errors
    return {e.field: e.reason for e in p.errors}


def dest(host: str, **extra: Any) -> dict[str, Any]:
    return {"destination": {"host": host}, **extra}


FULL_HTTP = {
    "name": "main",
    "match": [
        {
            "name": "m1",
            "uri": {"prefix": "/api"},
            "headers": {"end-user": {"exact": "jason"}, "x-any": {}},
            "withoutHeaders": {"x-skip": {"regex": "^y.*"}},
            "queryParams": {"debug": {"exact": "1"}},
            "method": {"exact": "GET"},
            "authority": {"prefix": "reviews"},
            "port": 9080,
            "sourceLabels": {"app": "productpage"},
            "gateways": ["mesh"],
            "ignoreUriCase": True,
        }
    ],
    "route": [
        {
            "destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}},
            "weight": 90,
        },
        {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
    ],
    "rewrite": {"uri": "/v1", "authority": "new"},
    "timeout": "1.5s",
    "retries": {"attempts": 3, "perTryTimeout": "100ms", "retryOn": "5xx,503"},
    "fault": {
        "delay": {"fixedDelay": "7s", "percentage": {"value": 50}},
        "abort": {"httpStatus": 500, "percentage": {"value": 10.5}},
    },
    "mirror": {"host": "shadow"},
    "mirrorPercentage": {"value": 25},
    "headers": {
        "request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]},
        "response": {"remove": ["server"]},
    },
    "corsPolicy": {
        "allowOrigins": [{"exact": "https://a.com"}, {"regex": "https://.*\\.b\\.com"}],
        "allowMethods": ["GET", "POST"],
        "allowHeaders": ["x-h"],
        "exposeHeaders": ["x-e"],
        "maxAge": "24h",
        "allowCredentials": True,
    },
}


def test_full_http_route_is_read() -> None:
    vs = read({"hosts": ["reviews"], "http": [FULL_HTTP]})
    assert (vs.hosts, vs.gateways, vs.export_to) == (("reviews",), ("mesh",), ())
    route = vs.http[0]
    match = route.matches[0]
    assert match.uri == StringMatch(MatchKind.PREFIX, "/api")
    assert match.headers == (
        ("end-user", StringMatch(MatchKind.EXACT, "jason")),
        ("x-any", StringMatch(MatchKind.PRESENT)),
    )
    assert match.without_headers == (("x-skip", StringMatch(MatchKind.REGEX, "^y.*")),)
    assert match.query_params == (("debug", StringMatch(MatchKind.EXACT, "1")),)
    assert match.source_labels == labels_of({"app": "productpage"})
    assert (match.port, match.ignore_uri_case, match.name) == (9080, True, "m1")
    assert route.route == (
        RouteDestination(Destination("reviews", "v1", 9080), 90),
        RouteDestination(Destination("reviews", "v2"), 10),
    )
    assert route.rewrite == Rewrite(uri="/v1", authority="new")
    assert route.timeout == 1500
    assert route.retries == Retries(3, 100, "5xx,503")
    assert route.fault == Fault(7000, 50.0, 500, 10.5)
    assert route.mirror is not None and route.mirror.percent == 25.0
    assert route.headers == HeaderOperations(
        (("x-a", "1"),), (("x-b", "2"),), ("x-c",), (), (), ("server",)
    )
    assert route.cors == Cors(
        (
            StringMatch(MatchKind.EXACT, "https://a.com"),
            StringMatch(MatchKind.REGEX, "https://.*\\.b\\.com"),
        ),
        ("GET", "POST"),
        ("x-h",),
        ("x-e",),
        24 * 3600 * 1000,
        True,
    )


def test_hosts_resolved_in_the_virtual_service_namespace() -> None:
    vs = read(
        {
            "hosts": ["reviews", "*.example.com", "ratings.other.svc.cluster.local"],
            "http": [{"route": [dest("reviews")], "mirror": {"host": "shadow"}}],
            "tcp": [{"route": [dest("db")]}],
        }
    )
    resolved = resolve_hosts(vs, "cluster.local")
    assert resolved.hosts == (
        "reviews.shop.svc.cluster.local",
        "*.example.com",
        "ratings.other.svc.cluster.local",
    )
    assert resolved.http[0].route[0].destination.host == "reviews.shop.svc.cluster.local"
    assert resolved.http[0].mirror is not None
    assert resolved.http[0].mirror.destination.host == "shadow.shop.svc.cluster.local"
    assert resolved.tcp[0].route[0].destination.host == "db.shop.svc.cluster.local"


def test_gateways_export_to_redirect_tcp_tls() -> None:
    vs = read(
        {
            "hosts": ["*.example.com"],
            "gateways": ["gw", "mesh", "other/gw"],
            "exportTo": [".", "billing"],
            "http": [
                {
                    "redirect": {
                        "uri": "/new",
                        "authority": "b",
                        "redirectCode": 302,
                        "scheme": "https",
                        "port": 8443,
                    }
                }
            ],
            "tcp": [{"match": [{"port": 5432}], "route": [dest("db")]}],
            "tls": [
                {
                    "match": [{"sniHosts": ["a.example.com"], "port": 443}],
                    "route": [dest("a.example.com", weight=60), dest("b.example.com", weight=40)],
                }
            ],
        }
    )
    assert vs.gateways == ("shop/gw", "mesh", "other/gw")
    assert vs.export_to == ("billing", "shop")
    assert vs.http[0].redirect == Redirect("/new", "b", 302, "https", 8443)
    assert vs.tcp[0].matches[0].port == 5432
    assert vs.tls[0].matches[0].sni_hosts == ("a.example.com",)
    assert [d.weight for d in vs.tls[0].route] == [60, 40]


def test_single_destination_may_omit_weight() -> None:
    assert read({"hosts": ["a"], "http": [{"route": [dest("a")]}]}).http[0].route[0].weight is None


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        (
            {"gateways": ["gw"], "http": [{"route": [dest("a")]}]},
            "spec.gateways",
            "delegate virtual service must have no gateways",
        ),
        ({"hosts": ["bad host"]}, "spec.hosts[0]", "invalid (label 'bad host' invalid)"),
        ({"hosts": ["a"], "exportTo": ["Bad!"]}, "spec.exportTo[0]", "namespace"),
        (
            {"hosts": ["a"], "http": [{"route": [dest("a", weight=0), dest("b", weight=0)]}]},
            "spec.http[0].route",
            "total destination weight = 0",
        ),
        (
            {"hosts": ["a"], "http": [{"route": [dest("a", weight=-1), dest("b", weight=10)]}]},
            "spec.http[0].route[0].weight",
            "got -1",
        ),
        ({"hosts": ["a"], "http": [{}]}, "spec.http[0]", "exactly one of route"),
        (
            {"hosts": ["a"], "http": [{"route": [dest("a")], "redirect": {"uri": "/"}}]},
            "spec.http[0]",
            "exactly one of route",
        ),
        (
            {"hosts": ["a"], "http": [{"redirect": {"uri": "/"}, "rewrite": {"uri": "/"}}]},
            "spec.http[0].rewrite",
            "redirect",
        ),
        (
            {"hosts": ["a"], "http": [{"route": [{"destination": {}}]}]},
            "spec.http[0].route[0].destination.host",
            "required",
        ),
        (
            {
                "hosts": ["a"],
                "http": [{"match": [{"uri": {"regex": "a(?=b)"}}], "route": [dest("a")]}],
            },
            "spec.http[0].match[0].uri.regex",
            "RE2",
        ),
        (
            {
                "hosts": ["a"],
                "http": [
                    {"match": [{"headers": {"x": {"regex": "(a)\\1"}}}], "route": [dest("a")]}
                ],
            },
            "spec.http[0].match[0].headers.x.regex",
            "RE2",
        ),
        (
            {
                "hosts": ["a"],
                "http": [{"match": [{"uri": {"regex": "a(b"}}], "route": [dest("a")]}],
            },
            "spec.http[0].match[0].uri.regex",
            "RE2",
        ),
        (
            {
                "hosts": ["a"],
                "http": [{"match": [{"uri": {"exact": "/", "prefix": "/"}}], "route": [dest("a")]}],
            },
            "spec.http[0].match[0].uri",
            "exactly one",
        ),
        (
            {"hosts": ["a"], "http": [{"route": [dest("a")], "timeout": "10"}]},
            "spec.http[0].timeout",
            "duration",
        ),
        (
            {"hosts": ["a"], "http": [{"route": [dest("a")], "timeout": "1.5sec"}]},
            "spec.http[0].timeout",
            "duration",
        ),
        (
            {"hosts": ["a"], "http": [{"route": [dest("a")], "timeout": "1500us"}]},
            "spec.http[0].timeout",
            "milliseconds",
        ),
        (
            {
                "hosts": ["a"],
                "http": [{"route": [dest("a")], "retries": {"attempts": 2, "perTryTimeout": "x"}}],
            },
            "spec.http[0].retries.perTryTimeout",
            "duration",
        ),
        (
            {
                "hosts": ["a"],
                "http": [
                    {"route": [dest("a")], "retries": {"attempts": 2, "retryOn": "5xx,bogus"}}
                ],
            },
            "spec.http[0].retries.retryOn",
            "'bogus'",
        ),
        (
            {
                "hosts": ["a"],
                "http": [{"route": [dest("a")], "fault": {"abort": {"httpStatus": 700}}}],
            },
            "spec.http[0].fault.abort.httpStatus",
            "200-599",
        ),
        (
            {
                "hosts": ["a"],
                "http": [
                    {
                        "route": [dest("a")],
                        "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 150}}},
                    }
                ],
            },
            "spec.http[0].fault.delay.percentage.value",
            "0-100",
        ),
        (
            {"hosts": ["a"], "http": [{"redirect": {"redirectCode": 305}}]},
            "spec.http[0].redirect.redirectCode",
            "301",
        ),
        (
            {
                "hosts": ["a"],
                "http": [
                    {"route": [dest("a")], "corsPolicy": {"allowOrigins": [{"regex": "(?!x)"}]}}
                ],
            },
            "spec.http[0].corsPolicy.allowOrigins[0].regex",
            "RE2",
        ),
        ({"hosts": ["a"], "tls": [{"route": [dest("a")]}]}, "spec.tls[0].match", "sniHosts"),
        (
            {
                "hosts": ["a.example.com"],
                "tls": [{"match": [{"sniHosts": ["b.other.com"]}], "route": [dest("a")]}],
            },
            "spec.tls[0].match[0].sniHosts[0]",
            "not a compatible subset",
        ),
        (
            {"hosts": ["a"], "tcp": [{"match": [{"port": 5432}]}]},
            "spec.tcp[0].route",
            "at least one destination",
        ),
        (
            {
                "hosts": ["a"],
                "http": [{"match": [{"headers": {"X Up": {"exact": "1"}}}], "route": [dest("a")]}],
            },
            "spec.http[0].match[0].headers.X Up",
            "not valid",
        ),
    ],
)
def test_invalid_fields_are_refused(spec: dict[str, Any], field: str, reason: str) -> None:
    found = errors(spec)
    assert field in found, found
    assert reason in found[field]


def test_unsupported_fields_warn() -> None:
    warnings: list[str] = []
    read({"http": [{"route": [dest("a")], "mirrors": []}]}, warnings)
    assert any("delegate VirtualServices are not applied yet" in w for w in warnings)
    assert any("spec.http[0].mirrors" in w for w in warnings)


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1.5s", 1_500_000_000),
        ("100ms", 100_000_000),
        ("1h", 3600 * 10**9),
        ("1m30s", 90 * 10**9),
        ("0", 0),
        ("0s", 0),
        ("abc", None),
        ("1", None),
        ("", None),
    ],
)
def test_durations(text: str, nanos: int | None) -> None:
    assert parse_duration_text(text) == nanos


BOOKINFO = Path(__file__).parents[2] / "pyistiod" / "examples"


@pytest.mark.parametrize(
    "variant", sorted(p.name for p in (BOOKINFO / "bookinfo-routing").glob("*.yaml"))
)
def test_bookinfo_routing_samples_load(variant: str, tmp_path: Path) -> None:
    shutil.copytree(BOOKINFO / "bookinfo", tmp_path / "mesh")
    shutil.copy(BOOKINFO / "bookinfo-routing" / variant, tmp_path / "mesh" / variant)
    result = load_dir(tmp_path / "mesh")
    assert result.warnings == ()
    assert result.model.virtual_services
    for vs in result.model.virtual_services:
        assert all(h.endswith(".default.svc.cluster.local") for h in vs.hosts)


def test_invalid_virtual_service_file_is_refused_with_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "vs.yaml").write_text(
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\n"
        "metadata: {name: r, namespace: shop}\n"
        "spec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n"
        "      weight: 0\n    - destination: {host: s}\n      weight: 0\n"
    )
    (error,) = load_dir(tmp_path).errors
    assert (error.path, error.field, error.object) == (
        "vs.yaml",
        "spec.http[0].route",
        "VirtualService shop/r",
    )


def test_a_regex_re2_refuses_writes_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    from translators.mesh.documents import fields as fields_module
    from translators.mesh.documents.networking import shared_fields as networking_fields

    p = fields_module.Problems("vs.yaml", 0)
    assert networking_fields.regex(p, "/x(?=y)", "spec.http[0].match[0].uri.regex") is None
    assert "invalid perl operator" in p.errors[0].reason
    assert capfd.readouterr().err == ""  # RE2's own log line would land in serve's log
