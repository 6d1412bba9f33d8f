"""``pyistiod analyze``'s analyzers: one fixture per Istio message, and one that must stay quiet.

Each case is a small config beside a base mesh (Service ``reviews`` with two
ports, Service ``ratings`` with one, a Pod of each) and the (code, object)
pairs Istio's analyzers report for it; the texts are checked where Istio's
documentation gives them.
"""

# ruff: noqa: E501 (each fixture is one line of YAML flow, to read as the config it is)
from __future__ import annotations

from pathlib import Path

import pytest

from translators.mesh.analysis import Message, analyze
from translators.sources.files import load_dir

BASE = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: grpc, port: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}
spec: {serviceAccountName: reviews}
status: {podIP: 127.0.0.21}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-v1, namespace: default, labels: {app: ratings, version: v1}}
spec: {serviceAccountName: ratings}
status: {podIP: 127.0.0.22}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"""

VS = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
DR = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
GW = "apiVersion: networking.istio.io/v1\nkind: Gateway\n"
SIDECAR = "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
INGRESS = """
apiVersion: v1
kind: Pod
metadata: {name: ingress-0, namespace: istio-system, labels: {istio: ingressgateway}}
status: {podIP: 127.0.0.30}
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}]
"""


def run(tmp_path: Path, config: str) -> list[Message]:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "case.yaml").write_text(config)
    result = load_dir(tmp_path)
    assert result.refusals == (), result.errors
    return analyze(result.model)


def codes(found: list[Message]) -> set[tuple[str, str]]:
    return {(m.type.code, f"{m.key.kind} {m.key.namespace}/{m.key.name}") for m in found if m.key}


def vs(name: str, spec: str) -> str:
    return f"{VS}metadata: {{name: {name}, namespace: default}}\nspec: {spec}\n"


def route(host: str, extra: str = "") -> str:
    return f"{{http: [{{route: [{{destination: {{host: {host}{extra}}}}}]}}]}}"


CASES: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "gateway not found, so no host in it": (
        vs("r", "{hosts: [reviews], gateways: [nowhere], http: [{route: [{destination: {host: reviews, port: {number: 9080}}}]}]}"),
        {("IST0101", "VirtualService default/r"), ("IST0132", "VirtualService default/r")},
    ),
    "host not in the gateway": (
        f"{GW}metadata: {{name: gw, namespace: default}}\n"
        "spec: {selector: {app: reviews}, servers: [{port: {number: 9080, name: http, protocol: HTTP}, hosts: [a.example.com]}]}\n---\n"
        + vs("r", "{hosts: [b.example.com], gateways: [gw], http: [{route: [{destination: {host: ratings}}]}]}"),
        {("IST0132", "VirtualService default/r")},
    ),
    "destination host not found": (
        vs("r", "{hosts: [reviews], http: [{route: [{destination: {host: reviewz}}]}]}"),
        {("IST0101", "VirtualService default/r")},
    ),
    "destination port not on the service": (
        vs("r", "{hosts: [ratings], http: [{route: [{destination: {host: ratings, port: {number: 1}}}]}]}"),
        {("IST0101", "VirtualService default/r")},
    ),
    "destination without a port to a service with two": (
        vs("r", route("reviews").replace("{http", "{hosts: [reviews], http")),
        {("IST0112", "VirtualService default/r")},
    ),
    "subset no DestinationRule defines": (
        vs("r", "{hosts: [ratings], http: [{route: [{destination: {host: ratings, subset: v9}}]}]}"),
        {("IST0101", "VirtualService default/r")},
    ),
    "mirror host not found": (
        vs("r", "{hosts: [ratings], http: [{route: [{destination: {host: ratings}}], mirror: {host: nowhere}}]}"),
        {("IST0101", "VirtualService default/r")},
    ),
    "two VirtualServices claim one host for sidecars": (
        vs("a", "{hosts: [ratings], http: [{route: [{destination: {host: ratings}}]}]}") + "---\n"
        + vs("b", "{hosts: [ratings.default.svc.cluster.local], http: [{route: [{destination: {host: ratings}}]}]}"),
        {("IST0109", "VirtualService default/a"), ("IST0109", "VirtualService default/b")},
    ),
    "rules after a rule without matches": (
        vs("r", "{hosts: [ratings], http: [{route: [{destination: {host: ratings}}]}, {route: [{destination: {host: ratings}}]}]}"),
        {("IST0130", "VirtualService default/r")},
    ),
    "a match repeated by a later rule": (
        vs("r", "{hosts: [ratings], http: [{match: [{uri: {prefix: /a}}], route: [{destination: {host: ratings}}]}, {match: [{uri: {prefix: /a}}], route: [{destination: {host: ratings}}]}]}"),
        {("IST0130", "VirtualService default/r"), ("IST0131", "VirtualService default/r")},
    ),
    "a prefix covered by a shorter one before it": (
        vs("r", "{hosts: [ratings], http: [{match: [{uri: {prefix: /api}}, {uri: {prefix: /api/v1}}], route: [{destination: {host: ratings}}]}]}"),
        {("IST0131", "VirtualService default/r")},
    ),
    "DestinationRule for no service": (
        f"{DR}metadata: {{name: ghost, namespace: default}}\nspec: {{host: ghost}}\n",
        {("IST0174", "DestinationRule default/ghost")},
    ),
    "subset selecting no workload": (
        f"{DR}metadata: {{name: ratings, namespace: default}}\n"
        "spec: {host: ratings, subsets: [{name: v1, labels: {version: v1}}, {name: v7, labels: {version: v7}}]}\n",
        {("IST0173", "DestinationRule default/ratings")},
    ),
    "TLS origination without a CA, at rule and port level": (
        f"{DR}metadata: {{name: ratings, namespace: default}}\n"
        "spec: {host: ratings, trafficPolicy: {tls: {mode: SIMPLE}, portLevelSettings: [{port: {number: 9080}, tls: {mode: SIMPLE}}]}}\n",
        {("IST0128", "DestinationRule default/ratings"), ("IST0129", "DestinationRule default/ratings")},
    ),
    "gateway selecting no workload": (
        f"{GW}metadata: {{name: gw, namespace: default}}\n"
        "spec: {selector: {istio: ingresstypo}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n",
        {("IST0101", "Gateway default/gw")},
    ),
    "gateway credential and port missing": (
        INGRESS + "---\n" + f"{GW}metadata: {{name: gw, namespace: istio-system}}\n"
        "spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 8443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: SIMPLE, credentialName: nocert}}]}\n",
        {("IST0101", "Gateway istio-system/gw"), ("IST0162", "Gateway istio-system/gw")},
    ),
    "two gateways claim one host on one port": (
        INGRESS + "".join(
            f"---\n{GW}metadata: {{name: {n}, namespace: istio-system}}\n"
            "spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [foo.bar]}]}\n"
            for n in ("alpha", "beta")
        ),
        {("IST0145", "Gateway istio-system/alpha"), ("IST0145", "Gateway istio-system/beta")},
    ),
    "sidecar selecting no workload": (
        f"{SIDECAR}metadata: {{name: s, namespace: default}}\nspec: {{workloadSelector: {{labels: {{app: bogus}}}}, egress: [{{hosts: ['./*']}}]}}\n",
        {("IST0101", "Sidecar default/s")},
    ),
    "two sidecars select one workload": (
        "".join(
            f"---\n{SIDECAR}metadata: {{name: {n}, namespace: default}}\nspec: {{workloadSelector: {{labels: {{{label}}}}}, egress: [{{hosts: ['./*']}}]}}\n"
            for n, label in (("s1", "app: reviews"), ("s2", "version: v1"))
        ),
        {("IST0110", "Sidecar default/s1"), ("IST0110", "Sidecar default/s2")},
    ),
    "two sidecars without selectors in one namespace": (
        "".join(
            f"---\n{SIDECAR}metadata: {{name: {n}, namespace: default}}\nspec: {{egress: [{{hosts: ['./*']}}]}}\n"
            for n in ("s1", "s2")
        ),
        {("IST0111", "Sidecar default/s1"), ("IST0111", "Sidecar default/s2")},
    ),
    "authorization policy selecting no workload": (
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: ap, namespace: default}\nspec: {selector: {matchLabels: {app: bogus}}}\n",
        {("IST0127", "AuthorizationPolicy default/ap")},
    ),
    "TCP ServiceEntry without addresses": (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        "metadata: {name: db, namespace: default}\n"
        "spec: {hosts: [db.example.com], ports: [{number: 5432, name: tcp, protocol: TCP}], resolution: DNS}\n",
        {("IST0134", "ServiceEntry default/db")},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_each_analyzer_reports_its_code_on_its_object(tmp_path: Path, name: str) -> None:
    config, expected = CASES[name]
    assert codes(run(tmp_path, config)) == expected


def test_a_sound_config_gets_no_message(tmp_path: Path) -> None:
    config = (
        INGRESS
        + "---\n"
        + vs("r", "{hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}}]}]}")
        + f"---\n{GW}metadata: {{name: gw, namespace: istio-system}}\n"
        "spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: [a.example.com]}]}\n"
        "---\n"
        + vs("front", "{hosts: [a.example.com], gateways: [istio-system/gw], http: [{match: [{uri: {prefix: /api/v1}}, {uri: {prefix: /api}}], route: [{destination: {host: ratings}}]}, {route: [{destination: {host: ratings}}]}]}")
        + "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        "metadata: {name: ap, namespace: default}\nspec: {selector: {matchLabels: {app: reviews}}}\n"
    )  # fmt: skip
    assert run(tmp_path, config) == []


def test_texts_are_istios(tmp_path: Path) -> None:
    found = run(
        tmp_path,
        vs("r", "{hosts: [reviews], http: [{route: [{destination: {host: reviewz}}]}, {route: [{destination: {host: ratings}}]}]}")
        + f"---\n{DR}metadata: {{name: db-tls, namespace: default}}\n"
        "spec: {host: ratings, trafficPolicy: {tls: {mode: SIMPLE}}}\n",
    )  # fmt: skip
    texts = {m.text for m in found}
    assert 'Referenced host not found: "reviewz"' in texts
    assert "VirtualService rule #1 not used (only the last rule can have no matches)." in texts
    assert (
        "DestinationRule default/db-tls in namespace default has TLS mode set to SIMPLE but no "
        "caCertificates are set to validate server identity for host: "
        "ratings.default.svc.cluster.local"
    ) in texts


def test_virtual_services_exported_apart_do_not_conflict(tmp_path: Path) -> None:
    host = "ratings.default.svc.cluster.local"
    local = f"{{hosts: [{host}], exportTo: ['.'], http: [{{route: [{{destination: {{host: {host}}}}}]}}]}}"
    config = (
        vs("a", local) + "---\n" + vs("b", local).replace("namespace: default", "namespace: other")
    )
    assert codes(run(tmp_path, config)) == set()
