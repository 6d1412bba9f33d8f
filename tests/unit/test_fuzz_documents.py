"""Fuzzing the document readers: whatever a document holds, it is read or refused, never a crash.

Documents are drawn from the shape of each Istio kind (``known_fields``), so
the fuzz reaches the readers deep inside a spec, with values of every YAML
type and strings near the valid ones (ports, durations, hosts, wildcards,
enum names). Every document must come back as one object or as errors with
a field path; and the objects that were read must build a model and Envoy
config for a proxy without an exception.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translators.envoy.resources import build_resources
from translators.mesh.documents.kinds import parse_object
from translators.mesh.documents.known_fields import ISTIO_SPECS, LEAF, Fields, MapOf, Shape
from translators.mesh.model.proxy import proxy_from_node
from translators.sources.loader import Documents, load

API = {
    "VirtualService": "networking.istio.io/v1",
    "DestinationRule": "networking.istio.io/v1",
    "Gateway": "networking.istio.io/v1",
    "ServiceEntry": "networking.istio.io/v1",
    "WorkloadEntry": "networking.istio.io/v1",
    "Sidecar": "networking.istio.io/v1",
    "PeerAuthentication": "security.istio.io/v1",
    "AuthorizationPolicy": "security.istio.io/v1",
}

NEAR_VALID = st.sampled_from(
    [
        "", "*", "reviews", "reviews.default.svc.cluster.local", "*.example.com", "./*",
        "*/*", "~/*", "ns/name", "mesh", "80", "http", "HTTP", "TCP", "TLS", "HTTPS", "GRPC",
        "1s", "0s", "100ms", "-1s", "5xx", "503", "v1", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL",
        "STRICT", "PERMISSIVE", "DISABLE", "DENY", "ALLOW", "DNS", "STATIC", "NONE",
        "MESH_EXTERNAL", "ROUND_ROBIN", "127.0.0.1", "10.0.0.0/8", "/api", "^/v[0-9]+$",
        "(", "GET", "x-user", ":authority", "true", "a" * 300,
    ]
)  # fmt: skip
SCALAR = st.one_of(
    NEAR_VALID,
    st.text(max_size=12),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
JUNK = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NEAR_VALID, inner, max_size=3),
    max_leaves=6,
)


def value(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value shaped like ``shape`` most of the time, junk sometimes."""
    if shape is LEAF or depth > 4:
        return st.one_of(SCALAR, st.lists(SCALAR, max_size=3), JUNK)
    if isinstance(shape, MapOf):
        inner = value(shape.value, depth + 1)
        return st.one_of(st.dictionaries(NEAR_VALID, inner, max_size=3), JUNK)
    assert isinstance(shape, Fields)
    names = sorted(shape.names)
    obj = st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(
                value(shape.names[name], depth + 1),
                st.lists(value(shape.names[name], depth + 1), min_size=1, max_size=2),
            )
            for name in names
        },
    )
    return st.one_of(obj, obj, obj, JUNK)


def document(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just(API[kind]),
            "kind": st.just(kind),
            "metadata": st.fixed_dictionaries(
                {"name": st.sampled_from(["a", "b", "Bad_Name"])},
                optional={
                    "namespace": st.sampled_from(["default", "istio-system", "other"]),
                    "labels": st.one_of(st.dictionaries(NEAR_VALID, SCALAR, max_size=2), JUNK),
                    "annotations": st.dictionaries(
                        st.just("istio.io/dry-run"), NEAR_VALID, max_size=1
                    ),
                },
            ),
            "spec": value(ISTIO_SPECS[kind]),
        }
    )


ANY_DOCUMENT = st.sampled_from(sorted(API)).flatmap(document)
SIDECAR = "sidecar~127.0.0.11~frontend-0.default~default.svc.cluster.local"
GATEWAY = "router~127.0.0.30~ingress-0.istio-system~istio-system.svc.cluster.local"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_DOCUMENT)
def test_any_document_is_read_or_refused_with_a_field_path(doc: dict[str, Any]) -> None:
    result = parse_object(doc, path="fuzz.yaml", document=0)
    assert (result.obj is None) == bool(result.errors)
    for error in result.errors:
        assert error.reason and error.path == "fuzz.yaml"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANY_DOCUMENT, min_size=1, max_size=4))
def test_what_is_read_builds_a_model_and_envoy_config(docs: list[dict[str, Any]]) -> None:
    results = tuple(parse_object(d, path="fuzz.yaml", document=i) for i, d in enumerate(docs))
    loaded = load([Documents(results)])
    for node_id, labels in ((SIDECAR, {"app": "a"}), (GATEWAY, {"istio": "ingressgateway"})):
        proxy = proxy_from_node(node_id, {"LABELS": labels}, loaded.model)
        build_resources(loaded.model, proxy)
