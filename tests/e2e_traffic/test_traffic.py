"""Istio traffic management with real Envoy sidecars (bookinfo on loopback).

The test client plays productpage's app: it calls services through
productpage's sidecar. Every test removes the routing it adds; the fixture's
debounce is 50 ms, so each waits for its config to be in force before
measuring. Statistical bounds are stated where the outcome is random.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path

import pytest
from bookinfo_mesh import EXAMPLES, EXTERNAL, Bookinfo

from pyistiod.local_mesh import wait_for

pytestmark = pytest.mark.e2e

ROUTING = EXAMPLES / "bookinfo-routing"


def binomial_bounds(n: int, p: float, z: float = 4.0) -> tuple[float, float]:
    """Counts within ``z`` standard deviations of ``n * p`` (z=4: a false alarm in ~16,000)."""
    sd = math.sqrt(n * p * (1 - p))
    return n * p - z * sd, n * p + z * sd


def versions(mesh: Bookinfo, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
    return Counter(mesh.pod_of("reviews", headers=headers) for _ in range(n))


def routed(mesh: Bookinfo, name: str, text: str, check: object, timeout: float = 10) -> Path:
    path = mesh.apply(name, text)
    wait_for(check, timeout=timeout)
    return path


def sample(name: str) -> str:
    return (ROUTING / name).read_text()


def test_istio_samples_route_all_v1_then_90_10(bookinfo: Bookinfo) -> None:
    path = routed(
        bookinfo,
        "vs.yaml",
        sample("virtual-service-all-v1.yaml"),
        lambda: set(versions(bookinfo, 20)) == {"reviews-v1"},
    )
    try:
        assert set(versions(bookinfo, 100)) == {"reviews-v1"}
        path.write_text(sample("virtual-service-reviews-90-10.yaml"))
        wait_for(lambda: "reviews-v2" in versions(bookinfo, 40), timeout=10)
        counts = versions(bookinfo, 1000)
        low, high = binomial_bounds(1000, 0.10)
        assert set(counts) == {"reviews-v1", "reviews-v2"}
        assert low <= counts["reviews-v2"] <= high, counts
    finally:
        path.unlink()


def test_istio_sample_jason_goes_to_v2_everyone_else_to_v3(bookinfo: Bookinfo) -> None:
    jason = {"end-user": "jason"}
    path = routed(
        bookinfo,
        "vs.yaml",
        sample("virtual-service-reviews-jason-v2-v3.yaml"),
        lambda: set(versions(bookinfo, 10, jason)) == {"reviews-v2"},
    )
    try:
        assert set(versions(bookinfo, 50, jason)) == {"reviews-v2"}
        assert set(versions(bookinfo, 50, {"end-user": "alice"})) == {"reviews-v3"}
        assert set(versions(bookinfo, 50)) == {"reviews-v3"}
    finally:
        path.unlink()


FAULT_ABORT_HALF = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
    - fault:
        abort: {httpStatus: 418, percentage: {value: 50}}
      route: [{destination: {host: ratings}}]
"""


def test_fault_abort_at_half_returns_the_status_at_about_that_rate(bookinfo: Bookinfo) -> None:
    path = routed(
        bookinfo,
        "fault.yaml",
        FAULT_ABORT_HALF,
        lambda: any(bookinfo.call("ratings")[0] == 418 for _ in range(20)),
    )
    try:
        statuses = Counter(bookinfo.call("ratings")[0] for _ in range(600))
        low, high = binomial_bounds(600, 0.5)
        assert set(statuses) == {200, 418}
        assert low <= statuses[418] <= high, statuses
    finally:
        path.unlink()


DELAY_AND_TIMEOUT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
    - fault:
        delay: {fixedDelay: 2s, percentage: {value: 100}}
      route: [{destination: {host: ratings}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - timeout: 300ms
      route: [{destination: {host: reviews}}]
"""
CHAIN = "/call/ratings/9080/stars"
"""productpage -> reviews (300 ms timeout) -> reviews' app calls ratings (delayed 2 s).

Envoy starts a route's timeout when the router forwards the request, after the
fault filter's delay, so the delay must sit on a later hop to trip it; Istio's
request-timeouts task does the same with reviews and ratings."""


def test_delay_longer_than_the_route_timeout_gives_504(bookinfo: Bookinfo) -> None:
    path = routed(
        bookinfo, "delay.yaml", DELAY_AND_TIMEOUT, lambda: bookinfo.call("reviews", CHAIN)[0] == 504
    )
    try:
        started = time.monotonic()
        assert bookinfo.call("reviews", CHAIN)[0] == 504
        assert time.monotonic() - started < 1.5  # the 300 ms timeout, not the 2 s delay
    finally:
        path.unlink()
    wait_for(lambda: bookinfo.call("reviews", CHAIN)[0] == 200, timeout=10)


RETRIES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: default}
spec:
  hosts: [details]
  http:
    - retries: RETRY_POLICY
      route: [{destination: {host: details}}]
"""
NO_RETRIES = "{attempts: 0}"  # Istio refuses retryOn beside attempts: 0
THREE_RETRIES = "{attempts: 3, retryOn: 5xx}"


def test_retries_recover_from_a_backend_failing_every_other_request(bookinfo: Bookinfo) -> None:
    path = routed(
        bookinfo,
        "retry.yaml",
        RETRIES.replace("RETRY_POLICY", NO_RETRIES),
        lambda: any(bookinfo.call("details", "/flaky")[0] == 500 for _ in range(6)),
    )
    try:
        without = Counter(bookinfo.call("details", "/flaky")[0] for _ in range(40))
        assert without[500] >= 10, without  # the backend really fails half the time
        path.write_text(RETRIES.replace("RETRY_POLICY", THREE_RETRIES))
        time.sleep(1.0)  # debounce and push; then every request must succeed
        with_retries = Counter(bookinfo.call("details", "/flaky")[0] for _ in range(40))
        assert with_retries == Counter({200: 40}), with_retries
    finally:
        path.unlink()


MIRROR = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews, subset: v1}}]
      mirror: {host: reviews, subset: v2}
      mirrorPercentage: {value: 100}
"""


def test_mirror_sends_copies_while_the_primary_answers(bookinfo: Bookinfo) -> None:
    path = routed(
        bookinfo, "mirror.yaml", MIRROR, lambda: set(versions(bookinfo, 10)) == {"reviews-v1"}
    )
    try:
        before = bookinfo.served("reviews-v2")
        assert set(versions(bookinfo, 30)) == {"reviews-v1"}
        wait_for(lambda: bookinfo.served("reviews-v2") >= before + 30, timeout=5)
    finally:
        path.unlink()


def test_subset_routing_reaches_only_the_subsets_endpoints(bookinfo: Bookinfo) -> None:
    vs = MIRROR.replace("subset: v1}}]", "subset: v3}}]").split("      mirror:")[0]
    path = routed(
        bookinfo, "subset.yaml", vs, lambda: set(versions(bookinfo, 10)) == {"reviews-v3"}
    )
    try:
        assert set(versions(bookinfo, 60)) == {"reviews-v3"}
    finally:
        path.unlink()


def with_policy(host: str, policy: str) -> str:
    """destination-rule-all.yaml with ``policy`` as the traffic policy of ``host``'s rule."""
    text = (EXAMPLES / "bookinfo" / "destination-rule-all.yaml").read_text()
    return text.replace(f"spec:\n  host: {host}\n", f"spec:\n  host: {host}\n  {policy}\n")


LEAST_REQUEST = "trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}"
HASH_BY_USER = "trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}"


def _lb_policy(mesh: Bookinfo, cluster: str) -> str:
    for section in mesh.dump("productpage-v1")["configs"]:
        for entry in section.get("dynamic_active_clusters", []):
            if entry["cluster"]["name"] == cluster:
                return str(entry["cluster"].get("lb_policy", "ROUND_ROBIN"))
    return "absent"


def test_least_request_and_consistent_hash_reach_envoy(bookinfo: Bookinfo) -> None:
    rules = with_policy("ratings", LEAST_REQUEST)
    details = "spec:\n  host: details\n"
    rules = rules.replace(details, f"{details}  {HASH_BY_USER}\n")
    ratings = "outbound|9080||ratings.default.svc.cluster.local"
    path = routed(
        bookinfo,
        "destination-rule-all.yaml",
        rules,
        lambda: _lb_policy(bookinfo, ratings) == "LEAST_REQUEST",
    )
    try:
        details_cluster = "outbound|9080||details.default.svc.cluster.local"
        wait_for(lambda: _lb_policy(bookinfo, details_cluster) == "RING_HASH", timeout=5)
    finally:
        path.write_text((EXAMPLES / "bookinfo" / "destination-rule-all.yaml").read_text())


def test_consistent_hash_keeps_a_user_on_one_endpoint(bookinfo: Bookinfo) -> None:
    rules = with_policy("reviews", HASH_BY_USER)
    path = routed(
        bookinfo,
        "destination-rule-all.yaml",
        rules,
        lambda: (
            _lb_policy(bookinfo, "outbound|9080||reviews.default.svc.cluster.local") == "RING_HASH"
        ),
    )
    try:
        for user in ("ann", "bob", "cy", "dee"):
            assert len(set(versions(bookinfo, 20, {"x-user": user}))) == 1, user
        spread = {bookinfo.pod_of("reviews", headers={"x-user": f"u{i}"}) for i in range(30)}
        assert len(spread) >= 2, spread  # different users do land on different endpoints
    finally:
        path.write_text((EXAMPLES / "bookinfo" / "destination-rule-all.yaml").read_text())


SERVICE_ENTRY = f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: external-echo, namespace: default}}
spec:
  hosts: [ext.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: {EXTERNAL[1]}, name: http, protocol: HTTP}}]
  endpoints: [{{address: {EXTERNAL[0]}}}]
"""


def test_service_entry_makes_an_external_service_reachable(bookinfo: Bookinfo) -> None:
    path = routed(
        bookinfo,
        "se.yaml",
        SERVICE_ENTRY,
        lambda: bookinfo.call("ext.example.com", port=EXTERNAL[1])[0] == 200,
    )
    try:
        status, body = bookinfo.call("ext.example.com", "/hi", port=EXTERNAL[1])
        assert status == 200 and body["pod"] == "external" and body["xfcc"] == ""
    finally:
        path.unlink()


def _cluster_names(mesh: Bookinfo) -> set[str]:
    names = set()
    for section in mesh.dump("productpage-v1")["configs"]:
        for entry in section.get("dynamic_active_clusters", []):
            names.add(entry["cluster"]["name"])
    return names


SIDECAR = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  egress: [{hosts: ["./reviews.default.svc.cluster.local"]}]
"""


def test_sidecar_resource_narrows_what_a_proxy_receives(bookinfo: Bookinfo) -> None:
    before = {n for n in _cluster_names(bookinfo) if n.startswith("outbound|")}
    assert any("ratings" in n for n in before)
    path = routed(
        bookinfo,
        "sidecar.yaml",
        SIDECAR,
        lambda: not any("ratings" in n for n in _cluster_names(bookinfo)),
    )
    try:
        after = {n for n in _cluster_names(bookinfo) if n.startswith("outbound|")}
        assert after and all("reviews.default" in n for n in after), after
        assert len(after) < len(before)
        assert bookinfo.call("reviews")[0] == 200
    finally:
        path.unlink()
    wait_for(lambda: any("ratings" in n for n in _cluster_names(bookinfo)), timeout=10)


def test_samples_load_unchanged(bookinfo: Bookinfo) -> None:
    for sample_file in sorted(ROUTING.glob("*.yaml")):
        path = bookinfo.apply("sample.yaml", sample_file.read_text())
        try:
            wait_for(lambda: bookinfo.call("reviews")[0] == 200, timeout=10)
        finally:
            path.unlink()
    logs = (bookinfo.local.workdir / "pyistiod.log").read_text().splitlines()
    rejected = [json.loads(x) for x in logs if '"config.invalid"' in x]
    assert rejected == []
