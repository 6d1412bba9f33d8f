"""VirtualServices in RDS and LDS: Envoy output for every feature, on the bookinfo mesh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from translators.envoy.listeners.sidecar import build_listeners
from translators.envoy.routes.sidecar import build_routes
from translators.mesh.documents import fields as v
from translators.mesh.documents.networking.virtual_services import (
    read_virtual_service,
    resolve_hosts,
)
from translators.mesh.model.mesh import MeshModel
from translators.mesh.model.policies import DestinationRule, Policies, Subset, TrafficPolicy
from translators.mesh.model.proxy import Proxy, ProxyType
from translators.mesh.model.services import labels_of
from translators.mesh.model.traffic import ConsistentHash, HashKey, LoadBalancer
from translators.sources.files import load_dir

EXAMPLES = Path(__file__).parents[2] / "pyistiod" / "examples"
REVIEWS = "reviews.default.svc.cluster.local"
RATINGS = "ratings.default.svc.cluster.local"
PRODUCTPAGE = Proxy(
    ProxyType.SIDECAR,
    "127.0.0.101",
    "productpage-v1",
    "default",
    "cluster.local",
    labels_of({"app": "productpage", "version": "v1"}),
)


def bookinfo(*variants: str) -> MeshModel:
    """The bookinfo mesh with routing sample files added."""
    model = load_dir(EXAMPLES / "bookinfo").model
    vss = [
        vs
        for name in variants
        for vs in load_dir(EXAMPLES / "bookinfo-routing" / name).model.virtual_services
    ]
    return replace(model, virtual_services=tuple(sorted(vss, key=lambda x: (x.namespace, x.name))))


def with_vs(
    model: MeshModel, spec: dict[str, Any], name: str = "vs", ns: str = "default"
) -> MeshModel:
    p = v.Problems("t.yaml", 0)
    vs = resolve_hosts(read_virtual_service(p, spec, ns, name, []), "cluster.local")
    assert p.errors == (), p.errors
    return replace(model, virtual_services=(*model.virtual_services, vs))


def vhost_routes(model: MeshModel, host: str, proxy: Proxy = PRODUCTPAGE) -> list[rc.Route]:
    (config,) = [c for c in build_routes(model, proxy) if c.name == "9080"]
    (vhost,) = [vh for vh in config.virtual_hosts if vh.name == f"{host}:9080"]
    return list(vhost.routes)


def test_without_virtual_service_the_default_route() -> None:
    (route,) = vhost_routes(bookinfo(), REVIEWS)
    assert route.name == "default"
    assert route.route.cluster == f"outbound|9080||{REVIEWS}"
    assert route.route.retry_policy.num_retries.value == 2


def test_all_v1_routes_to_subset_clusters() -> None:
    (route,) = vhost_routes(bookinfo("virtual-service-all-v1.yaml"), REVIEWS)
    assert route.route.cluster == f"outbound|9080|v1|{REVIEWS}"
    # no match: prefix "/" alone, as Istio's TranslateRouteMatch(nil)
    assert route.match.prefix == "/" and not route.match.HasField("case_sensitive")
    assert route.route.timeout.seconds == 0
    assert route.route.retry_policy.retry_on.startswith("connect-failure")


def test_reviews_90_10_is_weighted() -> None:
    (route,) = vhost_routes(bookinfo("virtual-service-reviews-90-10.yaml"), REVIEWS)
    weighted = [(c.name, c.weight.value) for c in route.route.weighted_clusters.clusters]
    assert weighted == [(f"outbound|9080|v1|{REVIEWS}", 90), (f"outbound|9080|v2|{REVIEWS}", 10)]


def test_jason_header_match_first_then_catch_all() -> None:
    jason, rest = vhost_routes(bookinfo("virtual-service-reviews-jason-v2-v3.yaml"), REVIEWS)
    (header,) = jason.match.headers
    assert (header.name, header.string_match.exact) == ("end-user", "jason")
    assert jason.route.cluster == f"outbound|9080|v2|{REVIEWS}"
    assert rest.route.cluster == f"outbound|9080|v3|{REVIEWS}"
    assert not rest.match.headers


def test_ratings_delay_and_abort_faults() -> None:
    delayed, _ = vhost_routes(bookinfo("virtual-service-ratings-test-delay.yaml"), RATINGS)
    fault = fault_pb2.HTTPFault()
    delayed.typed_per_filter_config["envoy.filters.http.fault"].Unpack(fault)
    assert fault.delay.fixed_delay.seconds == 7
    assert (fault.delay.percentage.numerator, fault.delay.percentage.denominator) == (
        1_000_000,
        2,  # MILLION
    )
    aborted, plain = vhost_routes(bookinfo("virtual-service-ratings-test-abort.yaml"), RATINGS)
    fault = fault_pb2.HTTPFault()
    aborted.typed_per_filter_config["envoy.filters.http.fault"].Unpack(fault)
    assert fault.abort.http_status == 500 and fault.abort.percentage.numerator == 1_000_000
    assert not plain.typed_per_filter_config


def test_a_grpc_abort_is_the_status_code() -> None:
    spec = {
        "hosts": ["ratings"],
        "http": [
            {
                "route": [{"destination": {"host": "ratings"}}],
                "fault": {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 10}}},
            }
        ],
    }
    (aborted,) = vhost_routes(with_vs(bookinfo(), spec), RATINGS)
    fault = fault_pb2.HTTPFault()
    aborted.typed_per_filter_config["envoy.filters.http.fault"].Unpack(fault)
    assert fault.abort.WhichOneof("error_type") == "grpc_status"
    assert (fault.abort.grpc_status, fault.abort.percentage.numerator) == (14, 100_000)


def test_every_http_feature() -> None:
    spec = {
        "hosts": ["reviews"],
        "http": [
            {
                "name": "api",
                "match": [
                    {
                        "name": "v",
                        "uri": {"regex": "/api/.*"},
                        "ignoreUriCase": True,
                        "method": {"exact": "GET"},
                        "queryParams": {"q": {"prefix": "a"}},
                        "withoutHeaders": {"x-skip": {"exact": "1"}},
                    }
                ],
                "route": [
                    {"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}}
                ],
                "rewrite": {"uri": "/v1/", "authority": "internal"},
                "timeout": "2.5s",
                "retries": {
                    "attempts": 4,
                    "perTryTimeout": "0.5s",
                    "retryOn": "5xx,429",
                    "retryRemoteLocalities": True,
                },
                "mirror": {"host": "ratings"},
                "mirrorPercentage": {"value": 12.5},
                "headers": {
                    "request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]},
                    "response": {"set": {"x-d": "4"}, "remove": ["server"]},
                },
                "corsPolicy": {
                    "allowOrigins": [{"exact": "https://a.com"}],
                    "allowMethods": ["GET", "POST"],
                    "maxAge": "24h",
                    "allowCredentials": False,
                },
            },
            {
                "match": [{"uri": {"prefix": "/old"}}],
                "redirect": {"uri": "/new", "authority": "b", "redirectCode": 308},
            },
            {"match": [{"uri": {"exact": "/health"}}], "directResponse": {"status": 204}},
            {"route": [{"destination": {"host": "reviews"}}], "retries": {"attempts": 0}},
        ],
    }
    api, redirect, direct, rest = vhost_routes(with_vs(bookinfo(), spec), REVIEWS)
    assert api.name == "api.v"
    assert api.match.safe_regex.regex == "/api/.*" and not api.match.case_sensitive.value
    assert [(h.name, h.invert_match) for h in api.match.headers] == [
        ("x-skip", True),
        (":method", False),
    ]
    assert api.match.query_parameters[0].string_match.prefix == "a"
    action = api.route
    assert action.cluster == f"outbound|9080|v1|{REVIEWS}"
    assert (action.prefix_rewrite, action.host_rewrite_literal) == ("/v1/", "internal")
    assert action.timeout.ToMilliseconds() == 2500
    retry = action.retry_policy
    assert (retry.num_retries.value, retry.retry_on) == (4, "5xx,retriable-status-codes")
    assert list(retry.retriable_status_codes) == [429]
    assert retry.per_try_timeout.ToMilliseconds() == 500
    assert retry.retry_priority.name == "envoy.retry_priorities.previous_priorities"
    (mirror,) = action.request_mirror_policies
    assert mirror.cluster == f"outbound|9080||{RATINGS}"
    assert mirror.runtime_fraction.default_value.numerator == 125_000
    assert [(h.header.key, h.append_action) for h in api.request_headers_to_add] == [
        ("x-a", 2),  # OVERWRITE_IF_EXISTS_OR_ADD
        ("x-b", 0),  # APPEND_IF_EXISTS_OR_ADD
    ]
    assert list(api.request_headers_to_remove) == ["x-c"]
    assert list(api.response_headers_to_remove) == ["server"]
    cors = cors_pb2.CorsPolicy()
    api.typed_per_filter_config["envoy.filters.http.cors"].Unpack(cors)
    assert cors.allow_origin_string_match[0].exact == "https://a.com"
    assert (cors.allow_methods, cors.max_age, cors.allow_credentials.value) == (
        "GET,POST",
        "86400",
        False,
    )
    assert (redirect.redirect.path_redirect, redirect.redirect.host_redirect) == ("/new", "b")
    assert redirect.redirect.response_code == rc.RedirectAction.PERMANENT_REDIRECT
    assert direct.direct_response.status == 204 and direct.match.path == "/health"
    assert not rest.route.HasField("retry_policy")


def test_source_labels_and_port_matches_apply_per_proxy() -> None:
    spec = {
        "hosts": ["reviews"],
        "http": [
            {
                "match": [{"sourceLabels": {"app": "productpage"}}],
                "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
            },
            {
                "match": [{"port": 8080}],
                "route": [{"destination": {"host": "reviews", "subset": "v3"}}],
            },
        ],
    }
    model = with_vs(bookinfo(), spec)
    (route,) = vhost_routes(model, REVIEWS)
    assert route.route.cluster == f"outbound|9080|v2|{REVIEWS}"
    other = replace(PRODUCTPAGE, labels=labels_of({"app": "details"}))
    # nothing applies to details' proxy on 9080: Istio's default route
    (route,) = vhost_routes(model, REVIEWS, other)
    assert route.name == "default"


def test_export_to_gateways_and_first_virtual_service_wins() -> None:
    model = with_vs(
        bookinfo(),
        {
            "hosts": ["reviews"],
            "exportTo": ["."],
            "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}],
        },
        name="a",
    )
    model = with_vs(
        model,
        {
            "hosts": ["reviews"],
            "http": [{"route": [{"destination": {"host": "reviews", "subset": "v2"}}]}],
        },
        name="b",
    )
    model = with_vs(
        model,
        {
            "hosts": ["reviews"],
            "gateways": ["gw"],
            "http": [{"route": [{"destination": {"host": "reviews", "subset": "v3"}}]}],
        },
        name="0",
    )
    assert vhost_routes(model, REVIEWS)[0].route.cluster == f"outbound|9080|v1|{REVIEWS}"
    elsewhere = replace(PRODUCTPAGE, namespace="other")
    (config,) = [c for c in build_routes(model, elsewhere) if c.name == "9080"]
    (vhost,) = [vh for vh in config.virtual_hosts if vh.name == f"{REVIEWS}:9080"]
    assert vhost.routes[0].route.cluster == f"outbound|9080|v2|{REVIEWS}"


def test_wildcard_host_and_unknown_subset() -> None:
    model = with_vs(
        bookinfo(),
        {
            "hosts": ["*.default.svc.cluster.local"],
            "http": [{"route": [{"destination": {"host": "reviews", "subset": "v9"}}]}],
        },
    )
    # the wildcard routes every service of the namespace; v9 is no subset: a missing cluster
    for host in (REVIEWS, RATINGS):
        assert vhost_routes(model, host)[0].route.cluster == f"outbound|9080|v9|{REVIEWS}"


def test_consistent_hash_becomes_hash_policy() -> None:
    header = LoadBalancer(None, ConsistentHash(HashKey.HEADER, "x-user"))
    cookie = LoadBalancer(None, ConsistentHash(HashKey.COOKIE, "c", 60_000, "/"))
    rule = DestinationRule(
        "default",
        "reviews",
        REVIEWS,
        TrafficPolicy(load_balancer=header),
        (Subset("v1", labels_of({"version": "v1"}), TrafficPolicy(load_balancer=cookie)),),
    )
    model = replace(bookinfo(), policies=Policies.build(destination_rules=(rule,)))
    (default,) = vhost_routes(model, REVIEWS)
    assert default.route.hash_policy[0].header.header_name == "x-user"
    assert not default.route.retry_policy.retry_host_predicate
    model = with_vs(
        model,
        {
            "hosts": ["reviews"],
            "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}],
        },
    )
    (route,) = vhost_routes(model, REVIEWS)
    cookie_policy = route.route.hash_policy[0].cookie
    assert (cookie_policy.name, cookie_policy.ttl.seconds, cookie_policy.path) == ("c", 60, "/")


def tcp_mesh() -> MeshModel:
    model = load_dir(EXAMPLES / "bookinfo").model
    db = replace(
        model.services[0],
        hostname="db.default.svc.cluster.local",
        name="db",
        ports=(
            replace(
                model.services[0].ports[0],
                name="tls",
                port=5432,
                protocol=type(model.services[0].ports[0].protocol)("TLS"),
            ),
        ),
    )
    return replace(model, services=(*model.services, db))


def test_tcp_weighted_and_tls_sni_chains() -> None:
    model = with_vs(
        tcp_mesh(),
        {
            "hosts": ["db"],
            "tls": [
                {
                    "match": [{"sniHosts": ["db"], "port": 5432}],
                    "route": [{"destination": {"host": "db", "subset": "primary"}}],
                }
            ],
            "tcp": [
                {
                    "route": [
                        {"destination": {"host": "db", "subset": "a"}, "weight": 70},
                        {"destination": {"host": "db", "subset": "b"}, "weight": 30},
                    ]
                }
            ],
        },
    )
    (listener,) = [x for x in build_listeners(model, PRODUCTPAGE) if x.name.endswith("_5432")]
    assert [f.name for f in listener.listener_filters] == ["envoy.filters.listener.tls_inspector"]
    sni, default = listener.filter_chains
    assert list(sni.filter_chain_match.server_names) == ["db"]  # SNI as clients send it
    tcp = tcp_proxy_pb2.TcpProxy()
    sni.filters[0].typed_config.Unpack(tcp)
    assert tcp.cluster == "outbound|5432|primary|db.default.svc.cluster.local"
    default.filters[0].typed_config.Unpack(tcp)
    assert [(c.name, c.weight) for c in tcp.weighted_clusters.clusters] == [
        ("outbound|5432|a|db.default.svc.cluster.local", 70),
        ("outbound|5432|b|db.default.svc.cluster.local", 30),
    ]


def test_routes_carry_istios_tracing_decorator_and_grpc_timeout_cap() -> None:
    (default,) = vhost_routes(bookinfo(), REVIEWS)
    assert default.decorator.operation == f"{REVIEWS}:9080/*"
    assert default.route.max_grpc_timeout.seconds == 0
    assert not default.route.HasField("max_stream_duration")  # it would void the timeout
    jason, _ = vhost_routes(bookinfo("virtual-service-reviews-jason-v2-v3.yaml"), REVIEWS)
    assert jason.decorator.operation == f"{REVIEWS}:9080/*"  # one cluster: its host and port
    (split,) = vhost_routes(bookinfo("virtual-service-reviews-90-10.yaml"), REVIEWS)
    assert split.decorator.operation == "reviews:9080/*"  # several: the VirtualService's name
    timed = with_vs(
        bookinfo(),
        {
            "hosts": ["ratings"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/api"}}],
                    "timeout": "3s",
                    "route": [{"destination": {"host": "ratings"}}],
                }
            ],
        },
    )
    (route,) = vhost_routes(timed, RATINGS)
    assert route.decorator.operation == f"{RATINGS}:9080/api*"
    assert route.route.max_grpc_timeout.seconds == 3 and route.route.timeout.seconds == 3
