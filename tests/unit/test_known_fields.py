"""Unknown fields in Istio objects are found with their kubectl-style path.

Each kind's full example (after Istio's documentation samples; together they use
every described field) has no unknown field; a typo at any depth is reported at
its exact path; keys of free maps never are; ill-typed input never raises.
"""

from __future__ import annotations

import pytest
import yaml

from translators.mesh.documents.kinds import parse_object
from translators.mesh.documents.known_fields import (
    ISTIO_SPECS,
    LEAF,
    Fields,
    MapOf,
    Shape,
    find_unknown,
    unknown_document_fields,
    unknown_fields,
    unknown_metadata_fields,
    unknown_top_level,
)

VIRTUAL_SERVICE = r"""
hosts: [reviews.prod.svc.cluster.local, "*.bookinfo.com"]
gateways: [mesh, istio-system/bookinfo-gateway]
exportTo: ["."]
http:
- name: reviews-v2-routes
  match:
  - name: v2
    uri: {prefix: /wpcatalog}
    scheme: {exact: https}
    method: {exact: GET}
    authority: {regex: "^bookinfo.*"}
    headers: {end-user: {exact: jason}, x-Custom_Header.Any: {prefix: abc}}
    queryParams: {ref: {exact: email}}
    withoutHeaders: {x-debug: {exact: "1"}}
    port: 9080
    sourceLabels: {app: productpage, version: v1}
    gateways: [mesh]
    sourceNamespace: bookinfo
    ignoreUriCase: true
    statPrefix: reviews
  rewrite: {uri: /newcatalog, authority: reviews.internal}
  route:
  - destination: {host: reviews.prod.svc.cluster.local, subset: v2, port: {number: 9080}}
    weight: 80
    headers:
      request: {set: {x-from: mesh}, add: {x-trace: "on"}, remove: [x-internal]}
      response: {remove: [server]}
  - {destination: {host: reviews.prod.svc.cluster.local, subset: v1}, weight: 20}
  timeout: 10s
  retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure",
            retryRemoteLocalities: true, retryIgnorePreviousHosts: true, backoff: 25ms}
  fault:
    delay: {fixedDelay: 5s, percentage: {value: 0.1}}
    abort: {httpStatus: 400, percentage: {value: 0.1}}
  mirror: {host: reviews.shadow, subset: v3, port: {number: 9080}}
  mirrorPercentage: {value: 50.0}
  mirror_percent: 50
  mirrorPercent: 50
  mirrors: [{destination: {host: reviews.shadow2}, percentage: {value: 10}}]
  corsPolicy:
    allowOrigins: [{exact: "https://example.com"}, {regex: "https://.*\\.example\\.org"}]
    allowOrigin: ["https://legacy.example.com"]
    allowMethods: [POST, GET]
    allowHeaders: [X-Foo-Bar]
    exposeHeaders: [X-Expose]
    maxAge: 24h
    allowCredentials: false
    unmatchedPreflights: IGNORE
  headers: {request: {set: {x-route: v2}}}
- match: [{uri: {regex: "^/legacy"}}]
  redirect: {uri: /v1/bookRatings, authority: newratings, port: 8443, scheme: https,
             redirectCode: 301}
- redirect: {uri: /v2, derivePort: FROM_REQUEST_PORT}
- match: [{uri: {exact: /down}}]
  directResponse: {status: 503, body: {string: "unavailable"}}
- directResponse: {status: 200, body: {bytes: aGVsbG8=}}
- match: [{uri: {prefix: /delegated}}]
  delegate: {name: reviews-delegate, namespace: bookinfo}
- rewrite: {uriRegexRewrite: {match: "^/regex/(.*)", rewrite: "/\\1"}}
  fault: {abort: {grpcStatus: UNAVAILABLE}, delay: {exponentialDelay: 1s, percent: 5}}
  route: [{destination: {host: ratings}}]
- fault: {abort: {http2Error: REFUSED_STREAM}}
  route: [{destination: {host: ratings}}]
tls:
- match:
  - {sniHosts: [login.bookinfo.com], destinationSubnets: [10.0.0.0/8], port: 443,
     sourceLabels: {app: gateway}, gateways: [mesh], sourceNamespace: ingress}
  route: [{destination: {host: login, port: {number: 443}}, weight: 100}]
tcp:
- match:
  - {port: 27017, destinationSubnets: [10.1.0.0/16], sourceSubnet: 10.2.0.0/16,
     sourceLabels: {app: mongo-client}, gateways: [mesh], sourceNamespace: db}
  route: [{destination: {host: mongo.backup, port: {number: 5555}}, weight: 100}]
"""

DESTINATION_RULE = """
host: ratings.prod.svc.cluster.local
exportTo: ["."]
workloadSelector: {matchLabels: {app: ratings}}
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: 100, connectTimeout: 30ms, idleTimeout: 1h,
          maxConnectionDuration: 10m, tcpKeepalive: {time: 7200s, interval: 75s, probes: 9}}
    http: {http1MaxPendingRequests: 10, http2MaxRequests: 100, maxRequestsPerConnection: 10,
           maxRetries: 3, idleTimeout: 60s, h2UpgradePolicy: UPGRADE,
           useClientProtocol: false, maxConcurrentStreams: 100}
  loadBalancer:
    simple: LEAST_REQUEST
    localityLbSetting:
      enabled: true
      distribute: [{from: us-west/zone1/*, to: {"us-west/zone1/*": 80, "us-west/zone2/*": 20}}]
      failover: [{from: us-east, to: eu-west}]
      failoverPriority: [topology.istio.io/network]
    warmup: {duration: 60s, minimumPercent: 10, aggression: 1.5}
    warmupDurationSecs: 60s
  outlierDetection: {consecutiveGatewayErrors: 7, consecutive5xxErrors: 7, consecutiveErrors: 7,
                     consecutiveLocalOriginFailures: 5, splitExternalLocalOriginErrors: true,
                     interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 100,
                     minHealthPercent: 50}
  tls: {mode: MUTUAL, clientCertificate: /etc/certs/cert.pem, privateKey: /etc/certs/key.pem,
        caCertificates: /etc/certs/ca.pem, caCrl: /etc/certs/crl.pem, credentialName: cred,
        subjectAltNames: [spiffe://cluster.local/ns/default/sa/ratings], sni: my-nginx,
        insecureSkipVerify: false}
  tunnel: {protocol: CONNECT, targetHost: 192.168.1.2, targetPort: 443}
  proxyProtocol: {version: V2}
  retryBudget: {percent: 25, minRetryConcurrency: 5}
  portLevelSettings:
  - port: {number: 80}
    loadBalancer: {simple: LEAST_CONN}
    connectionPool: {tcp: {maxConnections: 10}}
    outlierDetection: {consecutive5xxErrors: 3}
    tls: {mode: ISTIO_MUTUAL}
  - port: {number: 9080}
    loadBalancer:
      consistentHash:
        httpCookie: {name: user, path: /, ttl: 0s,
                     attributes: [{name: SameSite, value: None}, {name: Secure}]}
        ringHash: {minimumRingSize: 1024}
subsets:
- name: testversion
  labels: {version: v3, "topology.istio.io/network": n1}
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}}
- name: by-ip
  labels: {version: v4}
  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 1024}}}
- name: by-query
  trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: user}}}
"""

SERVER_TLS = """{httpsRedirect: false, mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem,
    caCertificates: /ca.pem, caCertCredentialName: ca-bundle, caCrl: /crl.pem,
    subjectAltNames: [spiffe://cluster.local/ns/default/sa/client],
    verifyCertificateSpki: [abc=], verifyCertificateHash: ["00:11"],
    minProtocolVersion: TLSV1_2, maxProtocolVersion: TLSV1_3,
    cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]}"""

GATEWAY = f"""
selector: {{app: my-gateway-controller, istio: ingressgateway}}
servers:
- port: {{number: 80, name: http, protocol: HTTP, targetPort: 8080}}
  hosts: [uk.bookinfo.com, eu.bookinfo.com]
  name: plain
  bind: 0.0.0.0
  defaultEndpoint: 127.0.0.1:8080
  tls: {{httpsRedirect: true}}
- port: {{number: 443, name: https-443, protocol: HTTPS}}
  hosts: [bookinfo-namespace/*.bookinfo.com]
  tls: {SERVER_TLS}
- port: {{number: 9443, name: https-9443, protocol: HTTPS}}
  hosts: ["*"]
  tls: {{mode: SIMPLE, credentialNames: [rsa-cert, ecdsa-cert]}}
- port: {{number: 8443, name: https-8443, protocol: HTTPS}}
  hosts: ["*"]
  tls: {{mode: SIMPLE, credentialName: bookinfo-secret}}
- port: {{number: 7443, name: https-7443, protocol: HTTPS}}
  hosts: ["*"]
  tls:
    mode: SIMPLE
    tlsCertificates: [{{serverCertificate: /a.pem, privateKey: /a.key, caCertificates: /ca}}]
"""

SERVICE_ENTRY = """
hosts: [mymongodb.somedomain]
addresses: [192.192.192.192/24]
location: MESH_INTERNAL
resolution: STATIC
exportTo: ["*"]
subjectAltNames: [spiffe://cluster.local/ns/mongo/sa/mongo]
ports: [{number: 27018, name: mongodb, protocol: MONGO, targetPort: 27017}]
endpoints:
- address: 2.2.2.2
  ports: {mongodb: 7777, http-metrics: 9090}
  labels: {app: mongo, "example.com/tier": db}
  network: network1
  locality: us-east1/zone1
  weight: 10
  serviceAccount: mongo
- address: unix:///var/run/mongo.sock
"""

SERVICE_ENTRY_SELECTOR = """
hosts: [details.bookinfo.com]
ports: [{number: 80, name: http, protocol: HTTP}]
workloadSelector: {labels: {app: details-legacy}}
"""

WORKLOAD_ENTRY = """
serviceAccount: details-legacy
address: 2.2.2.2
labels: {app: details-legacy, instance-id: vm1}
ports: {http: 8080, grpc-web: 9090}
network: vm-network
locality: us-west/zone1
weight: 1
"""

SIDECAR = f"""
workloadSelector: {{labels: {{app: productpage}}}}
ingress:
- port: {{number: 9080, protocol: HTTP, name: somename, targetPort: 9080}}
  bind: 0.0.0.0
  captureMode: IPTABLES
  defaultEndpoint: 127.0.0.1:8080
  connectionPool: {{http: {{http1MaxPendingRequests: 100}}, tcp: {{maxConnections: 50}}}}
  tls: {SERVER_TLS}
egress:
- port: {{number: 3306, protocol: MYSQL, name: egressmysql}}
  bind: 127.0.0.1
  captureMode: NONE
  hosts: ["*/mysql.foo.com"]
- hosts: ["istio-system/*"]
inboundConnectionPool: {{http: {{http1MaxPendingRequests: 1024, http2MaxRequests: 1024}}}}
outboundTrafficPolicy:
  mode: REGISTRY_ONLY
  egressProxy: {{host: foo.bar.com, subset: v1, port: {{number: 443}}}}
"""

PEER_AUTHENTICATION = """
selector: {matchLabels: {app: finance}}
mtls: {mode: STRICT}
portLevelMtls: {8080: {mode: DISABLE}, "9090": {mode: PERMISSIVE}}
"""

REQUEST_AUTHENTICATION = """
selector: {matchLabels: {app: httpbin}}
targetRef: {kind: Service, group: "", name: httpbin}
targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
jwtRules:
- issuer: issuer-foo
  audiences: [foo]
  jwksUri: https://example.com/.well-known/jwks.json
  jwks: '{"keys": []}'
  fromHeaders: [{name: x-jwt-assertion, prefix: "Bearer "}]
  fromParams: [my_token]
  fromCookies: [session]
  outputPayloadToHeader: x-jwt-payload
  outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}]
  forwardOriginalToken: true
  timeout: 3s
  spaceDelimitedClaims: [roles]
"""

AUTHORIZATION_POLICY = """
action: ALLOW
selector: {matchLabels: {app: httpbin, version: v1}}
rules:
- from:
  - source: {principals: [cluster.local/ns/default/sa/sleep], notPrincipals: [evil],
             requestPrincipals: ["*"], notRequestPrincipals: [bad], namespaces: [test],
             notNamespaces: [prod], ipBlocks: [203.0.113.4], notIpBlocks: [203.0.113.5],
             remoteIpBlocks: [10.0.0.0/8], notRemoteIpBlocks: [10.1.0.0/16]}
  - source: {serviceAccounts: [default/sleep], notServiceAccounts: [default/evil]}
  to:
  - operation: {methods: [GET], notMethods: [DELETE], paths: [/info*], notPaths: [/admin],
                hosts: [httpbin.example.com], notHosts: [other], ports: ["8000"],
                notPorts: ["9000"]}
  when:
  - {key: "request.auth.claims[iss]", values: [https://accounts.google.com], notValues: [x]}
"""

AUTHORIZATION_POLICY_CUSTOM = """
action: CUSTOM
provider: {name: my-ext-authz}
targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
rules: [{to: [{operation: {paths: [/admin/*]}}]}]
"""

AUTHORIZATION_POLICY_TARGET = """
action: DENY
targetRef: {kind: Service, group: "", name: httpbin, namespace: ""}
rules: [{}]
"""

VALID = [
    ("VirtualService", VIRTUAL_SERVICE),
    ("DestinationRule", DESTINATION_RULE),
    ("Gateway", GATEWAY),
    ("ServiceEntry", SERVICE_ENTRY),
    ("ServiceEntry", SERVICE_ENTRY_SELECTOR),
    ("WorkloadEntry", WORKLOAD_ENTRY),
    ("Sidecar", SIDECAR),
    ("PeerAuthentication", PEER_AUTHENTICATION),
    ("RequestAuthentication", REQUEST_AUTHENTICATION),
    ("AuthorizationPolicy", AUTHORIZATION_POLICY),
    ("AuthorizationPolicy", AUTHORIZATION_POLICY_CUSTOM),
    ("AuthorizationPolicy", AUTHORIZATION_POLICY_TARGET),
]


@pytest.mark.parametrize(("kind", "text"), VALID, ids=[f"{k}{i}" for i, (k, _) in enumerate(VALID)])
def test_full_valid_examples_have_no_unknown_field(kind: str, text: str) -> None:
    spec = yaml.safe_load(text)
    assert isinstance(spec, dict) and spec
    assert unknown_fields(kind, spec) == []


def _described(shape: Shape, where: str, out: dict[tuple[int, str], str]) -> None:
    """Every (message, field name) pair below ``shape``, with one path naming it."""
    if isinstance(shape, MapOf):
        _described(shape.value, f"{where}.*", out)
    elif isinstance(shape, Fields):
        for name, sub in shape.names.items():
            if (id(shape), name) not in out:
                out[id(shape), name] = f"{where}.{name}"
                _described(sub, f"{where}.{name}", out)


def _used(shape: Shape, value: object, out: set[tuple[int, str]]) -> None:
    """Every (message, field name) pair that ``value`` sets."""
    if isinstance(value, list):
        for item in value:
            _used(shape, item, out)
    elif isinstance(value, dict) and isinstance(shape, MapOf):
        for item in value.values():
            _used(shape.value, item, out)
    elif isinstance(value, dict) and isinstance(shape, Fields):
        for name, item in value.items():
            if name in shape.names:
                out.add((id(shape), name))
                _used(shape.names[name], item, out)


def test_examples_use_every_described_field_of_every_message() -> None:
    described: dict[tuple[int, str], str] = {}
    used: set[tuple[int, str]] = set()
    for kind, shape in ISTIO_SPECS.items():
        _described(shape, kind, described)
    for kind, text in VALID:
        _used(ISTIO_SPECS[kind], yaml.safe_load(text), used)
    assert [path for pair, path in described.items() if pair not in used] == []
    assert set(ISTIO_SPECS) == {kind for kind, _ in VALID}


VS, DR, SE, AP, PA = (
    "VirtualService",
    "DestinationRule",
    "ServiceEntry",
    "AuthorizationPolicy",
    "PeerAuthentication",
)
TYPOS = [  # kind, spec, the paths reported (space-separated)
    (VS, "http: [{retires: {attempts: 3}}]", "spec.http[0].retires"),
    (VS, "http: [{name: a}, {timout: 1s}]", "spec.http[1].timout"),
    (VS, "http: [{route: [{destination: {prot: 1}}]}]", "spec.http[0].route[0].destination.prot"),
    (
        VS,
        "http: [{match: [{uri: {prefx: /a}}, {headers: {x-a: {exatc: b}}}]}]",
        "spec.http[0].match[0].uri.prefx spec.http[0].match[1].headers.x-a.exatc",
    ),
    (VS, "tcp: [{match: [{sniHosts: [a]}]}]", "spec.tcp[0].match[0].sniHosts"),
    (VS, "{host: [a], hosts: [a]}", "spec.host"),
    (DR, "trafficPolicy: {loadbalancer: {}}", "spec.trafficPolicy.loadbalancer"),
    (
        DR,
        "trafficPolicy: {portLevelSettings: [{}, {connectionPool: {tcp: {maxConection: 1}}}]}",
        "spec.trafficPolicy.portLevelSettings[1].connectionPool.tcp.maxConection",
    ),
    (
        DR,
        "subsets: [{trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {tll: 1s}}}}}]",
        "spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.httpCookie.tll",
    ),
    (DR, "workloadSelector: {labels: {a: b}}", "spec.workloadSelector.labels"),
    ("Gateway", "servers: [{port: {number: 443}, tls: {mod: SIMPLE}}]", "spec.servers[0].tls.mod"),
    (SE, "endpoints: [{adress: 1.1.1.1}]", "spec.endpoints[0].adress"),
    (SE, "workloadSelector: {matchLabels: {}}", "spec.workloadSelector.matchLabels"),
    ("WorkloadEntry", "{address: 1.1.1.1, serviceaccount: sa}", "spec.serviceaccount"),
    ("Sidecar", "egress: [{hosts: ['*/*'], bnd: 127.0.0.1}]", "spec.egress[0].bnd"),
    ("Sidecar", "outboundTrafficPolicy: {egresProxy: {}}", "spec.outboundTrafficPolicy.egresProxy"),
    (AP, "rules: [{from: [{source: {principal: [a]}}]}]", "spec.rules[0].from[0].source.principal"),
    (
        AP,
        "rules: [{to: [{operations: {}}], when: [{key: a, value: [b]}]}]",
        "spec.rules[0].to[0].operations spec.rules[0].when[0].value",
    ),
    (AP, "selector: {matchlabels: {a: b}}", "spec.selector.matchlabels"),
    (PA, "portLevelMtls: {8080: {mod: DISABLE}}", "spec.portLevelMtls.8080.mod"),
    (PA, "mtls: {mode: STRICT, strict: true}", "spec.mtls.strict"),
]


@pytest.mark.parametrize(("kind", "text", "paths"), TYPOS, ids=[p for _, _, p in TYPOS])
def test_typos_are_reported_with_their_path(kind: str, text: str, paths: str) -> None:
    assert unknown_fields(kind, yaml.safe_load(text)) == paths.split()


def test_typos_come_in_document_order_and_nothing_below_an_unknown_key_is_walked() -> None:
    spec = yaml.safe_load(
        "zeta: 1\nhttp: [{timout: 1s, retries: {attemps: 2}}]\nalpha: {deep: {x: 1}}\nhosts: [a]"
    )
    assert unknown_fields("VirtualService", spec) == [
        "spec.zeta",
        "spec.http[0].timout",
        "spec.http[0].retries.attemps",
        "spec.alpha",
    ]


FREE_MAP_KEYS = [
    (DR, "subsets: [{name: a, labels: {retires: x, loadbalancer: y}}]"),
    (VS, "http: [{match: [{headers: {timout: {exact: a}}, sourceLabels: {b: c}}]}]"),
    (VS, "http: [{match: [{queryParams: {anything: {regex: a}}}]}]"),
    (VS, "http: [{headers: {request: {set: {retires: a}, add: {z: b}}}}]"),
    (SE, "endpoints: [{address: a, ports: {weird-name: 1}, labels: {x: y}}]"),
    ("WorkloadEntry", "labels: {mod: a}\nports: {timout: 80}"),
    ("Gateway", "selector: {istio: ingressgateway, host: x}"),
    ("Sidecar", "workloadSelector: {labels: {egress: x}}"),
    (PA, "{selector: {matchLabels: {mtls: x}}, portLevelMtls: {'1': {}}}"),
    (DR, "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{to: {'us/*': 1}}]}}}"),
]


@pytest.mark.parametrize(("kind", "text"), FREE_MAP_KEYS)
def test_keys_of_free_maps_are_never_reported(kind: str, text: str) -> None:
    assert unknown_fields(kind, yaml.safe_load(text)) == []


ILL_TYPED: list[object] = [None, "spec", 42, 3.5, True, b"bytes", [], [1, "a", None]]
ILL_TYPED += [{1: "int key", None: "none key", ("t",): "tuple key"}, {"http": "not-a-list"}]
ILL_TYPED += [{"http": [None, 3, "x", [[{"route": 1}]]], "hosts": {"a": 1}}]
ILL_TYPED += [{"http": [{"route": {"destination": "x"}, "match": [{"headers": "h"}]}]}]
ILL_TYPED += [{"trafficPolicy": [{"loadBalancer": ["RANDOM"]}], "servers": [{"tls": 3}]}]
ILL_TYPED += [{"portLevelMtls": ["8080"], "selector": {"matchLabels": [1, 2]}}]
ILL_TYPED += [{"rules": [{"from": {"source": None}}], "ingress": [{"port": []}]}]


@pytest.mark.parametrize("kind", sorted(ISTIO_SPECS))
@pytest.mark.parametrize("spec", ILL_TYPED, ids=[repr(v)[:30] for v in ILL_TYPED])
def test_ill_typed_input_never_raises(kind: str, spec: object) -> None:
    for found in (
        unknown_fields(kind, spec),
        unknown_metadata_fields(spec),
        unknown_top_level(kind, spec),
        [u.path for u in unknown_document_fields(kind, spec)],
    ):
        assert isinstance(found, list) and all(isinstance(p, str) for p in found)


def test_ill_typed_values_are_not_descended_but_keys_beside_them_are_checked() -> None:
    spec = {"http": [None, 3, [{"timout": 1}], {"timout": 2}], "hosts": {"retires": 1}}
    assert unknown_fields("VirtualService", spec) == [
        "spec.http[2][0].timout",
        "spec.http[3].timout",
    ]
    assert unknown_fields("VirtualService", {1: "a", "hosts": []}) == ["spec.1"]


def test_alias_cycles_and_deep_nesting_terminate() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert unknown_fields("VirtualService", {"http": cyclic}) == []
    loop: dict[str, object] = {}
    loop["a"] = loop
    assert find_unknown(MapOf(MapOf(LEAF)), loop, "x") == []
    assert unknown_fields("VirtualService", yaml.safe_load("http: &h [*h]")) == []
    deep: object = {"timout": 1}
    for _ in range(5000):
        deep = [deep]
    assert unknown_fields("VirtualService", {"http": deep}) == []


def test_unknown_kinds_yield_nothing() -> None:
    assert unknown_fields("Service", {"anything": 1}) == []
    assert unknown_fields("EnvoyFilter", {"configPatches": []}) == []
    assert unknown_top_level("Pod", {"spce": {}}) == []
    assert unknown_document_fields("Telemetry", {"spce": {}, "metadata": {"name": "t"}}) == []


def test_kubernetes_kinds_have_their_metadata_checked() -> None:
    found = unknown_document_fields("Service", {"spce": {}, "metadata": {"lables": {}}})
    assert [u.path for u in found] == ["metadata.lables"]


METADATA = """
name: reviews
generateName: reviews-
namespace: bookinfo
selfLink: /apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices/reviews
uid: 0b7f2d2e-1111-2222-3333-444455556666
resourceVersion: "12345"
generation: 3
creationTimestamp: "2024-01-01T00:00:00Z"
deletionTimestamp: "2024-01-02T00:00:00Z"
deletionGracePeriodSeconds: 30
labels: {app: reviews, lables: ok}
annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}", nmae: ok}
ownerReferences: [{apiVersion: v1, kind: Service, name: reviews, uid: abc, controller: true,
                   blockOwnerDeletion: true}]
finalizers: [example.com/finalizer]
managedFields:
- {manager: kubectl, operation: Apply, apiVersion: networking.istio.io/v1, subresource: status,
   time: "2024-01-01T00:00:00Z", fieldsType: FieldsV1, fieldsV1: {"f:spec": {"f:hosts": {}}}}
"""


def test_full_metadata_has_no_unknown_field() -> None:
    assert unknown_metadata_fields(yaml.safe_load(METADATA)) == []


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        ("name: a\nlables: {app: b}", ["metadata.lables"]),
        ("nmae: a\nnamespce: b", ["metadata.nmae", "metadata.namespce"]),
        ("ownerReferences: [{kind: a, nam: b}]", ["metadata.ownerReferences[0].nam"]),
        ("annotations: {any: thing}\nannotation: {}", ["metadata.annotation"]),
    ],
)
def test_metadata_typos_are_reported(text: str, paths: list[str]) -> None:
    assert unknown_metadata_fields(yaml.safe_load(text)) == paths


def test_top_level_keys() -> None:
    doc = yaml.safe_load(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: a}\nspce: {hosts: [a]}\nstatus: {anything: {goes: 1}}\nextra: 1"
    )
    assert unknown_top_level("VirtualService", doc) == ["spce", "extra"]
    assert unknown_top_level("VirtualService", "not a mapping") == []


def test_whole_document_reports_top_level_then_metadata_then_spec() -> None:
    doc = yaml.safe_load(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "spec: {host: a, trafficPolicy: {loadbalancer: {}}}\n"
        "metadata: {name: a, lables: {}}\nstatu: {}"
    )
    assert [u.path for u in unknown_document_fields("DestinationRule", doc)] == [
        "statu",
        "metadata.lables",
        "spec.trafficPolicy.loadbalancer",
    ]


def test_shapes_are_plain_data() -> None:
    shape = Fields({"a": LEAF, "b": MapOf(Fields({"c": LEAF}))})
    found = find_unknown(shape, {"a": 1, "b": {"k": {"c": 1, "d": 2}}, "e": 3}, "")
    assert found == ["b.k.d", "e"]


def test_misspelt_fields_come_with_the_names_they_resemble() -> None:
    doc = {"metadata": {"name": "r"}, "spec": {"hosts": ["r"], "http": [{"retires": {}}]}}
    (found,) = unknown_document_fields("VirtualService", doc)
    assert found.path == "spec.http[0].retires"
    assert found.reason() == 'unknown field; did you mean "retries"?'
    (found,) = unknown_document_fields("VirtualService", {"spec": {"zzz": 1}})
    assert found.reason() == "unknown field (not in Istio's schema for this object)"


@pytest.mark.parametrize(
    ("kind", "api", "spec", "path", "hint"),
    [
        ("VirtualService", "networking.istio.io/v1", {
            "hosts": ["r"], "http": [{"route": [{"destination": {"host": "r"}}], "retires": {}}]
        }, "spec.http[0].retires", "retries"),
        ("VirtualService", "networking.istio.io/v1", {
            "hosts": ["r"], "http": [{"route": [{"destination": {"host": "r"}}], "timout": "1s"}]
        }, "spec.http[0].timout", "timeout"),
        ("DestinationRule", "networking.istio.io/v1beta1", {
            "host": "r", "trafficPolicy": {"loadbalancer": {"simple": "ROUND_ROBIN"}}
        }, "spec.trafficPolicy.loadbalancer", "loadBalancer"),
    ],
)  # fmt: skip
def test_parse_object_refuses_unknown_fields_with_their_path(
    kind: str, api: str, spec: dict[str, object], path: str, hint: str
) -> None:
    doc = {"apiVersion": api, "kind": kind, "metadata": {"name": "r"}, "spec": spec}
    result = parse_object(doc, path="mesh.yaml", document=3)
    assert result.obj is None
    (error,) = result.errors
    assert (error.field, error.object) == (path, f"{kind} default/r")
    assert error.reason == f'unknown field; did you mean "{hint}"?'
